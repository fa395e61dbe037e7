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
import { deriveSessionKeys, isNonce, newNonce, proof, verifyProof, type Transcript } from './handshake.js';
import { LINK_OPS, validateArgs, type LinkOp, type LinkOps } from './messages.js';
import { parseAccepted, parseOffered, type AcceptedMirror, type OfferedMirror } from './offer.js';

export type { AcceptedMirror, OfferedMirror } from './offer.js';

/** What both ends know about each other once the handshake succeeded. */
export interface SessionInfo {
  localArray: string;
  peerArray: string;
  role: 'client' | 'server';
  version: number;
  mirrors: AcceptedMirror[];
  remoteAddress: string;
}

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
  async handshakeAsClient(p: { secret: string | Buffer; expectPeer: string; mirrors: OfferedMirror[] }): Promise<SessionInfo> {
    const deadline = this.handshakeDeadline();
    try {
      const clientNonce = newNonce();
      const limits = this.limits;
      const hello = { step: 'hello', version: this.version, array: this.opts.localArray, expectPeer: p.expectPeer, nonce: clientNonce, mirrors: p.mirrors, limits };
      this.send(KIND.HANDSHAKE, 0, hello);
      const ch = await this.nextHandshake('challenge');
      if (ch.version !== this.version) this.refuse('version-mismatch', `peer speaks remote-link protocol version ${ch.version}, ${this.opts.localArray} speaks ${this.version}`);
      const j = ch.json;
      if (typeof j.array !== 'string') this.refuse('protocol', 'challenge without an array name');
      if (j.array !== p.expectPeer) this.refuse('wrong-peer', `connected to array ${JSON.stringify(j.array)}, but this link's peer is ${JSON.stringify(p.expectPeer)}`);
      if (!isNonce(j.nonce)) this.refuse('protocol', 'challenge without a valid nonce');
      const t: Transcript = { version: this.version, clientArray: this.opts.localArray, serverArray: p.expectPeer, clientNonce, serverNonce: j.nonce as string, mirrors: p.mirrors, clientLimits: limits };
      // The client proves first (./handshake.ts); everything the server sends from now on but a
      // refusal of this proof carries a MAC under the server-to-client key.
      const keys = deriveSessionKeys(p.secret, t);
      this.decoder.setReceiveKey(keys.serverToClient);
      this.send(KIND.HANDSHAKE, 0, { step: 'auth', proof: proof('client', p.secret, t) });
      this.sendMac = { key: keys.clientToServer, seq: 0 };
      const ok = await this.nextHandshake('ok');
      // an 'ok' without a MAC, or with a wrong proof, is not from a holder of the secret
      if (!ok.authenticated || !verifyProof('server', p.secret, t, ok.json.proof))
        this.refuse('auth-failed', `authentication failed: array ${p.expectPeer} could not prove it knows the shared secret of the link with ${this.opts.localArray}`);
      const accepted = parseAccepted(ok.json.mirrors);
      if (!accepted) this.refuse('protocol', 'ok without a valid mirror list');
      for (const m of p.mirrors) {
        const a = accepted!.find((x) => x.mirrorId === m.mirrorId);
        if (!a) this.refuse('wrong-mirror', `array ${p.expectPeer} did not accept mirror ${JSON.stringify(m.mirrorId)}`);
        if (a!.secondarySize < m.primarySize)
          this.refuse('size-mismatch', `mirror ${m.mirrorId}: the secondary image on ${p.expectPeer} (${a!.secondarySize} bytes) is smaller than the primary (${m.primarySize} bytes)`);
      }
      this.peerLimits = parseLimits(ok.json.limits);
      return this.open({ localArray: this.opts.localArray, peerArray: p.expectPeer, role: 'client', version: this.version, mirrors: accepted!, remoteAddress: addr(this.socket) });
    } finally {
      clearTimeout(deadline);
    }
  }

  /**
   * Receiving side. `secretFor(array)` gives the shared secret of the link with that array
   * (undefined: not a configured peer); `mirrorFor(id)` the local secondary image of that mirror.
   */
  async handshakeAsServer(p: {
    secretFor: (array: string) => string | Buffer | undefined;
    mirrorFor: (mirrorId: string, peerArray: string) => { secondarySize: number } | undefined;
  }): Promise<SessionInfo> {
    const deadline = this.handshakeDeadline();
    try {
      const hello = await this.nextHandshake('hello');
      const j = hello.json;
      const theirVersion = hello.version;
      if (theirVersion !== this.version || j.version !== this.version)
        this.refuse('version-mismatch', `peer speaks remote-link protocol version ${String(j.version ?? theirVersion)}, ${this.opts.localArray} speaks ${this.version}`);
      if (typeof j.array !== 'string' || typeof j.expectPeer !== 'string' || !isNonce(j.nonce)) this.refuse('protocol', 'malformed hello (array, expectPeer, nonce)');
      const mirrors = parseOffered(j.mirrors);
      if (!mirrors) this.refuse('protocol', 'malformed hello (mirrors)');
      const peer = j.array as string;
      if (j.expectPeer !== this.opts.localArray) this.refuse('wrong-peer', `array ${peer} expected to reach ${JSON.stringify(j.expectPeer)}, but this is ${this.opts.localArray}`);
      const secret = p.secretFor(peer);
      if (secret === undefined) this.refuse('wrong-peer', `array ${JSON.stringify(peer)} is not a configured remote-link peer of ${this.opts.localArray}`);
      const serverNonce = newNonce();
      const t: Transcript = { version: this.version, clientArray: peer, serverArray: this.opts.localArray, clientNonce: j.nonce as string, serverNonce, mirrors: j.mirrors, clientLimits: j.limits };
      // nothing derived from the secret goes out before the client has proved it knows it
      this.send(KIND.HANDSHAKE, 0, { step: 'challenge', version: this.version, array: this.opts.localArray, nonce: serverNonce });
      const auth = await this.nextHandshake('auth');
      if (!verifyProof('client', secret!, t, auth.json.proof))
        this.refuse('auth-failed', `authentication failed: array ${peer} could not prove it knows the shared secret of the link with ${this.opts.localArray}`);
      const keys = deriveSessionKeys(secret!, t);
      this.decoder.setReceiveKey(keys.clientToServer);
      this.sendMac = { key: keys.serverToClient, seq: 0 };
      const accepted: AcceptedMirror[] = [];
      for (const m of mirrors!) {
        const local = p.mirrorFor(m.mirrorId, peer);
        if (!local) this.refuse('wrong-mirror', `mirror ${JSON.stringify(m.mirrorId)} has no secondary image on ${this.opts.localArray}`);
        if (local!.secondarySize < m.primarySize)
          this.refuse('size-mismatch', `mirror ${m.mirrorId}: the secondary image on ${this.opts.localArray} (${local!.secondarySize} bytes) is smaller than the primary on ${peer} (${m.primarySize} bytes)`);
        accepted.push({ mirrorId: m.mirrorId, secondarySize: local!.secondarySize });
      }
      this.peerLimits = parseLimits(j.limits);
      this.send(KIND.HANDSHAKE, 0, { step: 'ok', proof: proof('server', secret!, t), mirrors: accepted, limits: this.limits });
      return this.open({ localArray: this.opts.localArray, peerArray: peer, role: 'server', version: this.version, mirrors: accepted, remoteAddress: addr(this.socket) });
    } finally {
      clearTimeout(deadline);
    }
  }

  private handshakeDeadline(): NodeJS.Timeout {
    const ms = this.timers.handshakeTimeoutMs;
    const t = setTimeout(() => {
      if (this.phase === 'handshake') this.refuseQuietly('timeout', `remote-link handshake did not complete within ${ms} ms`);
    }, ms);
    t.unref();
    return t;
  }

  private async nextHandshake(step: string): Promise<Frame> {
    const f = await this.nextFrame();
    if (f.kind === KIND.ERROR) {
      const e = new RemoteLinkError(String(f.json.code ?? 'protocol'), `refused by the peer: ${String(f.json.message ?? 'no reason given')}`);
      this.fail(e);
      this.socket.destroy();
      throw e;
    }
    if (f.kind !== KIND.HANDSHAKE || f.json.step !== step) {
      // a peer of another version may say anything: report the version first
      if (f.version !== this.version) this.refuse('version-mismatch', `peer speaks remote-link protocol version ${f.version}, ${this.opts.localArray} speaks ${this.version}`);
      this.refuse('protocol', `expected handshake step ${step}, got frame kind ${f.kind}${f.kind === KIND.HANDSHAKE ? ` step ${String(f.json.step)}` : ''}`);
    }
    return f;
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

function parseLimits(v: unknown): FrameLimits {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const n = (x: unknown, d: number) => (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : d);
  return { maxJson: n(o.maxJson, LINK_MAX_JSON), maxBinary: n(o.maxBinary, LINK_MAX_BINARY) };
}
