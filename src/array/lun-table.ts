/**
 * The array's LUN table as persisted in its metadata: the records, their validation (every
 * mutation validates first and changes nothing on bad input), and opening a record's image
 * file (repairing what an interrupted grow or a rolled-back metadata copy leaves).
 */
import { promises as fsp } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { FileBackingStore, type LunFence } from '../block/index.js';
import { ArrayError } from './array-error.js';

export const METADATA_FORMAT = 'sanbox-array/1';
export const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
export const BLOCK_SIZES = [512, 4096] as const;
export type BlockSizeValue = (typeof BLOCK_SIZES)[number];
/** Largest LUN: 2^53 - 2^12 would be the safe-integer bound; keep to 1 PiB, far beyond any lab. */
export const MAX_LUN_SIZE = 2 ** 50;

export interface LunRecord {
  id: number;
  name: string;
  /** Bytes, a positive multiple of blockSize. */
  size: number;
  blockSize: BlockSizeValue;
  /** Image file, relative to the array directory (or absolute if outside it). */
  image: string;
  /** ISO 8601. */
  created: string;
  /** Fenced: host writes refused (src/block/admission.ts `fenceRefusal`); absent when not fenced. */
  fenced?: LunFence;
}

export interface ArrayMetadata {
  format: typeof METADATA_FORMAT;
  array: string;
  nextLunId: number;
  luns: LunRecord[];
}

export type LunState = 'online' | 'missing' | 'error';

export interface LunInfo extends LunRecord {
  /** Absolute path of the image file. */
  imagePath: string;
  /** online: exported; missing: the image file is gone; error: it could not be opened. */
  state: LunState;
  /** Why the LUN is not online. */
  problem?: string;
  readOnly: boolean;
  /** Open NBD sessions on this LUN (0 when no session tracker is attached). */
  sessions: number;
}

/**
 * A name of an array, LUN, mirror, group, lab, site, link, scenario...: 1 to 64 characters from
 * A-Z a-z 0-9 . _ -, and not `.` or `..` (a name may become a path component: an array named `..`
 * would keep its files outside the images directory). `.hidden` is a name.
 */
export function isPlainName(s: unknown): s is string {
  return typeof s === 'string' && NAME_RE.test(s) && s !== '.' && s !== '..';
}

/** Validates a LUN or array name; returns an error message or undefined. */
export function checkName(name: unknown, what = 'LUN name'): string | undefined {
  if (typeof name !== 'string') return `${what} must be a string`;
  if (!isPlainName(name)) return `${what} ${JSON.stringify(name)} is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)`;
  return undefined;
}

/** Validates a size for a given block size; returns an error message or undefined. */
export function checkSize(size: unknown, blockSize: number): string | undefined {
  if (typeof size !== 'number' || !Number.isSafeInteger(size)) return `size must be an integer number of bytes`;
  if (size <= 0) return `size must be greater than 0`;
  if (size > MAX_LUN_SIZE) return `size ${size} exceeds the maximum of ${MAX_LUN_SIZE} bytes (1P)`;
  if (size % blockSize !== 0) return `size ${size} is not a multiple of the block size ${blockSize}`;
  return undefined;
}

/** Checks loaded metadata: this array's, in this format, with a consistent LUN table. */
export function checkMeta(meta: ArrayMetadata, name: string, dir: string): void {
  const m = meta as unknown as Record<string, unknown>;
  if (m === null || typeof m !== 'object' || m.format !== METADATA_FORMAT) {
    throw new ArrayError('metadata-mismatch', `${dir}: metadata format ${JSON.stringify(m?.format)} is not ${METADATA_FORMAT}`);
  }
  if (m.array !== name) {
    throw new ArrayError('metadata-mismatch', `${dir} holds array ${JSON.stringify(m.array)}, not ${JSON.stringify(name)}`);
  }
  if (!Array.isArray(m.luns) || !Number.isSafeInteger(m.nextLunId)) {
    throw new ArrayError('metadata-mismatch', `${dir}: metadata has no LUN table`);
  }
  const ids = new Set<number>();
  const names = new Set<string>();
  for (const l of meta.luns) {
    // A LUN named . or .. made before such names were refused still loads (its image is named by id).
    const problem =
      (typeof l.name === 'string' && NAME_RE.test(l.name) ? undefined : checkName(l.name)) ??
      (BLOCK_SIZES.includes(l.blockSize) ? undefined : `bad block size ${l.blockSize}`) ??
      checkSize(l.size, l.blockSize) ??
      (Number.isSafeInteger(l.id) && l.id >= 0 ? undefined : `bad id ${l.id}`) ??
      (typeof l.image === 'string' && l.image.length > 0 ? undefined : 'no image path') ??
      (ids.has(l.id) ? `duplicate id ${l.id}` : undefined) ??
      (names.has(l.name) ? `duplicate name ${l.name}` : undefined) ??
      (l.fenced === undefined || (typeof l.fenced?.reason === 'string' && typeof l.fenced.by === 'string' && Number.isSafeInteger(l.fenced.sinceMs)) ? undefined : 'bad fence');
    if (problem) throw new ArrayError('metadata-mismatch', `${dir}: LUN ${JSON.stringify(l.name)} in metadata: ${problem}`);
    ids.add(l.id);
    names.add(l.name);
  }
}

/** A LUN of the open array: its record, its image's backing store when online. */
export interface LunEntry {
  rec: LunRecord;
  device?: FileBackingStore;
  state: LunState;
  problem?: string;
  /** Being deleted: not exported any more. */
  deleting?: boolean;
}

export function imagePathOf(dir: string, rec: LunRecord): string {
  return isAbsolute(rec.image) ? rec.image : join(dir, rec.image);
}

/** The image path as stored: relative to the array directory when inside it. */
export function relOrAbs(dir: string, path: string): string {
  const rel = relative(dir, path);
  return rel.startsWith('..' + sep) || rel === '..' || isAbsolute(rel) ? path : rel;
}

/** An event the opening of an image records (lun.offline, lun.repaired). */
export type OpenNote = (type: string, details: Record<string, unknown>) => void;

/**
 * Opens the image of `rec` at `path`: online, or offline (missing, or error) with the problem
 * noted. A short file is extended (a grow that crashed after its metadata commit); a longer
 * one of a valid size is adopted (`rec.size` changes: the caller saves the metadata).
 */
export async function openLunImage(rec: LunRecord, path: string, readOnly: boolean, note: OpenNote): Promise<LunEntry> {
  const lun: LunEntry = { rec, state: 'online' };
  const offline = (state: LunState, problem: string): LunEntry => {
    lun.state = state;
    lun.problem = problem;
    note('lun.offline', { lun: rec.id, name: rec.name, state, problem });
    return lun;
  };
  let st;
  try {
    st = await fsp.stat(path);
  } catch (e) {
    return offline((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'error', `image ${path}: ${(e as Error).message}`);
  }
  if (st.size < rec.size) {
    // A grow commits the metadata before extending the file; a crash in between leaves the
    // file short. Extending a sparse file only adds zeroes, so finish the grow.
    await fsp.truncate(path, rec.size);
    note('lun.repaired', { lun: rec.id, name: rec.name, problem: `image was ${st.size} bytes, extended to ${rec.size}` });
  } else if (st.size > rec.size) {
    if (st.size % rec.blockSize !== 0 || st.size > MAX_LUN_SIZE) return offline('error', `image ${path} is ${st.size} bytes, not a multiple of the block size ${rec.blockSize}`);
    // Metadata older than the image (a rolled-back copy): the data is in the image; keep it.
    note('lun.repaired', { lun: rec.id, name: rec.name, problem: `image is ${st.size} bytes, metadata said ${rec.size}; adopting the image size` });
    rec.size = st.size;
  }
  try {
    lun.device = await FileBackingStore.open(path, { readOnly, blockSize: rec.blockSize });
  } catch (e) {
    return offline('error', `cannot open image ${path}: ${(e as Error).message}`);
  }
  return lun;
}

/**
 * A fence change of `rec` (src/block/admission.ts `fenceRefusal`): the new record and the details
 * of its event (`lun.fenced`, `lun.unfenced`), or null when nothing changes (the same fence again, or no fence to lift).
 * Fencing a fenced LUN again with another reason or agent keeps its `sinceMs`.
 */
export function fenceChange(rec: LunRecord, fence: { reason: string; by: string } | null, by: string, now = Date.now()): { next: LunRecord; details: Record<string, unknown> } | null {
  const old = rec.fenced;
  if (fence ? old?.reason === fence.reason && old.by === fence.by : !old) return null;
  const { fenced: _dropped, ...rest } = rec;
  if (fence) return { next: { ...rest, fenced: { reason: fence.reason, by: fence.by, sinceMs: old?.sinceMs ?? now } }, details: { lun: rec.id, name: rec.name, reason: fence.reason, by: fence.by } };
  return { next: rest, details: { lun: rec.id, name: rec.name, by, reason: old!.reason, fencedBy: old!.by, fencedMs: now - old!.sinceMs } };
}
