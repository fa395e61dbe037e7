import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { RemoteLinkError } from './errors.js';
import {
  encodeFrame,
  FrameDecoder,
  FrameWriter,
  HANDSHAKE_MAX_BINARY,
  HANDSHAKE_MAX_JSON,
  KIND,
  LINK_MAX_BINARY,
  LINK_MAX_JSON,
  LINK_VERSION,
  LinkFrameError,
  type Frame,
  type FrameKind,
  type FrameLimits,
  type MacState,
} from './frame.js';
import { clientHandshake, serverHandshake, type ClientHandshake, type HandshakeIo, type ServerHandshake, type SessionInfo } from './handshake-flow.js';
import { LINK_OPS, validateArgs, type LinkOp, type LinkOps } from './messages.js';

export type { AcceptedMirror, OfferedMirror } from './offer.js';
export type { SessionInfo } from './handshake-flow.js';

export interface RequestContext {
  session: SessionInfo;
}
export interface HandlerResult<R> {
  result: R;
  bin?: Buffer;
}
export type LinkHandler<K extends LinkOp> = (
  args: LinkOps[K]['args'],
  bin: Buffer,
  ctx: RequestContext,
) => Promise<HandlerResult<LinkOps[K]['result']>> | HandlerResult<LinkOps[K]['result']>;
export type LinkHandlers = { [K in LinkOp]?: LinkHandler<K> };

export interface ConnectionTimers {
  /** a PING frame is sent this often (ms) */
  keepaliveMs: number;
  /** the peer is declared dead after this long without any frame from it (ms) */
  deadAfterMs: number;
  /** default per-request timeout (ms) */
  requestTimeoutMs: number;
  /** the handshake must complete within this (ms) */
  handshakeTimeoutMs: number;
}
/** After a last ERROR frame, the socket is destroyed this long later if the peer has not closed it. */
const ERROR_LINGER_MS = 1000;
const LINK_OP_SET: ReadonlySet<string> = new Set(LINK_OPS);
export const DEFAULT_TIMERS: ConnectionTimers = { keepaliveMs: 1000, deadAfterMs: 5000, requestTimeoutMs: 10_000, handshakeTimeoutMs: 5000 };

interface Pending {
  resolve: (r: { result: Record<string, unknown>; bin: Buffer }) => void;
  reject: (e: Error) => void;
  op: string;
  timeoutMs: number;
  /** performance.now() by which the reply must have come */
  deadline: number;
}

/**
 * One remote-link connection, either end. Created on a connected socket; `handshakeAsClient` /
 * `handshakeAsServer` authenticate, then it carries requests both ways: requests received are
 * dispatched to `handlers` in arrival order (a synchronous handler therefore applies them in the
 * order the peer sent them); replies may come in any order, matched by id.
 *
 * Events: 'close' (RemoteLinkError | null: null for a clean close by either side).
 */
export class LinkConnection extends EventEmitter {
  private readonly decoder: FrameDecoder;
  private phase: 'handshake' | 'open' | 'closed' = 'handshake';
  private readonly queue: Frame[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | null = null;
  private failure: RemoteLinkError | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private lastRecv = Date.now();
  private keepalive: NodeJS.Timeout | null = null;
  /** frames of this tick, encoded back to back: one socket write per tick (flushFrames) */
  private readonly writer = new FrameWriter();
  private flushQueued = false;
  /** the one timer of the pending requests' timeouts: at the earliest deadline (sweep) */
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweepAt = Infinity;
  private cachedTimers: ConnectionTimers | null = null;
  private decodeError: LinkFrameError | null = null;
  private peerLimits: FrameLimits = { maxJson: HANDSHAKE_MAX_JSON, maxBinary: HANDSHAKE_MAX_BINARY };
  /** the MAC state of the frames this side sends; null until this side has its session key */
  private sendMac: MacState | null = null;
  session: SessionInfo | null = null;

  constructor(
    private readonly socket: net.Socket,
    private readonly opts: {
      localArray: string;
      limits?: Partial<FrameLimits>;
      timers?: Partial<ConnectionTimers>;
      handlers?: LinkHandlers;
      /** protocol version to speak (tests of version mismatch); default LINK_VERSION */
      version?: number;
    },
  ) {
    super();
    this.decoder = new FrameDecoder({ maxJson: HANDSHAKE_MAX_JSON, maxBinary: HANDSHAKE_MAX_BINARY });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.fail(new RemoteLinkError('closed', `remote link socket error: ${e.message}`)));
    socket.on('close', () => this.fail(new RemoteLinkError('closed', this.session ? `remote link to ${this.session.peerArray} closed` : 'remote link closed during the handshake')));
  }

  get timers(): ConnectionTimers {
    return (this.cachedTimers ??= { ...DEFAULT_TIMERS, ...this.opts.timers });
  }
  get limits(): FrameLimits {
    return { maxJson: this.opts.limits?.maxJson ?? LINK_MAX_JSON, maxBinary: this.opts.limits?.maxBinary ?? LINK_MAX_BINARY };
  }
  get version(): number {
    return this.opts.version ?? LINK_VERSION;
  }
  get isOpen(): boolean {
    return this.phase === 'open';
  }
  get closedWith(): RemoteLinkError | null {
    return this.failure;
  }
  get pendingRequests(): number {
    return this.pending.size;
  }

  // ---- handshake -------------------------------------------------------------------------

  /** Initiating side. Resolves when authenticated and accepted; rejects with the RemoteLinkError both sides saw. */
  handshakeAsClient(p: ClientHandshake): Promise<SessionInfo> {
    return clientHandshake(this.handshakeIo(), p);
  }

  /** Receiving side (see ServerHandshake). */
  handshakeAsServer(p: ServerHandshake): Promise<SessionInfo> {
    return serverHandshake(this.handshakeIo(), p);
  }

  /** What ./handshake-flow.ts may do with this connection while it drives the handshake. */
  private handshakeIo(): HandshakeIo {
    return {
      version: this.version,
      localArray: this.opts.localArray,
      limits: this.limits,
      timeoutMs: this.timers.handshakeTimeoutMs,
      timedOut: (message) => {
        if (this.phase === 'handshake') this.refuseQuietly('timeout', message);
      },
      send: (json) => this.send(KIND.HANDSHAKE, 0, json),
      nextFrame: () => this.nextFrame(),
      peerRefused: (e) => {
        this.fail(e);
        this.socket.destroy();
      },
      refuse: (code, message) => this.refuse(code, message),
      setReceiveKey: (key) => this.decoder.setReceiveKey(key),
      setSendKey: (key) => (this.sendMac = { key, seq: 0 }),
      setPeerLimits: (limits) => (this.peerLimits = limits),
      open: (session) => this.open(session),
      remoteAddress: () => addr(this.socket),
    };
  }

  private nextFrame(): Promise<Frame> {
    if (this.queue.length) return Promise.resolve(this.queue.shift()!);
    if (this.failure) return Promise.reject(this.failure);
    if (this.decodeError) {
      const e = this.decodeError;
      return Promise.reject(this.refuseQuietly(e.code, e.message));
    }
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** Sends ERROR {code, message} to the peer, closes, and throws the same error here. */
  private refuse(code: string, message: string): never {
    const e = this.refuseQuietly(code, message);
    throw e;
  }

  private refuseQuietly(code: string, message: string): RemoteLinkError {
    const e = new RemoteLinkError(code, message);
    if (!this.socket.destroyed) {
      try {
        this.flushFrames(); // the frames of this tick go before the ERROR (MAC sequence order)
        this.socket.end(encodeFrame({ kind: KIND.ERROR, id: 0, json: { code, message } }, { maxJson: LINK_MAX_JSON, maxBinary: 0 }, this.version, this.sendMac ?? undefined));
      } catch {
        this.socket.destroy();
      }
      setTimeout(() => this.socket.destroy(), ERROR_LINGER_MS).unref();
    }
    this.fail(e);
    return e;
  }

  private open(session: SessionInfo): SessionInfo {
    if (this.failure) throw this.failure;
    this.session = session;
    this.phase = 'open';
    this.decoder.setLimits(this.limits);
    this.lastRecv = Date.now();
    const { keepaliveMs, deadAfterMs } = this.timers;
    this.keepalive = setInterval(() => {
      if (Date.now() - this.lastRecv > deadAfterMs) {
        this.fail(new RemoteLinkError('peer-dead', `nothing heard from ${session.peerArray} for ${Date.now() - this.lastRecv} ms (limit ${deadAfterMs} ms): peer declared dead`));
        this.socket.destroy();
        return;
      }
      this.send(KIND.PING, 0, {});
    }, keepaliveMs);
    this.keepalive.unref();
    // frames that arrived with the last handshake frame
    const early = this.queue.splice(0);
    for (const f of early) this.onOpenFrame(f);
    if (this.decodeError && this.phase === 'open') this.failDecode();
    return session;
  }

  // ---- frames ------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.lastRecv = Date.now();
    const { frames, error } = this.decoder.pushSafe(chunk);
    if (error) this.decodeError = error;
    for (const f of frames) {
      if ((this.phase as string) === 'closed') return;
      if (this.phase === 'handshake') {
        if (this.waiter) {
          const w = this.waiter;
          this.waiter = null;
          w.resolve(f);
        } else this.queue.push(f);
      } else this.onOpenFrame(f);
    }
    // a malformed frame ends the connection once the frames before it are handled (during the
    // handshake: when the handshake asks for the next frame)
    if (error && (this.phase === 'open' || (this.phase === 'handshake' && this.waiter))) this.failDecode();
  }

  private failDecode(): void {
    const e = this.decodeError!;
    const w = this.waiter;
    this.waiter = null;
    const le = this.refuseQuietly(e.code, e.message);
    w?.reject(le);
  }

  private onOpenFrame(f: Frame): void {
    // every frame after the handshake must carry a MAC (the decoder verified it): one without
    // is injected, or a downgrade; it is not acted on
    if (!f.authenticated) {
      this.refuseQuietly('bad-mac', `frame (kind ${f.kind}, id ${f.id}) without a MAC from ${this.session?.peerArray} after the handshake: refused`);
      return;
    }
    if (f.version !== this.version) {
      this.refuseQuietly('protocol', `frame of protocol version ${f.version} on a version ${this.version} link`);
      return;
    }
    switch (f.kind) {
      case KIND.REQUEST:
        this.dispatch(f);
        return;
      case KIND.REPLY:
      case KIND.ERROR: {
        if (f.kind === KIND.ERROR && f.id === 0) {
          this.fail(new RemoteLinkError(String(f.json.code ?? 'protocol'), `peer ${this.session?.peerArray} ended the link: ${String(f.json.message ?? '')}`));
          this.socket.destroy();
          return;
        }
        const p = this.pending.get(f.id);
        if (!p) return; // timed out already
        this.pending.delete(f.id);
        if (f.kind === KIND.REPLY) p.resolve({ result: (f.json.result ?? {}) as Record<string, unknown>, bin: f.bin });
        else p.reject(new RemoteLinkError(String(f.json.code ?? 'io'), String(f.json.message ?? 'request failed')));
        return;
      }
      case KIND.PING:
        this.send(KIND.PONG, 0, {});
        return;
      case KIND.PONG:
        return;
      case KIND.GOODBYE:
        this.flushFrames();
        this.fail(null);
        this.socket.end();
        return;
      default:
        this.refuseQuietly('protocol', `unexpected frame kind ${f.kind} after the handshake`);
    }
  }

  private dispatch(f: Frame): void {
    const op = f.json.op;
    const args = f.json.args;
    let r: Promise<HandlerResult<unknown>> | HandlerResult<unknown>;
    try {
      if (typeof op !== 'string' || !LINK_OP_SET.has(op)) throw new RemoteLinkError('no-handler', `unknown operation ${JSON.stringify(op)}`);
      if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new RemoteLinkError('bad-request', `${op}: args must be an object`);
      const a = validateArgs(op as LinkOp, args as Record<string, unknown>, f.bin);
      const mirrorId = (a as { mirrorId?: string }).mirrorId;
      // mirror-db is how an array learns of a mirror it joins, so it cannot require negotiation
      // (its handler checks the record against the local LUN table instead).
      if (mirrorId !== undefined && op !== 'mirror-db' && !this.session!.mirrors.some((m) => m.mirrorId === mirrorId))
        throw new RemoteLinkError('wrong-mirror', `${op}: mirror ${JSON.stringify(mirrorId)} was not negotiated on this link`);
      const h = this.opts.handlers?.[op as LinkOp] as LinkHandler<LinkOp> | undefined;
      if (!h) {
        if (op === 'ping') r = { result: { t: (a as { t: number }).t } };
        else throw new RemoteLinkError('no-handler', `${this.opts.localArray} has no handler for ${op}`);
      } else r = h(a as never, f.bin, { session: this.session! });
    } catch (e) {
      r = Promise.reject(e);
    }
    Promise.resolve(r).then(
      (res) => {
        try {
          this.send(KIND.REPLY, f.id, { result: res.result as Record<string, unknown> }, res.bin);
        } catch (e) {
          this.send(KIND.ERROR, f.id, { code: (e as LinkFrameError).code ?? 'io', message: (e as Error).message });
        }
      },
      (e: unknown) => {
        const err = e as { code?: unknown; message?: unknown };
        this.send(KIND.ERROR, f.id, { code: typeof err?.code === 'string' ? err.code : 'io', message: typeof err?.message === 'string' ? err.message : String(e) });
      },
    );
  }

  private send(kind: FrameKind, id: number, json: Record<string, unknown>, bin?: Buffer): void {
    if (this.socket.destroyed || this.phase === 'closed') return;
    this.writer.encode(
      { kind, id, json, bin },
      this.phase === 'open' ? this.peerLimits : { maxJson: HANDSHAKE_MAX_JSON, maxBinary: HANDSHAKE_MAX_BINARY },
      this.version,
      this.sendMac ?? undefined,
    );
    // one socket write per tick's worth of frames (they lie back to back in the writer's slab)
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(() => this.flushFrames());
    }
  }

  /** Hands the frames encoded so far to the socket, in order: one write (more only around a large payload). */
  private flushFrames(): void {
    this.flushQueued = false;
    if (!this.writer.pending) return;
    const out = this.writer.take();
    if (this.socket.destroyed || this.socket.writableEnded) return;
    if (out.length === 1) {
      this.socket.write(out[0]!);
      return;
    }
    this.socket.cork();
    for (const b of out) this.socket.write(b);
    this.socket.uncork();
  }

  // ---- requests ----------------------------------------------------------------------------

  /** Sends a request; resolves with the reply or rejects with a RemoteLinkError. */
  request<K extends LinkOp>(op: K, args: LinkOps[K]['args'], bin?: Buffer, opts?: { timeoutMs?: number }): Promise<{ result: LinkOps[K]['result']; bin: Buffer }> {
    if (this.phase !== 'open') return Promise.reject(this.failure ?? new RemoteLinkError('not-connected', 'remote link is not open'));
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    const timeoutMs = opts?.timeoutMs ?? this.timers.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      try {
        this.send(KIND.REQUEST, id, { op, args: args as unknown as Record<string, unknown> }, bin);
      } catch (e) {
        const fe = e as LinkFrameError;
        reject(new RemoteLinkError(fe.code ?? 'protocol', fe.message));
        return;
      }
      const deadline = performance.now() + timeoutMs;
      this.pending.set(id, { resolve: resolve as unknown as Pending['resolve'], reject, op, timeoutMs, deadline });
      if (deadline < this.sweepAt) this.armSweep(deadline);
    });
  }

  /**
   * One timer for every pending request's timeout (not one per request): it fires at the earliest
   * deadline, fails the requests past theirs, and is set again for the earliest one left.
   */
  private armSweep(at: number): void {
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepAt = at;
    this.sweepTimer = setTimeout(() => this.sweep(), Math.max(0, at - performance.now()));
    this.sweepTimer.unref();
  }

  private sweep(): void {
    this.sweepTimer = null;
    this.sweepAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    const expired: Array<[number, Pending]> = [];
    for (const [id, p] of this.pending) {
      if (p.deadline <= now) expired.push([id, p]);
      else if (p.deadline < next) next = p.deadline;
    }
    for (const [id] of expired) this.pending.delete(id);
    if (next < Infinity) this.armSweep(next);
    for (const [, p] of expired) p.reject(new RemoteLinkError('timeout', `${p.op} to ${this.session?.peerArray}: no reply within ${p.timeoutMs} ms`));
  }

  /** Clean close: tells the peer (GOODBYE), fails pending requests with 'closed'. */
  close(): void {
    if (this.phase === 'open') {
      this.send(KIND.GOODBYE, 0, {});
      this.flushFrames();
      this.fail(null);
      this.socket.end();
      setTimeout(() => this.socket.destroy(), ERROR_LINGER_MS).unref();
    } else if (this.phase === 'handshake') {
      this.fail(new RemoteLinkError('closed', 'closed during the handshake'));
      this.socket.destroy();
    }
  }

  /** Abrupt close (tests, shutdown). */
  destroy(): void {
    this.fail(new RemoteLinkError('closed', 'remote link destroyed'));
    this.socket.destroy();
  }

  private fail(e: RemoteLinkError | null): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.failure = e;
    if (this.keepalive) clearInterval(this.keepalive);
    const pe = e ?? new RemoteLinkError('closed', `remote link${this.session ? ` to ${this.session.peerArray}` : ''} closed`);
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(pe);
    }
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
    this.sweepAt = Infinity;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(pe);
    this.emit('close', e);
  }
}

function addr(s: net.Socket): string {
  return `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;
}
