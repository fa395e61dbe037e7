import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import * as net from 'node:net';
import { FrameBatcher } from './batch.js';
import { CMI_VERSION, CmiProtocolError, encodeFrame, FrameDecoder, KIND, type Frame } from './frame.js';

/** An error a CMI request ended with: `code` is stable ('not-owner', 'peer-gone', 'io', ...). */
export class CmiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly errno?: string,
  ) {
    super(message);
    this.name = 'CmiError';
  }
}

export interface CmiRequest {
  op: string;
  args: Record<string, unknown>;
  bin: Buffer;
}
export interface CmiResult {
  result?: Record<string, unknown>;
  bin?: Buffer;
}
/** Who sent a request: the peer named in its hello; `signal` aborts when its connection ends. */
export interface CmiRequestContext {
  from: string;
  signal: AbortSignal;
}
export type CmiHandler = (req: CmiRequest, ctx: CmiRequestContext) => Promise<CmiResult | void> | CmiResult | void;

export interface HelloInfo {
  version: number;
  array: string;
  from: string;
  bootId: string;
}

/**
 * The listening end of an SP's CMI: a Unix socket. Every connection must open with a `hello`
 * request (same CMI version, same array, an expected peer: the other SP, or 'chassis' / an SP
 * for the chassis channels of arrays with mirroring); then each request frame is
 * handed to `handler` in arrival order, and answered (in any order) with the request's id.
 * Synchronous handlers therefore apply in the order the peer sent (what cache mirroring needs).
 */
export class CmiServer extends EventEmitter {
  private readonly server: net.Server;
  private readonly conns = new Set<net.Socket>();

  constructor(
    readonly path: string,
    private readonly opts: { array: string; expectFrom: string | readonly string[]; handler: CmiHandler },
  ) {
    super();
    this.server = net.createServer((s) => this.accept(s));
  }

  listen(): Promise<void> {
    rmSync(this.path, { force: true });
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.path, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  get connections(): number {
    return this.conns.size;
  }

  private accept(s: net.Socket): void {
    this.conns.add(s);
    const expected = typeof this.opts.expectFrom === 'string' ? [this.opts.expectFrom] : this.opts.expectFrom;
    const dec = new FrameDecoder();
    let hello: HelloInfo | null = null;
    const gone = new AbortController();
    let ctx: CmiRequestContext | null = null;
    const out = new FrameBatcher(s);
    const send = (kind: 1 | 2 | 3, id: number, json: Record<string, unknown>, bin?: Buffer) => {
      if (!s.destroyed) out.write(encodeFrame({ kind, id, json, bin }));
    };
    s.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = dec.push(chunk);
      } catch (e) {
        this.emit('protocol-error', (e as Error).message);
        s.destroy();
        return;
      }
      for (const f of frames) {
        if (f.kind !== KIND.REQUEST) {
          this.emit('protocol-error', `unexpected frame kind ${f.kind} from a client`);
          s.destroy();
          return;
        }
        const op = String(f.json.op ?? '');
        const args = (f.json.args ?? {}) as Record<string, unknown>;
        if (!hello) {
          const h = args as unknown as HelloInfo;
          let why: string | undefined;
          if (op !== 'hello') why = `first request must be hello, not ${op}`;
          else if (h.version !== CMI_VERSION) why = `CMI version ${h.version} not supported (this SP speaks ${CMI_VERSION})`;
          else if (h.array !== this.opts.array) why = `wrong array ${JSON.stringify(h.array)} (this is ${this.opts.array})`;
          else if (!expected.includes(h.from)) why = `unexpected peer ${JSON.stringify(h.from)} (expected ${expected.map((n) => (/^[AB]$/.test(n) ? `SP ${n}` : n)).join(' or ')})`;
          if (why) {
            send(KIND.ERROR, f.id, { code: 'hello-refused', message: why });
            s.end();
            this.emit('protocol-error', why);
            return;
          }
          hello = h;
          ctx = { from: h.from, signal: gone.signal };
          send(KIND.REPLY, f.id, { result: { version: CMI_VERSION } });
          this.emit('peer-connected', h);
          continue;
        }
        let r: Promise<CmiResult | void> | CmiResult | void;
        try {
          r = this.opts.handler({ op, args, bin: f.bin }, ctx!);
        } catch (e) {
          r = Promise.reject(e);
        }
        Promise.resolve(r).then(
          (res) => send(KIND.REPLY, f.id, { result: res?.result ?? {} }, res?.bin),
          (e: unknown) => {
            const err = e as { code?: string; errno?: string; message?: string };
            send(KIND.ERROR, f.id, { code: err instanceof CmiError ? err.code : 'io', errno: err.errno ?? (err instanceof CmiError ? undefined : errnoLike(e)), message: err.message ?? String(e) });
          },
        );
      }
    });
    // A socket error is always followed by 'close', which fails what waits on the connection.
    s.on('error', () => undefined);
    s.on('close', () => {
      this.conns.delete(s);
      gone.abort(new CmiError('peer-gone', `CMI connection from ${hello?.from ?? 'an unknown peer'} closed`));
      if (hello) this.emit('peer-disconnected', hello);
    });
  }

  async close(): Promise<void> {
    for (const s of this.conns) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    rmSync(this.path, { force: true });
  }
}

function errnoLike(e: unknown): string | undefined {
  const m = /^(E[A-Z]+):/.exec((e as Error)?.message ?? '');
  return (e as { errno?: unknown })?.errno && typeof (e as { errno?: unknown }).errno === 'string' ? ((e as { errno: string }).errno) : m?.[1];
}

/** How long `CmiClient.connect` waits for the socket unless told otherwise. */
export const CMI_CONNECT_TIMEOUT_MS = 2000;

/**
 * The calling end: one ordered connection to the peer SP's CmiServer. `call` resolves with the
 * reply or rejects with a CmiError ('peer-gone' when the connection ends first).
 */
export class CmiClient extends EventEmitter {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: { result: Record<string, unknown>; bin: Buffer }) => void; reject: (e: Error) => void }>();
  private closedWith: Error | null = null;
  private readonly out: FrameBatcher;

  private constructor(private readonly socket: net.Socket) {
    super();
    this.out = new FrameBatcher(socket);
    const dec = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = dec.push(chunk);
      } catch (e) {
        this.fail(new CmiError('protocol', (e as Error).message));
        socket.destroy();
        return;
      }
      for (const f of frames) {
        const p = this.pending.get(f.id);
        if (!p) continue;
        this.pending.delete(f.id);
        if (f.kind === KIND.REPLY) p.resolve({ result: (f.json.result ?? {}) as Record<string, unknown>, bin: f.bin });
        else p.reject(new CmiError(String(f.json.code ?? 'io'), String(f.json.message ?? 'CMI request failed'), f.json.errno as string | undefined));
      }
    });
    socket.on('error', (e) => this.fail(new CmiError('peer-gone', `CMI connection: ${e.message}`)));
    socket.on('close', () => this.fail(new CmiError('peer-gone', 'CMI connection to the peer SP closed')));
  }

  /** Connects and says hello; rejects if the peer refuses (version, array, SP name). */
  static async connect(path: string, hello: Omit<HelloInfo, 'version'> & { version?: number }, timeoutMs = CMI_CONNECT_TIMEOUT_MS): Promise<CmiClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(path);
      const t = setTimeout(() => {
        s.destroy();
        reject(new CmiError('peer-gone', `CMI connect to ${path} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(new CmiError('peer-gone', `CMI connect to ${path}: ${e.message}`));
      });
    });
    socket.setNoDelay?.(true);
    const c = new CmiClient(socket);
    try {
      await c.call('hello', { version: CMI_VERSION, ...hello });
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /**
   * Sends a request (batched with the others of this event-loop turn) and waits for its reply.
   * `bin` (the payload, possibly in pieces) is copied into the frame before this returns.
   */
  call(op: string, args: Record<string, unknown> = {}, bin?: Buffer | readonly Buffer[]): Promise<{ result: Record<string, unknown>; bin: Buffer }> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    if (this.nextId > 0xffffffff) this.nextId = 1;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.out.write(encodeFrame({ kind: KIND.REQUEST, id, json: { op, args }, bin }));
      } catch (e) {
        this.pending.delete(id);
        reject(e instanceof CmiProtocolError ? new CmiError('protocol', e.message) : e);
      }
    });
  }

  close(): void {
    this.socket.destroy();
    this.fail(new CmiError('peer-gone', 'CMI connection closed'));
  }

  private fail(e: Error): void {
    if (this.closedWith) return;
    this.closedWith = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.emit('close', e);
  }
}
