/**
 * A small pipelined NBD client for the workloads and checkers (src/check): fixed newstyle,
 * NBD_OPT_GO, simple replies only (no structured replies), READ / WRITE / FLUSH / DISC.
 *
 * Every request returns a promise that settles with the server's reply. If the connection dies
 * first, every pending request rejects with a `ConnectionLost` error: the caller cannot know
 * whether such a write reached the medium (it is "in flight"), which is exactly what the ledger
 * records.
 */
import * as net from 'node:net';

const NBDMAGIC = Buffer.from('NBDMAGIC');
const IHAVEOPT = Buffer.from('IHAVEOPT');
const OPT_REPLY_MAGIC = 0x0003e889045565a9n;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const OPT_GO = 7;
const REP_ACK = 1;
const REP_INFO = 3;
const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3 } as const;
const CMD_NAMES = ['READ', 'WRITE', 'DISC', 'FLUSH'];
const FLAG_FUA = 1;
const DEFAULT_PORT = 10809;

/** NBD error numbers → names (doc/proto.md). */
export const NBD_ERRNO: Record<number, string> = { 1: 'EPERM', 5: 'EIO', 12: 'ENOMEM', 22: 'EINVAL', 28: 'ENOSPC', 75: 'EOVERFLOW', 95: 'ENOTSUP', 108: 'ESHUTDOWN' };

/** The connection ended (or could not be made) before the reply came. */
export class ConnectionLost extends Error {
  readonly code = 'ECONNLOST';
  /** The request was never sent: the connection was already closed. */
  notSent?: boolean;
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionLost';
  }
}

/** The server replied with an NBD error. `errno` is its name (EIO, ...), `nbdError` the number. */
export class NbdReplyError extends Error {
  readonly errno: string;
  constructor(
    readonly nbdError: number,
    what: string,
  ) {
    const name = NBD_ERRNO[nbdError] ?? `E#${nbdError}`;
    super(`${what}: server replied ${name} (${nbdError})`);
    this.name = 'NbdReplyError';
    this.errno = name;
  }
}

/** A URI that is not `nbd://host[:port]/export`. */
export class BadNbdUri extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadNbdUri';
  }
}

export interface NbdTarget {
  host: string;
  port: number;
  name: string;
  uri: string;
}

/** Parses `nbd://host:port/export` (export may be empty); throws BadNbdUri on anything else. */
export function parseNbdUri(uri: string): NbdTarget {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new BadNbdUri(`not a URI: ${JSON.stringify(uri)} (expected nbd://HOST[:PORT]/EXPORT)`);
  }
  if (u.protocol !== 'nbd:') throw new BadNbdUri(`not an nbd:// URI: ${uri}`);
  const port = Number(u.port || DEFAULT_PORT);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BadNbdUri(`bad port in ${uri}`);
  return { host: u.hostname || '127.0.0.1', port, name: decodeURIComponent(u.pathname.replace(/^\//, '')), uri };
}

interface Pending {
  resolve: (data: Buffer | null) => void;
  reject: (e: Error) => void;
  readLength: number;
  what: string;
}

export class NbdClient {
  /** Connects and negotiates. `timeoutMs` bounds connect + handshake. */
  static async connect(uri: string, opts: { timeoutMs?: number } = {}): Promise<NbdClient> {
    const c = new NbdClient(parseNbdUri(uri));
    await c.open(opts.timeoutMs ?? 5000);
    return c;
  }

  readonly uri: string;
  /** Export size in bytes (from NBD_INFO_EXPORT). */
  size = 0;
  /** Transmission flags. */
  flags = 0;
  closed = false;
  closeReason = '';
  /** Set by the ledger writer when it has recorded this connection's death. */
  faultNoted: { time: string; uri: string; reason: string; inflight: number } | null = null;
  private socket: net.Socket | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private nextCookie = 1n;
  private readonly pending = new Map<bigint, Pending>();
  private phase: 'handshake' | 'transmission' = 'handshake';
  private hs: 'greeting' | 'go' = 'greeting';

  private constructor(private readonly target: NbdTarget) {
    this.uri = target.uri;
  }

  private open(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.destroy(err.message);
        reject(err);
      };
      const timer = setTimeout(() => fail(new ConnectionLost(`${this.uri}: handshake timed out after ${timeoutMs} ms`)), timeoutMs);
      const s = net.connect({ host: this.target.host, port: this.target.port, noDelay: true });
      this.socket = s;
      s.on('error', (e) => {
        if (!settled) fail(new ConnectionLost(`${this.uri}: ${e.message}`));
        else this.destroy(e.message);
      });
      s.on('close', () => {
        if (!settled) fail(new ConnectionLost(`${this.uri}: closed during handshake`));
        else this.destroy('connection closed by peer');
      });
      s.on('data', (d: Buffer) => {
        this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
        if (this.phase === 'handshake') {
          let negotiated: boolean;
          try {
            negotiated = this.stepHandshake();
          } catch (e) {
            fail(e instanceof ConnectionLost ? e : new ConnectionLost(`${this.uri}: ${(e as Error).message}`));
            return;
          }
          if (negotiated) {
            settled = true;
            clearTimeout(timer);
            resolve();
          }
        }
        if (this.phase === 'transmission') this.parseReplies();
      });
      this.hs = 'greeting';
    });
  }

  /** Handles what arrived during the handshake; true once in transmission. */
  private stepHandshake(): boolean {
    for (;;) {
      if (this.hs === 'greeting') {
        if (this.buf.length < 18) return false;
        if (!this.buf.subarray(0, 8).equals(NBDMAGIC) || !this.buf.subarray(8, 16).equals(IHAVEOPT)) throw new Error('bad greeting');
        this.buf = this.buf.subarray(18);
        const flags = Buffer.alloc(4);
        flags.writeUInt32BE(3); // FIXED_NEWSTYLE | NO_ZEROES
        const name = Buffer.from(this.target.name);
        const data = Buffer.alloc(4 + name.length + 2);
        data.writeUInt32BE(name.length, 0);
        name.copy(data, 4);
        data.writeUInt16BE(0, 4 + name.length);
        const h = Buffer.alloc(16);
        IHAVEOPT.copy(h, 0);
        h.writeUInt32BE(OPT_GO, 8);
        h.writeUInt32BE(data.length, 12);
        this.socket!.write(Buffer.concat([flags, h, data]));
        this.hs = 'go';
        continue;
      }
      if (this.buf.length < 20) return false;
      if (this.buf.readBigUInt64BE(0) !== OPT_REPLY_MAGIC) throw new Error('bad option reply magic');
      const type = this.buf.readUInt32BE(12);
      const len = this.buf.readUInt32BE(16);
      if (this.buf.length < 20 + len) return false;
      const data = this.buf.subarray(20, 20 + len);
      this.buf = this.buf.subarray(20 + len);
      if (type === REP_INFO) {
        if (data.length >= 12 && data.readUInt16BE(0) === 0) {
          this.size = Number(data.readBigUInt64BE(2));
          this.flags = data.readUInt16BE(10);
        }
        continue;
      }
      if (type === REP_ACK) {
        this.phase = 'transmission';
        return true;
      }
      throw new ConnectionLost(`${this.uri}: export ${JSON.stringify(this.target.name)} refused (reply 0x${type.toString(16)} ${data.toString()})`);
    }
  }

  private parseReplies(): void {
    while (this.buf.length >= 16) {
      if (this.buf.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC) {
        this.destroy(`bad reply magic 0x${this.buf.readUInt32BE(0).toString(16)}`);
        return;
      }
      const error = this.buf.readUInt32BE(4);
      const cookie = this.buf.readBigUInt64BE(8);
      const p = this.pending.get(cookie);
      if (!p) {
        this.destroy(`reply for unknown cookie ${cookie}`);
        return;
      }
      const dataLen = error === 0 ? p.readLength : 0;
      if (this.buf.length < 16 + dataLen) return;
      const data = dataLen > 0 ? Buffer.from(this.buf.subarray(16, 16 + dataLen)) : null;
      this.buf = this.buf.subarray(16 + dataLen);
      this.pending.delete(cookie);
      if (error !== 0) p.reject(new NbdReplyError(error, p.what));
      else p.resolve(data);
    }
  }

  private request(type: number, offset: number, length: number, payload: Buffer | null, flags = 0): Promise<Buffer | null> {
    if (this.closed) {
      const e = new ConnectionLost(`${this.uri}: connection is closed (${this.closeReason})`);
      e.notSent = true;
      return Promise.reject(e);
    }
    const cookie = this.nextCookie++;
    const h = Buffer.alloc(28);
    h.writeUInt32BE(REQUEST_MAGIC, 0);
    h.writeUInt16BE(flags, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(cookie, 8);
    h.writeBigUInt64BE(BigInt(offset), 16);
    h.writeUInt32BE(length, 24);
    const what = `${CMD_NAMES[type] ?? type} ${offset}+${length}`;
    return new Promise((resolve, reject) => {
      this.pending.set(cookie, { resolve, reject, readLength: type === CMD.READ ? length : 0, what });
      this.socket!.write(payload ? Buffer.concat([h, payload]) : h);
    });
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.request(CMD.READ, offset, length, null) as Promise<Buffer>;
  }
  write(offset: number, data: Buffer, opts: { fua?: boolean } = {}): Promise<void> {
    return this.request(CMD.WRITE, offset, data.length, data, opts.fua ? FLAG_FUA : 0).then(() => undefined);
  }
  flush(): Promise<void> {
    return this.request(CMD.FLUSH, 0, 0, null).then(() => undefined);
  }

  /** Requests sent and not yet answered. */
  get inflight(): number {
    return this.pending.size;
  }

  /** Sends DISC (after waiting for pending replies, bounded) and closes. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    const deadline = Date.now() + timeoutMs;
    while (this.pending.size > 0 && !this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (!this.closed) {
      const h = Buffer.alloc(28);
      h.writeUInt32BE(REQUEST_MAGIC, 0);
      h.writeUInt16BE(CMD.DISC, 6);
      try {
        this.socket!.end(h);
      } catch {
        /* already gone */
      }
    }
    this.destroy('closed by client');
  }

  /** Drops the connection at once; pending requests reject with ConnectionLost. */
  destroy(reason = 'destroyed'): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.socket?.destroy();
    const err = new ConnectionLost(`${this.uri}: ${reason}`);
    const pend = [...this.pending.values()];
    this.pending.clear();
    for (const p of pend) p.reject(err);
  }
}
