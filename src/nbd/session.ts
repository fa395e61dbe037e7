import type { Socket } from 'node:net';
import { errnoOf, type BlockDevice, type Extent } from '../block/index.js';
import { ByteQueue } from './byte-queue.js';
import {
  BASE_ALLOCATION_ID,
  CHUNK,
  CMD,
  CMD_FLAG,
  ERR,
  IHAVEOPT_HI,
  IHAVEOPT_LO,
  LIMITS,
  OPT,
  REP,
  REPLY_FLAG_DONE,
  REQUEST_MAGIC,
  SIMPLE_REPLY_MAGIC,
  STATE_HOLE,
  STATE_ZERO,
  STRUCTURED_REPLY_MAGIC,
  type NbdErrno,
} from './constants.js';
import type { ExportCatalog } from './export.js';
import { greeting, Negotiation, optionReply, type Negotiated } from './negotiation.js';
import { offsetOf, validateRequest } from './request.js';

export interface SessionLimits {
  /** Requests being served at once per connection; past it we stop reading the socket. */
  maxInflight: number;
  /** Payload bytes (write data held, read data being produced) in flight per connection. */
  maxInflightBytes: number;
  /** Reply bytes queued in the socket before we stop reading requests. */
  maxQueuedReplyBytes: number;
  /** A client must finish negotiating within this time. */
  handshakeTimeoutMs: number;
}

export const DEFAULT_LIMITS: SessionLimits = {
  maxInflight: 256,
  maxInflightBytes: 96 * 1024 * 1024,
  maxQueuedReplyBytes: 32 * 1024 * 1024,
  handshakeTimeoutMs: 30_000,
};

/** Reads at least this long are sent as data and hole chunks when the device knows its holes. */
const SPARSE_READ_MIN = 64 * 1024;
/** Replies smaller than this in total are joined into one buffer; larger go out with writev. */
const JOIN_REPLIES_BELOW = 256 * 1024;

type Phase = 'client-flags' | 'options' | 'transmission' | 'closing' | 'closed';

export interface SessionStats {
  requests: number;
  errors: number;
  bytesRead: number;
  bytesWritten: number;
}

export interface SessionHooks {
  catalog: ExportCatalog;
  shuttingDown(): boolean;
  onTransmission(session: Session): void;
  onClose(session: Session, reason: string): void;
}

/**
 * One client connection: handshake, then the transmission phase. Requests are parsed straight
 * out of the received chunks, served concurrently (replies in any order, cookies echoed), and
 * the replies produced in one turn of the event loop leave in one socket write.
 */
export class Session {
  readonly stats: SessionStats = { requests: 0, errors: 0, bytesRead: 0, bytesWritten: 0 };
  readonly remote: string;
  private phase: Phase = 'client-flags';
  private readonly input = new ByteQueue();
  private negotiation: Negotiation | null = null;
  private negotiated: Negotiated | null = null;
  private device: BlockDevice | null = null;
  private handshakeTimer: NodeJS.Timeout | null;

  private inflight = 0;
  private inflightBytes = 0;
  /** Input is paused because of our limits (not because the client is slow). */
  private stalled = false;
  private draining = false;
  /** Bytes of an oversized write still to be thrown away, and the reply owed after them. */
  private discardLeft = 0;
  private discardCookie: [number, number] = [0, 0];
  /** Option data still to be thrown away before answering ERR_TOO_BIG. */
  private discardOptionLeft = 0;
  private discardOption = 0;

  private out: Buffer[] = [];
  private outBytes = 0;
  private flushQueued = false;
  private shutdown = false;
  private idleWaiters: (() => void)[] = [];
  closeReason = '';

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly hooks: SessionHooks,
    private readonly limits: SessionLimits = DEFAULT_LIMITS,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.maybeResume());
    socket.on('error', (err) => this.terminate(`socket error: ${err.message}`));
    socket.on('close', () => this.terminate(this.closeReason || 'client closed the connection'));
    socket.on('end', () => {
      if (this.phase !== 'closed') this.closeReason ||= 'client closed the connection';
      // Half-closed by the client: answer what is in flight, then close our side.
      this.afterIdle(() => this.endSocket());
    });
    this.handshakeTimer = setTimeout(() => this.abort('handshake timed out'), limits.handshakeTimeoutMs);
    this.handshakeTimer.unref();
    this.send(greeting());
  }

  get exportName(): string | null {
    return this.negotiated?.export.name ?? null;
  }

  /** What this connection holds in memory right now: the figures back-pressure bounds. */
  get load(): { inflight: number; inflightBytes: number; queuedReplyBytes: number; bufferedInputBytes: number } {
    return {
      inflight: this.inflight,
      inflightBytes: this.inflightBytes,
      queuedReplyBytes: this.outBytes + (this.socket.writableLength ?? 0),
      bufferedInputBytes: this.input.length,
    };
  }

  get inTransmission(): boolean {
    return this.phase === 'transmission';
  }

  /**
   * Graceful shutdown: new requests get ESHUTDOWN, in-flight ones finish (or the grace period
   * ends), the device is flushed and the connection closed.
   */
  async close(graceMs: number): Promise<void> {
    if (this.phase === 'closed') return;
    this.shutdown = true;
    if (this.phase !== 'transmission') {
      this.abort('server shutting down');
      return;
    }
    const idle = new Promise<void>((resolve) => this.afterIdle(resolve));
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([idle, grace]);
    clearTimeout(timer);
    try {
      await this.device?.flush();
    } catch {
      /* the flush error reaches no client; in-flight requests already reported their own */
    }
    this.closeReason ||= 'server shutting down';
    this.endSocket();
  }

  /** Hard disconnect (protocol violation, timeout): drop the connection now. */
  abort(reason: string): void {
    if (this.phase === 'closed') return;
    this.closeReason ||= reason;
    this.socket.destroy();
    this.terminate(reason);
  }

  private terminate(reason: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.closeReason ||= reason;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.input.clear();
    this.out = [];
    this.hooks.onClose(this, this.closeReason);
  }

  private endSocket(): void {
    if (this.phase === 'closed') return;
    this.flushOut();
    this.phase = 'closing';
    this.socket.end();
  }

  // ---- input ------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.phase === 'closed' || this.phase === 'closing') return;
    this.input.push(chunk);
    this.pump();
  }

  private pump(): void {
    try {
      if (this.phase === 'client-flags' || this.phase === 'options') this.pumpHandshake();
      if (this.phase === 'transmission') this.pumpTransmission();
    } catch (err) {
      // A bug here must not take the process (and every other connection) down.
      this.abort(`internal error: ${(err as Error).stack ?? err}`);
    }
  }

  private pumpHandshake(): void {
    const q = this.input;
    while (this.phase === 'client-flags' || this.phase === 'options') {
      if (this.phase === 'client-flags') {
        if (q.length < 4) return;
        const flags = q.readUInt32BE(0);
        q.skip(4);
        const bad = Negotiation.clientFlagsError(flags);
        if (bad) return this.abort(bad);
        this.negotiation = new Negotiation(this.hooks.catalog, flags, this.hooks.shuttingDown);
        this.phase = 'options';
        continue;
      }
      if (this.discardOptionLeft > 0) {
        this.discardOptionLeft -= q.skip(this.discardOptionLeft);
        if (this.discardOptionLeft > 0) return;
        this.send(optionReply(this.discardOption, REP.ERR_TOO_BIG, Buffer.from('option data too large')));
        continue;
      }
      if (q.length < 16) return;
      if (q.readUInt32BE(0) !== IHAVEOPT_HI || q.readUInt32BE(4) !== IHAVEOPT_LO) return this.abort('bad option magic');
      const option = q.readUInt32BE(8);
      const length = q.readUInt32BE(12);
      if (length > LIMITS.MAX_OPTION_DATA) {
        if (option === OPT.EXPORT_NAME || length > LIMITS.MAX_OPTION_DISCARD) return this.abort(`option ${option} with ${length} bytes of data`);
        // Throw the data away as it arrives, then refuse: the connection stays usable.
        q.skip(16);
        this.discardOption = option;
        this.discardOptionLeft = length;
        continue;
      }
      if (q.length < 16 + length) return;
      q.skip(16);
      const data = q.take(length);
      const outcome = this.negotiation!.handle(option, data);
      for (const r of outcome.replies) this.send(r);
      if (outcome.then === 'close') {
        this.flushOut();
        this.closeReason = outcome.reason;
        this.phase = 'closing';
        this.socket.end();
        return;
      }
      if (outcome.then === 'transmission') this.enterTransmission(outcome.negotiated);
    }
  }

  private enterTransmission(n: Negotiated): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.negotiated = n;
    this.device = n.export.device;
    this.phase = 'transmission';
    this.hooks.onTransmission(this);
  }

  private pumpTransmission(): void {
    const q = this.input;
    const n = this.negotiated!;
    while (this.phase === 'transmission') {
      if (this.discardLeft > 0) {
        this.discardLeft -= q.skip(this.discardLeft);
        if (this.discardLeft > 0) return;
        this.replyError(this.discardCookie[0], this.discardCookie[1], 'EINVAL', 'write payload larger than the maximum block size', false);
        continue;
      }
      if (q.length < 28) return;
      if (this.congested()) {
        this.stall();
        return;
      }
      if (q.readUInt32BE(0) !== REQUEST_MAGIC) return this.abort('bad request magic');
      const flags = q.readUInt16BE(4);
      const type = q.readUInt16BE(6);
      const hi = q.readUInt32BE(8);
      const lo = q.readUInt32BE(12);
      const offset = offsetOf(q.readUInt32BE(16), q.readUInt32BE(20));
      const length = q.readUInt32BE(24);
      let payload: Buffer | null = null;
      if (type === CMD.WRITE) {
        if (length > LIMITS.MAX_PAYLOAD) {
          if (length > LIMITS.MAX_DISCARD) return this.abort(`write payload of ${length} bytes`);
          q.skip(28);
          this.discardLeft = length;
          this.discardCookie = [hi, lo];
          continue;
        }
        if (q.length < 28 + length) return; // wait for the whole payload
        q.skip(28);
        payload = q.take(length);
      } else {
        q.skip(28);
      }
      this.stats.requests++;
      const bad = validateRequest(n, this.device!.size, type, flags, offset, length);
      if (bad) {
        this.replyError(hi, lo, bad, describe(bad, type, offset, length), type === CMD.READ);
        continue;
      }
      if (type === CMD.DISC) {
        this.closeReason = 'client sent NBD_CMD_DISC';
        this.phase = 'closing';
        this.afterIdle(() => {
          this.phase = 'transmission';
          this.endSocket();
        });
        return;
      }
      if (this.shutdown) {
        this.replyError(hi, lo, 'ESHUTDOWN', 'server is shutting down', type === CMD.READ);
        continue;
      }
      this.dispatch(type, flags, hi, lo, offset, length, payload);
    }
  }

  /** True when reading more requests would grow memory past the limits. */
  private congested(): boolean {
    if (this.socket.writableLength + this.outBytes >= this.limits.maxQueuedReplyBytes) return true;
    // One request is always admitted, however large, so progress never depends on the limits.
    return this.inflight > 0 && (this.inflight >= this.limits.maxInflight || this.inflightBytes >= this.limits.maxInflightBytes);
  }

  private stall(): void {
    if (this.stalled) return;
    this.stalled = true;
    this.socket.pause();
  }

  private maybeResume(): void {
    if (!this.stalled || this.phase !== 'transmission' || this.congested()) return;
    this.stalled = false;
    this.socket.resume();
    this.pump();
  }

  // ---- commands ---------------------------------------------------------------------------

  private dispatch(type: number, flags: number, hi: number, lo: number, offset: number, length: number, payload: Buffer | null): void {
    const bytes = type === CMD.READ ? length : type === CMD.WRITE ? length : 0;
    this.inflight++;
    this.inflightBytes += bytes;
    let work: Promise<void>;
    switch (type) {
      case CMD.READ:
        work = this.read(hi, lo, offset, length, flags);
        break;
      case CMD.WRITE:
        work = this.simple(hi, lo, this.device!.write(offset, payload!, { fua: (flags & CMD_FLAG.FUA) !== 0 }), () => {
          this.stats.bytesWritten += length;
        });
        break;
      case CMD.FLUSH:
        work = this.simple(hi, lo, this.device!.flush());
        break;
      case CMD.TRIM:
        work = this.simple(hi, lo, this.device!.trim(offset, length, { fua: (flags & CMD_FLAG.FUA) !== 0 }));
        break;
      case CMD.WRITE_ZEROES:
        work = this.simple(
          hi,
          lo,
          this.device!.writeZeroes(offset, length, {
            fua: (flags & CMD_FLAG.FUA) !== 0,
            noHole: (flags & CMD_FLAG.NO_HOLE) !== 0,
            fastZero: (flags & CMD_FLAG.FAST_ZERO) !== 0,
          }),
        );
        break;
      case CMD.CACHE:
        work = this.simple(hi, lo, this.device!.cache(offset, length));
        break;
      case CMD.BLOCK_STATUS:
        work = this.blockStatus(hi, lo, offset, length, (flags & CMD_FLAG.REQ_ONE) !== 0);
        break;
      default:
        throw new Error(`dispatch of unvalidated command ${type}`);
    }
    work
      .catch((err) => this.abort(`internal error: ${(err as Error).stack ?? err}`))
      .finally(() => {
        this.inflight--;
        this.inflightBytes -= bytes;
        if (this.inflight === 0) this.wakeIdle();
        this.maybeResume();
      });
  }

  /** Runs an operation without reply data; success is a 16-byte simple reply. */
  private async simple(hi: number, lo: number, op: Promise<void>, onOk?: () => void): Promise<void> {
    try {
      await op;
    } catch (err) {
      this.replyError(hi, lo, errnoOf(err), (err as Error).message, false);
      return;
    }
    onOk?.();
    this.send(simpleHeader(hi, lo, 0));
  }

  private async read(hi: number, lo: number, offset: number, length: number, flags: number): Promise<void> {
    const n = this.negotiated!;
    const dev = this.device!;
    try {
      if (!n.structured) {
        const buf = Buffer.allocUnsafe(16 + length);
        await dev.read(offset, length, buf.subarray(16));
        writeSimpleHeader(buf, hi, lo, 0);
        this.stats.bytesRead += length;
        this.send(buf);
        return;
      }
      if (length === 0) {
        this.send(structuredHeader(hi, lo, REPLY_FLAG_DONE, CHUNK.NONE, 0));
        return;
      }
      if (length >= SPARSE_READ_MIN && !(flags & CMD_FLAG.DF) && dev.capabilities.sparseStatus) {
        await this.sparseRead(hi, lo, offset, length);
        return;
      }
      const buf = Buffer.allocUnsafe(28 + length);
      await dev.read(offset, length, buf.subarray(28));
      writeStructuredHeader(buf, hi, lo, REPLY_FLAG_DONE, CHUNK.OFFSET_DATA, 8 + length);
      writeU64(buf, 20, offset);
      this.stats.bytesRead += length;
      this.send(buf);
    } catch (err) {
      this.replyError(hi, lo, errnoOf(err), (err as Error).message, true);
    }
  }

  /** A large read as OFFSET_DATA and OFFSET_HOLE chunks: holes cost 8 bytes, not their length. */
  private async sparseRead(hi: number, lo: number, offset: number, length: number): Promise<void> {
    const dev = this.device!;
    const extents = await dev.blockStatus(offset, length);
    const chunks: Buffer[] = [];
    let pos = offset;
    const end = offset + length;
    for (const e of extents) {
      if (pos >= end) break;
      const len = Math.min(e.length, end - pos);
      if (e.zero) {
        const c = Buffer.allocUnsafe(32);
        writeStructuredHeader(c, hi, lo, 0, CHUNK.OFFSET_HOLE, 12);
        writeU64(c, 20, pos);
        c.writeUInt32BE(len, 28);
        chunks.push(c);
      } else {
        const c = Buffer.allocUnsafe(28 + len);
        await dev.read(pos, len, c.subarray(28));
        writeStructuredHeader(c, hi, lo, 0, CHUNK.OFFSET_DATA, 8 + len);
        writeU64(c, 20, pos);
        chunks.push(c);
      }
      pos += len;
    }
    if (pos < end) {
      // The device described less than asked: read the rest as data.
      const c = Buffer.allocUnsafe(28 + end - pos);
      await dev.read(pos, end - pos, c.subarray(28));
      writeStructuredHeader(c, hi, lo, 0, CHUNK.OFFSET_DATA, 8 + end - pos);
      writeU64(c, 20, pos);
      chunks.push(c);
    }
    // Only the last chunk carries DONE; an error before this point sends an error chunk instead.
    chunks[chunks.length - 1]!.writeUInt16BE(REPLY_FLAG_DONE, 4);
    this.stats.bytesRead += length;
    for (const c of chunks) this.send(c);
  }

  private async blockStatus(hi: number, lo: number, offset: number, length: number, reqOne: boolean): Promise<void> {
    let extents: Extent[];
    try {
      extents = await this.device!.blockStatus(offset, length);
    } catch (err) {
      this.replyError(hi, lo, errnoOf(err), (err as Error).message, false);
      return;
    }
    const merged = mergeExtents(extents, length, reqOne);
    if (merged.length === 0) {
      this.replyError(hi, lo, 'EIO', 'device returned no extents', false);
      return;
    }
    const payloadLen = 4 + 8 * merged.length;
    const b = Buffer.allocUnsafe(20 + payloadLen);
    writeStructuredHeader(b, hi, lo, REPLY_FLAG_DONE, CHUNK.BLOCK_STATUS, payloadLen);
    b.writeUInt32BE(BASE_ALLOCATION_ID, 20);
    let p = 24;
    for (const [len, state] of merged) {
      b.writeUInt32BE(len, p);
      b.writeUInt32BE(state, p + 4);
      p += 8;
    }
    this.send(b);
  }

  // ---- replies ----------------------------------------------------------------------------

  private replyError(hi: number, lo: number, errno: NbdErrno, message: string, isRead: boolean): void {
    this.stats.errors++;
    const code = ERR[errno];
    // After structured replies are negotiated a READ never gets a simple reply, not even an error.
    if (this.negotiated?.structured) {
      const msg = Buffer.from(message.slice(0, 200), 'utf8');
      const b = Buffer.allocUnsafe(26 + msg.length);
      writeStructuredHeader(b, hi, lo, REPLY_FLAG_DONE, CHUNK.ERROR, 6 + msg.length);
      b.writeUInt32BE(code, 20);
      b.writeUInt16BE(msg.length, 24);
      msg.copy(b, 26);
      this.send(b);
      return;
    }
    void isRead; // a simple error reply to a read carries no data
    this.send(simpleHeader(hi, lo, code));
  }

  private send(buf: Buffer): void {
    if (this.phase === 'closed') return;
    this.out.push(buf);
    this.outBytes += buf.length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(() => this.flushOut());
    }
  }

  /** Everything replied in this turn of the event loop leaves in one write (or one writev). */
  private flushOut(): void {
    this.flushQueued = false;
    if (this.out.length === 0 || this.phase === 'closed') return;
    const out = this.out;
    const bytes = this.outBytes;
    this.out = [];
    this.outBytes = 0;
    if (out.length === 1) {
      this.socket.write(out[0]!);
    } else if (bytes < JOIN_REPLIES_BELOW) {
      this.socket.write(Buffer.concat(out, bytes));
    } else {
      this.socket.cork();
      for (const b of out) this.socket.write(b);
      this.socket.uncork();
    }
  }

  private afterIdle(fn: () => void): void {
    if (this.inflight === 0) fn();
    else this.idleWaiters.push(fn);
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

function simpleHeader(hi: number, lo: number, error: number): Buffer {
  const b = Buffer.allocUnsafe(16);
  writeSimpleHeader(b, hi, lo, error);
  return b;
}

function writeSimpleHeader(b: Buffer, hi: number, lo: number, error: number): void {
  b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  b.writeUInt32BE(hi, 8);
  b.writeUInt32BE(lo, 12);
}

function structuredHeader(hi: number, lo: number, flags: number, type: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(20);
  writeStructuredHeader(b, hi, lo, flags, type, length);
  return b;
}

function writeStructuredHeader(b: Buffer, hi: number, lo: number, flags: number, type: number, length: number): void {
  b.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeUInt32BE(hi, 8);
  b.writeUInt32BE(lo, 12);
  b.writeUInt32BE(length, 16);
}

function writeU64(b: Buffer, at: number, v: number): void {
  b.writeUInt32BE(Math.floor(v / 0x100000000), at);
  b.writeUInt32BE(v >>> 0, at + 4);
}

/** Extents as (length, state) pairs: adjacent equal states joined, clipped to the request. */
export function mergeExtents(extents: Extent[], length: number, reqOne: boolean): [number, number][] {
  const out: [number, number][] = [];
  let total = 0;
  for (const e of extents) {
    if (total >= length || e.length <= 0) break;
    const len = Math.min(e.length, length - total);
    const state = (e.hole ? STATE_HOLE : 0) | (e.zero ? STATE_ZERO : 0);
    const last = out[out.length - 1];
    if (last && last[1] === state && last[0] + len <= 0xffffffff) last[0] += len;
    else out.push([len, state]);
    total += len;
  }
  return reqOne ? out.slice(0, 1) : out;
}

function describe(errno: NbdErrno, type: number, offset: number, length: number): string {
  const what = Object.entries(CMD).find(([, v]) => v === type)?.[0] ?? `command ${type}`;
  switch (errno) {
    case 'EPERM':
      return `${what}: export is read-only`;
    case 'ENOSPC':
    case 'EINVAL':
      return `${what} ${Number.isFinite(offset) ? offset : 'huge offset'}+${length}: invalid request (unsupported command or flags, out of range or misaligned)`;
    default:
      return `${what}: ${errno}`;
  }
}
