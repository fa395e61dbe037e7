/**
 * A deliberately low-level NBD client for protocol tests: it sends exactly the bytes a test
 * asks for (valid or not) and parses what comes back, so error paths can be driven that real
 * clients refuse to produce.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';

export const IHAVEOPT = Buffer.from('IHAVEOPT');

export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves with exactly n bytes, or rejects if the server closes first or time runs out. */
  async read(n: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.length < n) {
      if (this.closed) throw new Error(`connection closed with ${this.buf.length}/${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes (have ${this.buf.length})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return Buffer.from(out);
  }

  /** Resolves true once the server has closed the connection (within the timeout). */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.closed;
  }

  /**
   * After an acknowledged STARTTLS: the TLS handshake over this connection; resolves with a
   * client speaking over TLS, rejects when the handshake fails.
   */
  startTls(opts: tls.ConnectionOptions): Promise<RawClient> {
    if (this.buf.length > 0) throw new Error(`${this.buf.length} unread bytes before the TLS handshake`);
    return new Promise((resolve, reject) => {
      const t = tls.connect({ ...opts, socket: this.socket }, () => resolve(new RawClient(t)));
      t.once('error', reject);
    });
  }

  write(b: Buffer): void {
    this.socket.write(b);
  }

  close(): void {
    this.socket.destroy();
  }

  /** Reads the 18-byte greeting and sends client flags. */
  async greet(clientFlags = 3): Promise<{ handshakeFlags: number }> {
    const g = await this.read(18);
    if (g.subarray(0, 8).toString() !== 'NBDMAGIC' || !g.subarray(8, 16).equals(IHAVEOPT)) throw new Error('bad greeting');
    const f = Buffer.alloc(4);
    f.writeUInt32BE(clientFlags);
    this.write(f);
    return { handshakeFlags: g.readUInt16BE(16) };
  }

  sendOption(option: number, data: Buffer = Buffer.alloc(0), declaredLength = data.length): void {
    const h = Buffer.alloc(16);
    IHAVEOPT.copy(h, 0);
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(declaredLength, 12);
    this.write(Buffer.concat([h, data]));
  }

  async readOptionReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const h = await this.read(20);
    if (h.readBigUInt64BE(0) !== 0x0003e889045565a9n) throw new Error(`bad option reply magic ${h.toString('hex')}`);
    const len = h.readUInt32BE(16);
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: await this.read(len) };
  }

  /** Option replies up to and including the first non-INFO/SERVER/META_CONTEXT one. */
  async readOptionReplies(): Promise<{ option: number; type: number; data: Buffer }[]> {
    const all = [];
    for (;;) {
      const r = await this.readOptionReply();
      all.push(r);
      if (r.type !== 2 && r.type !== 3 && r.type !== 4) return all;
    }
  }

  /** Full negotiation to transmission with GO; returns size and transmission flags. */
  async handshake(opts: { name?: string; structured?: boolean; extended?: boolean; meta?: boolean; blockSize?: boolean } = {}): Promise<{ size: bigint; flags: number }> {
    await this.greet();
    const name = opts.name ?? 'disk';
    if (opts.extended) {
      this.sendOption(11);
      const r = await this.readOptionReply();
      if (r.type !== 1) throw new Error(`extended headers refused: ${r.type}`);
    }
    if (opts.structured) {
      this.sendOption(8);
      const r = await this.readOptionReply();
      if (r.type !== 1) throw new Error(`structured reply refused: ${r.type}`);
    }
    if (opts.meta) {
      this.sendOption(10, metaPayload(name, ['base:allocation']));
      const rs = await this.readOptionReplies();
      if (rs[rs.length - 1]!.type !== 1) throw new Error('meta context refused');
    }
    this.sendOption(7, goPayload(name, opts.blockSize ? [3] : []));
    const rs = await this.readOptionReplies();
    const last = rs[rs.length - 1]!;
    if (last.type !== 1) throw new Error(`GO refused: 0x${last.type.toString(16)} ${last.data.toString()}`);
    const exp = rs.find((r) => r.type === 3 && r.data.readUInt16BE(0) === 0)!;
    return { size: exp.data.readBigUInt64BE(2), flags: exp.data.readUInt16BE(10) };
  }

  request(type: number, opts: { flags?: number; cookie?: bigint; offset?: bigint | number; length?: number; payload?: Buffer; magic?: number } = {}): void {
    const h = Buffer.alloc(28);
    h.writeUInt32BE(opts.magic ?? 0x25609513, 0);
    h.writeUInt16BE(opts.flags ?? 0, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(opts.cookie ?? 1n, 8);
    h.writeBigUInt64BE(BigInt(opts.offset ?? 0), 16);
    h.writeUInt32BE(opts.length ?? opts.payload?.length ?? 0, 24);
    this.write(opts.payload ? Buffer.concat([h, opts.payload]) : h);
  }

  /** A 32-byte extended request (extended headers negotiated). */
  requestExt(type: number, opts: { flags?: number; cookie?: bigint; offset?: bigint | number; length?: bigint | number; payload?: Buffer } = {}): void {
    const h = Buffer.alloc(32);
    h.writeUInt32BE(0x21e41c71, 0);
    h.writeUInt16BE(opts.flags ?? 0, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(opts.cookie ?? 1n, 8);
    h.writeBigUInt64BE(BigInt(opts.offset ?? 0), 16);
    h.writeBigUInt64BE(BigInt(opts.length ?? opts.payload?.length ?? 0), 24);
    this.write(opts.payload ? Buffer.concat([h, opts.payload]) : h);
  }

  /** One extended reply chunk. */
  async extChunk(): Promise<{ flags: number; type: number; cookie: bigint; offset: bigint; payload: Buffer }> {
    const h = await this.read(32);
    if (h.readUInt32BE(0) !== 0x6e8a278c) throw new Error(`not an extended reply: ${h.toString('hex')}`);
    const len = Number(h.readBigUInt64BE(24));
    return { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), cookie: h.readBigUInt64BE(8), offset: h.readBigUInt64BE(16), payload: await this.read(len) };
  }

  /** All extended chunks of one reply, until DONE. */
  async extReply(): Promise<{ flags: number; type: number; cookie: bigint; offset: bigint; payload: Buffer }[]> {
    const all = [];
    for (;;) {
      const c = await this.extChunk();
      all.push(c);
      if (c.flags & 1) return all;
    }
  }

  /** A simple reply; `dataLength` bytes of read data are consumed when error is 0. */
  async simpleReply(dataLength = 0): Promise<{ error: number; cookie: bigint; data: Buffer }> {
    const h = await this.read(16);
    if (h.readUInt32BE(0) !== 0x67446698) throw new Error(`not a simple reply: ${h.toString('hex')}`);
    const error = h.readUInt32BE(4);
    const data = error === 0 && dataLength > 0 ? await this.read(dataLength) : Buffer.alloc(0);
    return { error, cookie: h.readBigUInt64BE(8), data };
  }

  /** Any reply in structured mode: a simple reply or one structured chunk. */
  async anyReply(): Promise<{ kind: 'simple'; error: number; cookie: bigint } | { kind: 'chunk'; flags: number; type: number; cookie: bigint; payload: Buffer }> {
    const m = (await this.read(4)).readUInt32BE(0);
    if (m === 0x67446698) {
      const r = await this.read(12);
      return { kind: 'simple', error: r.readUInt32BE(0), cookie: r.readBigUInt64BE(4) };
    }
    if (m !== 0x668e33ef) throw new Error(`bad reply magic 0x${m.toString(16)}`);
    const r = await this.read(16);
    const len = r.readUInt32BE(12);
    return { kind: 'chunk', flags: r.readUInt16BE(0), type: r.readUInt16BE(2), cookie: r.readBigUInt64BE(4), payload: await this.read(len) };
  }

  /** All chunks of one structured reply (until DONE). Errors are returned as {error}. */
  async structuredReply(): Promise<{ cookie: bigint; chunks: { type: number; payload: Buffer }[]; error: number }> {
    const chunks: { type: number; payload: Buffer }[] = [];
    let error = 0;
    for (;;) {
      const r = await this.anyReply();
      if (r.kind === 'simple') return { cookie: r.cookie, chunks, error: r.error };
      chunks.push({ type: r.type, payload: r.payload });
      if (r.type >= 0x8000) error = r.payload.readUInt32BE(0);
      if (r.flags & 1) return { cookie: r.cookie, chunks, error };
    }
  }
}

export function goPayload(name: string, infos: number[] = []): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + n.length + 2 + 2 * infos.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  b.writeUInt16BE(infos.length, 4 + n.length);
  infos.forEach((t, i) => b.writeUInt16BE(t, 6 + n.length + 2 * i));
  return b;
}

export function metaPayload(name: string, queries: string[]): Buffer {
  const parts: Buffer[] = [];
  const n = Buffer.from(name);
  const h = Buffer.alloc(4);
  h.writeUInt32BE(n.length);
  parts.push(h, n);
  const c = Buffer.alloc(4);
  c.writeUInt32BE(queries.length);
  parts.push(c);
  for (const q of queries) {
    const qb = Buffer.from(q);
    const l = Buffer.alloc(4);
    l.writeUInt32BE(qb.length);
    parts.push(l, qb);
  }
  return Buffer.concat(parts);
}
