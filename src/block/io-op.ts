import { assertRange, BlockError, type BlockDevice, type DeviceCapabilities, type Extent, type WriteOptions, type ZeroOptions } from './device.js';

/**
 * One BlockDevice request as data: what crosses a process boundary (CMI between the SPs, the
 * chassis's host-I/O channel) and what a router decides on. `execIoOp` turns an op back into a
 * call on a device; `OpDevice` turns the nine calls of a device into ops. Together they are the
 * only adapter between the two shapes.
 */
export type IoOpKind = 'read' | 'write' | 'flush' | 'trim' | 'zero' | 'status' | 'cache';

export interface IoOp {
  op: IoOpKind;
  offset: number;
  length: number;
  fua?: boolean;
  noHole?: boolean;
  fastZero?: boolean;
}

export interface IoResult {
  data?: Buffer;
  extents?: Extent[];
}

const IO_OP_KINDS: ReadonlySet<string> = new Set<IoOpKind>(['read', 'write', 'flush', 'trim', 'zero', 'status', 'cache']);

/** Writes, trims and zeroes: the ops that change the data. */
export function modifiesData(op: IoOpKind): boolean {
  return op === 'write' || op === 'trim' || op === 'zero';
}

/** Reads, block status and cache hints: the ops that look at the data. */
export function readsData(op: IoOpKind): boolean {
  return op === 'read' || op === 'status' || op === 'cache';
}

/**
 * An op as received from another process, checked field by field: a malformed op is refused
 * with EINVAL, never run. Only the known fields are kept.
 */
export function parseIoOp(raw: Record<string, unknown>): IoOp {
  const op = raw.op;
  if (typeof op !== 'string' || !IO_OP_KINDS.has(op)) throw new BlockError('EINVAL', `unknown I/O op ${JSON.stringify(op)}`);
  const offset = Number(raw.offset ?? 0);
  const length = Number(raw.length ?? 0);
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new BlockError('EINVAL', `I/O op ${op}: bad range ${String(raw.offset)}+${String(raw.length)}`);
  }
  const out: IoOp = { op: op as IoOpKind, offset, length };
  if (raw.fua === true) out.fua = true;
  if (raw.noHole === true) out.noHole = true;
  if (raw.fastZero === true) out.fastZero = true;
  return out;
}

/** Runs `op` on `dev`. */
export async function execIoOp(dev: BlockDevice, op: IoOp, data: Buffer | undefined): Promise<IoResult> {
  switch (op.op) {
    case 'read':
      return { data: await dev.read(op.offset, op.length) };
    case 'write':
      if (!data) throw new BlockError('EINVAL', 'write without data');
      if (data.length !== op.length) throw new BlockError('EINVAL', `write of ${op.length} bytes carries ${data.length}`);
      await dev.write(op.offset, data, op.fua ? { fua: true } : undefined);
      return {};
    case 'flush':
      await dev.flush();
      return {};
    case 'trim':
      await dev.trim(op.offset, op.length, op.fua ? { fua: true } : undefined);
      return {};
    case 'zero':
      await dev.writeZeroes(op.offset, op.length, { fua: op.fua, noHole: op.noHole, fastZero: op.fastZero });
      return {};
    case 'status':
      return { extents: await dev.blockStatus(op.offset, op.length) };
    case 'cache':
      await dev.cache(op.offset, op.length);
      return {};
    default:
      throw new BlockError('EINVAL', `unknown op ${String((op as IoOp).op)}`);
  }
}

/**
 * A BlockDevice whose requests are ops handed to `runOp` (a router, a channel to another
 * process). It asserts each request's range against `size` before it leaves, and each answer on
 * return: a read brings exactly the bytes asked for.
 */
export abstract class OpDevice implements BlockDevice {
  abstract readonly size: number;
  abstract readonly blockSize: number;
  abstract readonly readOnly: boolean;
  abstract readonly capabilities: DeviceCapabilities;
  /** Names the device in errors (e.g. "LUN 3"). */
  protected abstract readonly label: string;

  protected abstract runOp(op: IoOp, data: Buffer | undefined): Promise<IoResult>;

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    assertRange(this, offset, length);
    const r = await this.runOp({ op: 'read', offset, length }, undefined);
    const d = r.data ?? (length === 0 ? Buffer.alloc(0) : undefined);
    if (!d || d.length !== length) throw new BlockError('EIO', `${this.label}: read of ${length} bytes returned ${d?.length ?? 'no'} bytes`);
    if (!into) return d;
    d.copy(into, 0, 0, length);
    return into;
  }
  async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    assertRange(this, offset, data.length);
    await this.runOp({ op: 'write', offset, length: data.length, fua: opts?.fua }, data);
  }
  async flush(): Promise<void> {
    await this.runOp({ op: 'flush', offset: 0, length: 0 }, undefined);
  }
  async trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    assertRange(this, offset, length);
    await this.runOp({ op: 'trim', offset, length, fua: opts?.fua }, undefined);
  }
  async writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    assertRange(this, offset, length);
    await this.runOp({ op: 'zero', offset, length, fua: opts?.fua, noHole: opts?.noHole, fastZero: opts?.fastZero }, undefined);
  }
  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    assertRange(this, offset, length);
    const r = await this.runOp({ op: 'status', offset, length }, undefined);
    return r.extents ?? [{ length, hole: false, zero: false }];
  }
  async cache(offset: number, length: number): Promise<void> {
    assertRange(this, offset, length);
    await this.runOp({ op: 'cache', offset, length }, undefined);
  }
  /** An op device is a view of a device owned elsewhere: closing it closes nothing. */
  async close(): Promise<void> {}
}
