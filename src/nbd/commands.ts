import { errnoOf, type BlockDevice, type Extent, type WriteOptions } from '../block/index.js';
import type { BufferPool } from './buffer-pool.js';
import { BASE_ALLOCATION_ID, CMD, CMD_FLAG, STATE_HOLE, STATE_ZERO, type NbdErrno } from './constants.js';
import type { Outbox } from './outbox.js';
import { ReplyEncoder } from './replies.js';

/** Reads at least this long are sent as data and hole chunks when the device knows its holes. */
const SPARSE_READ_MIN = 64 * 1024;
/** The options of a FUA write, shared: no object per write. */
const FUA: WriteOptions = Object.freeze({ fua: true });

/** What a session has served (its requests, errors and bytes). */
export interface SessionStats {
  requests: number;
  errors: number;
  bytesRead: number;
  bytesWritten: number;
}

/** What the commands of a session act on and answer through. */
export interface CommandTarget {
  device: BlockDevice;
  replies: ReplyEncoder;
  outbox: Outbox;
  pool: BufferPool;
  stats: SessionStats;
  /** Gives back budget a read was charged and did not pass on to its reply. */
  uncharge(n: number): void;
}

/**
 * The transmission commands of one session, once a request is valid and admitted: each runs on
 * the export's device and queues its reply (or an error reply) in the session's outbox. The
 * promise settles when the reply is queued; it rejects only on a bug.
 */
export class Commands {
  constructor(private readonly t: CommandTarget) {}

  /** Runs one validated request (`payload`: a write's data, which the device must not keep once the write settled). */
  run(type: number, flags: number, hi: number, lo: number, offset: number, length: number, payload: Buffer | null): Promise<void> {
    switch (type) {
      case CMD.READ:
        return this.read(hi, lo, offset, length, flags);
      case CMD.WRITE:
        return this.simple(hi, lo, offset, this.t.device.write(offset, payload!, (flags & CMD_FLAG.FUA) !== 0 ? FUA : undefined), () => {
          this.t.stats.bytesWritten += length;
        });
      case CMD.FLUSH:
        return this.simple(hi, lo, offset, this.t.device.flush());
      case CMD.TRIM:
        return this.simple(hi, lo, offset, this.t.device.trim(offset, length, { fua: (flags & CMD_FLAG.FUA) !== 0 }));
      case CMD.WRITE_ZEROES:
        return this.simple(
          hi,
          lo,
          offset,
          this.t.device.writeZeroes(offset, length, {
            fua: (flags & CMD_FLAG.FUA) !== 0,
            noHole: (flags & CMD_FLAG.NO_HOLE) !== 0,
            fastZero: (flags & CMD_FLAG.FAST_ZERO) !== 0,
          }),
        );
      case CMD.CACHE:
        return this.simple(hi, lo, offset, this.t.device.cache(offset, length));
      case CMD.BLOCK_STATUS:
        return this.blockStatus(hi, lo, offset, length, (flags & CMD_FLAG.REQ_ONE) !== 0);
      default:
        throw new Error(`dispatch of unvalidated command ${type}`);
    }
  }

  /** Runs an operation without reply data (not async: one promise per request, not three). */
  private simple(hi: number, lo: number, offset: number, op: Promise<void>, onOk?: () => void): Promise<void> {
    return op.then(
      () => {
        onOk?.();
        this.t.outbox.send(this.t.replies.ok(hi, lo, offset));
      },
      (err: unknown) => this.replyError(hi, lo, offset, errnoOf(err), (err as Error).message),
    );
  }

  private async read(hi: number, lo: number, offset: number, length: number, flags: number): Promise<void> {
    const dev = this.t.device;
    const r = this.t.replies;
    // `length` bytes were charged when the read was admitted; its reply takes the charge over.
    let prepaid = length;
    try {
      if (length === 0 && r.mode !== 'simple') {
        this.t.outbox.send(r.done(hi, lo, offset));
        return;
      }
      if (r.mode !== 'simple' && length >= SPARSE_READ_MIN && !(flags & CMD_FLAG.DF) && dev.capabilities.sparseStatus) {
        await this.sparseRead(hi, lo, offset, length);
        prepaid = 0;
        return;
      }
      const pool = this.t.pool;
      const { buf, dataAt } = r.data(hi, lo, offset, offset, length, true, pool);
      try {
        await dev.read(offset, length, buf.subarray(dataAt));
      } catch (err) {
        pool.put(buf);
        throw err;
      }
      this.t.stats.bytesRead += length;
      prepaid = 0;
      this.t.outbox.send(buf, length, true);
    } catch (err) {
      this.replyError(hi, lo, offset, errnoOf(err), (err as Error).message);
    } finally {
      this.t.uncharge(prepaid);
    }
  }

  /** A large read as OFFSET_DATA and OFFSET_HOLE chunks: holes cost 12 bytes, not their length. */
  private async sparseRead(hi: number, lo: number, offset: number, length: number): Promise<void> {
    const dev = this.t.device;
    const r = this.t.replies;
    const extents = await dev.blockStatus(offset, length);
    const chunks: Buffer[] = [];
    let pos = offset;
    const end = offset + length;
    for (const e of extents) {
      if (pos >= end) break;
      const len = Math.min(e.length, end - pos);
      if (e.zero) {
        chunks.push(r.hole(hi, lo, offset, pos, len, false));
      } else {
        const { buf, dataAt } = r.data(hi, lo, offset, pos, len, false);
        await dev.read(pos, len, buf.subarray(dataAt));
        chunks.push(buf);
      }
      pos += len;
    }
    if (pos < end) {
      // The device described less than asked: the rest goes as data.
      const { buf, dataAt } = r.data(hi, lo, offset, pos, end - pos, false);
      await dev.read(pos, end - pos, buf.subarray(dataAt));
      chunks.push(buf);
    }
    // Only the last chunk carries DONE, and only once every read has succeeded.
    ReplyEncoder.markDone(chunks[chunks.length - 1]!);
    this.t.stats.bytesRead += length;
    this.t.outbox.sendAll(chunks, length);
  }

  private async blockStatus(hi: number, lo: number, offset: number, length: number, reqOne: boolean): Promise<void> {
    let extents: Extent[];
    try {
      extents = await this.t.device.blockStatus(offset, length);
    } catch (err) {
      this.replyError(hi, lo, offset, errnoOf(err), (err as Error).message);
      return;
    }
    const merged = mergeExtents(extents, length, reqOne, this.t.replies.mode === 'extended' ? Number.MAX_SAFE_INTEGER : 0xffffffff);
    if (merged.length === 0) {
      this.replyError(hi, lo, offset, 'EIO', 'device returned no extents');
      return;
    }
    this.t.outbox.send(this.t.replies.blockStatus(hi, lo, offset, BASE_ALLOCATION_ID, merged));
  }

  // ---- replies ----------------------------------------------------------------------------

  replyError(hi: number, lo: number, offset: number, errno: NbdErrno, message: string): void {
    this.t.stats.errors++;
    this.t.outbox.send(this.t.replies.error(hi, lo, offset, errno, message));
  }
}

/** Extents as (length, state) pairs: adjacent equal states joined, clipped to the request. */
export function mergeExtents(extents: Extent[], length: number, reqOne: boolean, maxExtent = 0xffffffff): [number, number][] {
  const out: [number, number][] = [];
  let total = 0;
  for (const e of extents) {
    if (total >= length || e.length <= 0) break;
    const len = Math.min(e.length, length - total);
    const state = (e.hole ? STATE_HOLE : 0) | (e.zero ? STATE_ZERO : 0);
    const last = out[out.length - 1];
    if (last && last[1] === state && last[0] + len <= maxExtent) last[0] += len;
    else out.push([len, state]);
    total += len;
  }
  return reqOne ? out.slice(0, 1) : out;
}
