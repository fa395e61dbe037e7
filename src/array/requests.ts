/**
 * What callers ask of an array: the options of open, create and delete, and the checks of a
 * create or a grow request before anything changes (pure: the caller's arguments in, the values
 * the mutation uses out, or the ArrayError the caller sees). Apart from ./storage-array.ts, which
 * re-exports the option types, so that the class keeps to the LUN table's state and its changes;
 * the checks run in the order the errors were always reported in.
 */
import { ArrayError } from './array-error.js';
import { BLOCK_SIZES, checkName, checkSize, type BlockSizeValue, type LunRecord } from './lun-table.js';

export interface OpenArrayOptions {
  /** Array name (validated like a LUN name). */
  name: string;
  /** Array directory: metadata copies, lock file and (by default) image files. */
  dir: string;
  /** Export every LUN read-only and refuse management changes (create/delete/grow). */
  readOnly?: boolean;
  /** Skip fsync of metadata (tests only). */
  noSync?: boolean;
}

export interface CreateLunOptions {
  name: string;
  size: number;
  blockSize?: number;
  /** Let a read-only array create LUNs (startup provisioning by `serve`/`up`). */
  provision?: boolean;
}

export interface DeleteLunOptions {
  /** Disconnect open NBD sessions instead of refusing. */
  force?: boolean;
}

/** Checks name, then block size (default 512), then size (anything may be missing or ill-typed at run time): throws ArrayError('invalid-argument'). */
export function checkCreateRequest(opts: CreateLunOptions): { name: string; size: number; blockSize: number } {
  const o = (opts ?? {}) as Partial<CreateLunOptions>;
  const nameErr = checkName(o.name);
  if (nameErr) throw new ArrayError('invalid-argument', nameErr);
  const blockSize = o.blockSize ?? 512;
  if (!BLOCK_SIZES.includes(blockSize as BlockSizeValue)) {
    throw new ArrayError('invalid-argument', `block size ${JSON.stringify(blockSize)} must be 512 or 4096`);
  }
  const sizeErr = checkSize(o.size, blockSize);
  if (sizeErr) throw new ArrayError('invalid-argument', sizeErr);
  return { name: o.name!, size: o.size!, blockSize };
}

/**
 * The size a grow of `rec` asks for: `target` bytes, or `{ by }` bytes more than the record says
 * now (so the caller reads `rec` inside the array's serialization of LUN changes). Throws
 * ArrayError: 'invalid-argument' for a bad amount or size, 'refused' for one that does not grow.
 */
export function growTarget(rec: LunRecord, target: number | { by: number }): number {
  let newSize: number;
  if (typeof target === 'number') newSize = target;
  else {
    const by = target.by;
    if (typeof by !== 'number' || !Number.isSafeInteger(by)) throw new ArrayError('invalid-argument', `by must be an integer number of bytes`);
    if (by <= 0) throw new ArrayError('invalid-argument', `by must be greater than 0: a LUN can only grow (asked ${by})`);
    if (by % rec.blockSize !== 0) throw new ArrayError('invalid-argument', `by ${by} is not a multiple of the block size ${rec.blockSize} of LUN ${rec.name}`);
    newSize = rec.size + by;
  }
  const sizeErr = checkSize(newSize, rec.blockSize);
  if (sizeErr) throw new ArrayError('invalid-argument', sizeErr);
  if (newSize <= rec.size) {
    throw new ArrayError('refused', `LUN ${rec.name} is ${rec.size} bytes; it can only grow (asked ${newSize})`);
  }
  return newSize;
}
