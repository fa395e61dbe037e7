import { CMD, CMD_FLAG, LIMITS } from './constants.js';
import { offsetOf } from './request.js';

/**
 * Write payloads at least this long are read from the socket straight into their pooled buffer
 * (one read each); smaller ones arrive with their neighbours in the shared read buffer (one read
 * for many requests) and are copied out of it into a pooled buffer.
 */
export const DIRECT_READ_MIN = 64 * 1024;

/** A large write whose payload is being assembled in its pooled buffer as it arrives. */
export interface PendingWrite {
  flags: number;
  hi: number;
  lo: number;
  offset: number;
  length: number;
  buf: Buffer;
  filled: number;
}

/**
 * The large write of a connection whose payload is still arriving: bytes copied from received
 * chunks, or read by the kernel straight into its buffer (`readBuffer`).
 */
export class PayloadFill {
  pending: PendingWrite | null = null;
  /** The view of `pending.buf` that the socket reads into directly, if it does. */
  private readTarget: Buffer | null = null;

  start(w: PendingWrite): void {
    if (this.pending) throw new Error(`NBD payload fill started over a pending write of ${this.pending.length} bytes`);
    this.pending = w;
  }

  /** Where the next socket read should land: the rest of the pending payload (when `direct`), or `shared`. */
  readBuffer(shared: Buffer, direct: boolean): Buffer {
    const f = this.pending;
    this.readTarget = f && direct ? f.buf.subarray(f.filled) : null;
    return this.readTarget ?? shared;
  }

  /** Whether a read into `buf` went straight into the pending payload. */
  isDirect(buf: Buffer): boolean {
    return this.pending !== null && buf === this.readTarget;
  }

  /** Copies what `view` holds of the pending payload; returns the bytes taken. */
  copyFrom(view: Buffer): number {
    const f = this.pending!;
    const n = Math.min(view.length, f.length - f.filled);
    view.copy(f.buf, f.filled, 0, n);
    return n;
  }

  /** `n` more bytes of the payload are in: the write once it is complete, else null. */
  advance(n: number): PendingWrite | null {
    const f = this.pending!;
    f.filled += n;
    if (f.filled < f.length) return null;
    this.pending = null;
    return f;
  }

  /** Forgets the pending write (the connection ended): the bytes it was charged. */
  drop(): number {
    const bytes = this.pending?.length ?? 0;
    this.pending = null;
    return bytes;
  }
}

/**
 * The header at the start of `view`, if it is a write whose payload is large enough to be read
 * into a pooled buffer (and within the limit); else null.
 */
export function largeWriteAt(view: Buffer, requestMagic: number, extended: boolean): Omit<PendingWrite, 'buf' | 'filled'> | null {
  if (view.readUInt32BE(0) !== requestMagic || view.readUInt16BE(6) !== CMD.WRITE) return null;
  const length = extended ? offsetOf(view.readUInt32BE(24), view.readUInt32BE(28)) : view.readUInt32BE(24);
  if (length < DIRECT_READ_MIN || length > LIMITS.MAX_PAYLOAD) return null;
  return {
    flags: view.readUInt16BE(4) & ~CMD_FLAG.PAYLOAD_LEN,
    hi: view.readUInt32BE(8),
    lo: view.readUInt32BE(12),
    offset: offsetOf(view.readUInt32BE(16), view.readUInt32BE(20)),
    length,
  };
}
