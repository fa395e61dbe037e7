import {
  CHUNK,
  ERR,
  EXTENDED_REPLY_MAGIC,
  REPLY_FLAG_DONE,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
  type NbdErrno,
} from './constants.js';
import type { BufferPool } from './buffer-pool.js';

/** Which reply format the handshake settled: simple, structured chunks, or extended headers. */
export type ReplyMode = 'simple' | 'structured' | 'extended';

/** A reply buffer with room for read data at `dataAt`. */
export interface DataReply {
  buf: Buffer;
  dataAt: number;
}

/**
 * Encodes transmission replies in the session's mode. Cookies travel as two u32 halves so the
 * hot path allocates nothing but the reply itself. In extended mode every reply is a chunk (no
 * simple replies), and chunk headers carry the request's offset and a 64-bit length.
 */
export class ReplyEncoder {
  readonly chunkHeader: number;

  constructor(readonly mode: ReplyMode) {
    this.chunkHeader = mode === 'extended' ? 32 : 20;
  }

  /** Success without data. Structured mode may use a simple reply (the spec allows it). */
  ok(hi: number, lo: number, offset: number): Buffer {
    if (this.mode === 'extended') return this.chunk(hi, lo, offset, REPLY_FLAG_DONE, CHUNK.NONE, 0);
    const b = Buffer.allocUnsafe(16);
    writeSimple(b, hi, lo, 0);
    return b;
  }

  /** Failure. Once chunks are negotiated, errors are ERROR chunks with a message. */
  error(hi: number, lo: number, offset: number, errno: NbdErrno, message: string): Buffer {
    if (this.mode === 'simple') {
      // A simple error reply to a read carries no data.
      const b = Buffer.allocUnsafe(16);
      writeSimple(b, hi, lo, ERR[errno]);
      return b;
    }
    const msg = Buffer.from(message.slice(0, 200), 'utf8');
    const { buf, dataAt } = this.alloc(hi, lo, offset, REPLY_FLAG_DONE, CHUNK.ERROR, 6 + msg.length);
    buf.writeUInt32BE(ERR[errno], dataAt);
    buf.writeUInt16BE(msg.length, dataAt + 4);
    msg.copy(buf, dataAt + 6);
    return buf;
  }

  /**
   * A read reply of `length` bytes at `at` (OFFSET_DATA chunk, or simple reply + data), in a
   * buffer from `pool` when given (the caller then gives it back once it is written).
   */
  data(hi: number, lo: number, reqOffset: number, at: number, length: number, done: boolean, pool?: BufferPool): DataReply {
    if (this.mode === 'simple') {
      const buf = pool ? pool.get(16 + length) : Buffer.allocUnsafe(16 + length);
      writeSimple(buf, hi, lo, 0);
      return { buf, dataAt: 16 };
    }
    const r = this.alloc(hi, lo, reqOffset, done ? REPLY_FLAG_DONE : 0, CHUNK.OFFSET_DATA, 8 + length, pool);
    writeU64(r.buf, r.dataAt, at);
    return { buf: r.buf, dataAt: r.dataAt + 8 };
  }

  hole(hi: number, lo: number, reqOffset: number, at: number, length: number, done: boolean): Buffer {
    const { buf, dataAt } = this.alloc(hi, lo, reqOffset, done ? REPLY_FLAG_DONE : 0, CHUNK.OFFSET_HOLE, 12);
    writeU64(buf, dataAt, at);
    buf.writeUInt32BE(length, dataAt + 8);
    return buf;
  }

  /** The final empty chunk of a structured reply (e.g. a zero-length read). */
  done(hi: number, lo: number, offset: number): Buffer {
    return this.chunk(hi, lo, offset, REPLY_FLAG_DONE, CHUNK.NONE, 0);
  }

  /** Marks a chunk built with done=false as the last one of its reply. */
  static markDone(chunk: Buffer): void {
    chunk.writeUInt16BE(REPLY_FLAG_DONE, 4);
  }

  /** base:allocation extents: 32-bit descriptors, or 64-bit ones with extended headers. */
  blockStatus(hi: number, lo: number, offset: number, contextId: number, extents: [number, number][]): Buffer {
    if (this.mode === 'extended') {
      const { buf, dataAt } = this.alloc(hi, lo, offset, REPLY_FLAG_DONE, CHUNK.BLOCK_STATUS_EXT, 8 + 16 * extents.length);
      buf.writeUInt32BE(contextId, dataAt);
      buf.writeUInt32BE(extents.length, dataAt + 4);
      let p = dataAt + 8;
      for (const [len, state] of extents) {
        writeU64(buf, p, len);
        writeU64(buf, p + 8, state);
        p += 16;
      }
      return buf;
    }
    const { buf, dataAt } = this.alloc(hi, lo, offset, REPLY_FLAG_DONE, CHUNK.BLOCK_STATUS, 4 + 8 * extents.length);
    buf.writeUInt32BE(contextId, dataAt);
    let p = dataAt + 4;
    for (const [len, state] of extents) {
      buf.writeUInt32BE(len, p);
      buf.writeUInt32BE(state, p + 4);
      p += 8;
    }
    return buf;
  }

  private alloc(hi: number, lo: number, offset: number, flags: number, type: number, payload: number, pool?: BufferPool): DataReply {
    const size = this.chunkHeader + payload;
    const buf = pool ? pool.get(size) : Buffer.allocUnsafe(size);
    this.writeChunkHeader(buf, hi, lo, offset, flags, type, payload);
    return { buf, dataAt: this.chunkHeader };
  }

  private chunk(hi: number, lo: number, offset: number, flags: number, type: number, payload: number): Buffer {
    return this.alloc(hi, lo, offset, flags, type, payload).buf;
  }

  private writeChunkHeader(b: Buffer, hi: number, lo: number, offset: number, flags: number, type: number, payload: number): void {
    if (this.mode === 'extended') {
      b.writeUInt32BE(EXTENDED_REPLY_MAGIC, 0);
      b.writeUInt16BE(flags, 4);
      b.writeUInt16BE(type, 6);
      b.writeUInt32BE(hi, 8);
      b.writeUInt32BE(lo, 12);
      writeU64(b, 16, offset);
      writeU64(b, 24, payload);
      return;
    }
    b.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
    b.writeUInt16BE(flags, 4);
    b.writeUInt16BE(type, 6);
    b.writeUInt32BE(hi, 8);
    b.writeUInt32BE(lo, 12);
    b.writeUInt32BE(payload, 16);
  }
}

function writeSimple(b: Buffer, hi: number, lo: number, error: number): void {
  b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  b.writeUInt32BE(hi, 8);
  b.writeUInt32BE(lo, 12);
}

export function writeU64(b: Buffer, at: number, v: number): void {
  b.writeUInt32BE(Math.floor(v / 0x100000000), at);
  b.writeUInt32BE(v >>> 0, at + 4);
}
