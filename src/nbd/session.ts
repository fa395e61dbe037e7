import type { Socket } from 'node:net';
import type { BlockDevice } from '../block/index.js';
import type { BufferPool } from './buffer-pool.js';
import { budgetBug, type BudgetWaiter, type MemoryBudget } from './memory-budget.js';
import { Commands, type SessionStats } from './commands.js';
import { Outbox } from './outbox.js';
import { ByteQueue } from '../wire/index.js';
import { CMD, CMD_FLAG, EXTENDED_REQUEST_MAGIC, LIMITS, REQUEST_MAGIC, type NbdErrno } from './constants.js';
import type { ExportCatalog } from './export.js';
import { greeting, Negotiation, type Negotiated } from './negotiation.js';
import { OptionPhase } from './option-phase.js';
import { ReplyEncoder } from './replies.js';
import { offsetOf, validateRequest } from './request.js';
import { upgradeSocket, type NbdTls } from './tls.js';

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

/**
 * Write payloads at least this long are read from the socket straight into their pooled buffer
 * (one read each); smaller ones arrive with their neighbours in the shared read buffer (one read
 * for many requests) and are copied out of it into a pooled buffer.
 */
const DIRECT_READ_MIN = 64 * 1024;

interface PendingWrite {
  flags: number;
  hi: number;
  lo: number;
  offset: number;
  length: number;
  buf: Buffer;
  filled: number;
}

type Phase = 'client-flags' | 'options' | 'transmission' | 'closing' | 'closed';

export interface SessionHooks {
  catalog: ExportCatalog;
  /** Where large write payloads are assembled. */
  pool: BufferPool;
  /** The server-wide memory budget (payload in flight, replies queued) this connection is charged to. */
  budget: MemoryBudget;
  /** The server feeds received bytes through `receive` itself (shared read buffer). */
  externalReads: boolean;
  shuttingDown(): boolean;
  /** TLS credentials and mode (off when absent): STARTTLS upgrades the connection. */
  tls?: NbdTls;
  onTransmission(session: Session): void;
  onClose(session: Session, reason: string): void;
}

/**
 * One client connection: handshake, then the transmission phase. Requests are parsed straight
 * out of the received chunks, served concurrently (replies in any order, cookies echoed), and
 * the replies produced in one turn of the event loop leave in one socket write.
 */
export class Session implements BudgetWaiter {
  readonly stats: SessionStats = { requests: 0, errors: 0, bytesRead: 0, bytesWritten: 0 };
  readonly remote: string;
  private phase: Phase = 'client-flags';
  private readonly input = new ByteQueue();
  /** The option haggling, once the client flags have come. */
  private options: OptionPhase | null = null;
  private negotiated: Negotiated | null = null;
  private device: BlockDevice | null = null;
  /** The transmission commands, once the handshake chose the export and the reply format. */
  private commands: Commands | null = null;
  private headerSize = 28;
  private requestMagic = REQUEST_MAGIC;
  private handshakeTimer: NodeJS.Timeout | null;

  private inflight = 0;
  private inflightBytes = 0;
  /** Bytes charged to the server's memory budget: payload in flight plus replies not yet written. */
  private held = 0;
  /** Counted among the budget's connections (in transmission, not yet ended). */
  private joined = false;
  /** Input is paused because of our limits (not because the client is slow). */
  private stalled = false;
  /** Bytes of an oversized write still to be thrown away, and the reply owed after them. */
  private discardLeft = 0;
  private discardCookie: [number, number, number] = [0, 0, 0];
  /** A large write whose payload is being copied into a pooled buffer as it arrives. */
  private fill: PendingWrite | null = null;
  /** The view of `fill.buf` that the socket reads into directly, if it does. */
  private readTarget: Buffer | null = null;

  private readonly outbox: Outbox;
  private shutdown = false;
  private idleWaiters: (() => void)[] = [];
  closeReason = '';
  /** The connection was upgraded with STARTTLS (this.socket is then the TLS socket). */
  tls = false;

  private readonly onData = (chunk: Buffer) => this.receive(chunk, true);
  private readonly onDrain = () => this.maybeResume();
  private readonly onError = (err: Error) => this.terminate(`socket error: ${err.message}`);
  private readonly onSocketClose = () => this.terminate(this.closeReason || 'client closed the connection');
  private readonly onEnd = () => {
    if (this.phase !== 'closed') this.closeReason ||= 'client closed the connection';
    // Half-closed by the client: answer what is in flight, then close our side.
    this.afterIdle(() => this.endSocket());
  };

  constructor(
    readonly id: number,
    private socket: Socket,
    private readonly hooks: SessionHooks,
    private readonly limits: SessionLimits = DEFAULT_LIMITS,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.outbox = new Outbox({
      id,
      socket: () => this.socket,
      closed: () => this.phase === 'closed',
      charge: (n) => this.charge(n),
      uncharge: (n) => this.uncharge(n),
      onWritten: () => {
        if (this.stalled) this.maybeResume();
      },
      pool: hooks.pool,
    });
    socket.setNoDelay(true);
    this.listen(socket, !hooks.externalReads);
    this.handshakeTimer = setTimeout(() => this.abort('handshake timed out'), limits.handshakeTimeoutMs);
    this.handshakeTimer.unref();
    this.outbox.send(greeting());
  }

  private listen(socket: Socket, data: boolean): void {
    if (data) socket.on('data', this.onData);
    socket.on('drain', this.onDrain);
    socket.on('error', this.onError);
    socket.on('close', this.onSocketClose);
    socket.on('end', this.onEnd);
  }

  /**
   * STARTTLS was acknowledged: the ACK leaves in plaintext, then the connection continues over
   * TLS (the handshake first). The handshake timer still runs: a client that never completes
   * the TLS handshake is dropped like one that never finishes negotiating.
   */
  private startTls(): void {
    this.outbox.flush();
    const t = this.hooks.tls;
    if (!t) return this.abort('STARTTLS acknowledged without TLS credentials');
    // The client must wait for the ACK before its handshake: anything queued is a violation.
    if (this.input.length > 0) return this.abort('client sent data after NBD_OPT_STARTTLS before the TLS handshake');
    const raw = this.socket;
    for (const [ev, fn] of [['data', this.onData], ['drain', this.onDrain], ['error', this.onError], ['close', this.onSocketClose], ['end', this.onEnd]] as const) {
      raw.off(ev, fn as (...args: unknown[]) => void);
    }
    const secure = upgradeSocket(raw, t);
    // Errors of the TCP socket reach us through the TLS socket; the TLS socket's close frees it.
    raw.on('error', () => secure.destroy());
    secure.once('close', () => raw.destroy());
    this.socket = secure;
    this.tls = true;
    this.listen(secure, true);
  }

  get exportName(): string | null {
    return this.negotiated?.export.name ?? null;
  }

  /** What this connection holds in memory right now: the figures back-pressure bounds. */
  get load(): { inflight: number; inflightBytes: number; queuedReplyBytes: number; bufferedInputBytes: number; budgetBytes: number } {
    return {
      inflight: this.inflight,
      inflightBytes: this.inflightBytes,
      budgetBytes: this.held,
      queuedReplyBytes: this.outbox.queuedBytes + (this.socket.writableLength ?? 0),
      bufferedInputBytes: this.input.length,
    };
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
    // The flush shares the grace period: a device that cannot flush must not hold shutdown.
    const flushed = this.device?.flush().catch(() => {
      /* the flush error reaches no client; in-flight requests already reported their own */
    });
    await Promise.race([flushed, grace]);
    clearTimeout(timer);
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
    // What the socket will never write, and a payload never completed, are released now; requests
    // still running release theirs when they settle (their replies are dropped by send()).
    let unheld = this.outbox.drop();
    if (this.fill) unheld += this.fill.length;
    this.fill = null;
    this.uncharge(unheld);
    this.hooks.budget.unwait(this);
    if (this.joined) {
      this.joined = false;
      this.hooks.budget.leave(this);
    }
    this.hooks.onClose(this, this.closeReason);
  }

  private endSocket(): void {
    if (this.phase === 'closed') return;
    this.outbox.flush();
    this.phase = 'closing';
    this.socket.end();
  }

  // ---- input ------------------------------------------------------------------------------

  /** Where the next socket read should land: the rest of a pending payload, or the shared buffer. */
  nextReadBuffer(shared: Buffer): Buffer {
    this.readTarget = this.fill && this.phase === 'transmission' ? this.fill.buf.subarray(this.fill.filled) : null;
    return this.readTarget ?? shared;
  }

  onRead(n: number, buf: Buffer): void {
    if (buf !== this.readTarget || !this.fill) {
      this.receive(buf.subarray(0, n));
      return;
    }
    // The kernel wrote this read straight into the payload buffer.
    if (this.phase !== 'transmission') return;
    const f = this.fill;
    f.filled += n;
    if (f.filled < f.length) return;
    this.fill = null;
    try {
      this.finishRequest(CMD.WRITE, f.flags, f.hi, f.lo, f.offset, f.length, f.buf, true);
    } catch (err) {
      this.abort(`internal error: ${(err as Error).stack ?? err}`);
    }
  }

  /**
   * Bytes from the socket. `view` may be the server's shared read buffer, valid only during this
   * call, so whatever is kept is copied (unless `owned`): the payload of a large write straight
   * into its pooled buffer, everything else into the input queue.
   */
  receive(view: Buffer, owned = false): void {
    if (this.phase === 'closed' || this.phase === 'closing') return;
    try {
      for (;;) {
        if (this.fill) {
          view = this.fillFrom(view);
          if (this.fill) return;
          continue;
        }
        // The common case of a large write: its header starts the read; skip the queue.
        if (view.length >= this.headerSize && this.input.length === 0 && this.startFillAt(view)) {
          view = view.subarray(this.headerSize);
          continue;
        }
        break;
      }
    } catch (err) {
      this.abort(`internal error: ${(err as Error).stack ?? err}`);
      return;
    }
    this.input.push(view);
    this.pump();
    // What is left is a partial request (or input held back by our limits): keep a copy of it.
    if (!owned) this.input.ownLast();
  }

  /** Copies what `view` holds of the pending payload; dispatches once it is complete. */
  private fillFrom(view: Buffer): Buffer {
    const f = this.fill!;
    const n = Math.min(view.length, f.length - f.filled);
    view.copy(f.buf, f.filled, 0, n);
    f.filled += n;
    if (f.filled === f.length) {
      this.fill = null;
      this.finishRequest(CMD.WRITE, f.flags, f.hi, f.lo, f.offset, f.length, f.buf, true);
    }
    return view.subarray(n);
  }

  /** If `view` starts with the header of a write large enough for the pool, starts filling it. */
  private startFillAt(view: Buffer): boolean {
    if (this.phase !== 'transmission' || this.discardLeft > 0) return false;
    if (view.readUInt32BE(0) !== this.requestMagic || view.readUInt16BE(6) !== CMD.WRITE) return false;
    const n = this.negotiated!;
    const length = n.extended ? offsetOf(view.readUInt32BE(24), view.readUInt32BE(28)) : view.readUInt32BE(24);
    if (length < DIRECT_READ_MIN || length > LIMITS.MAX_PAYLOAD || this.congested(length)) return false;
    this.charge(length);
    this.fill = {
      flags: view.readUInt16BE(4) & ~CMD_FLAG.PAYLOAD_LEN,
      hi: view.readUInt32BE(8),
      lo: view.readUInt32BE(12),
      offset: offsetOf(view.readUInt32BE(16), view.readUInt32BE(20)),
      length,
      buf: this.hooks.pool.get(length),
      filled: 0,
    };
    return true;
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
        const negotiation = new Negotiation(this.hooks.catalog, flags, this.hooks.shuttingDown, this.hooks.tls?.mode ?? 'off');
        this.options = new OptionPhase(negotiation, (reply) => this.outbox.send(reply));
        this.phase = 'options';
        continue;
      }
      const step = this.options!.pump(q);
      if (step.then === 'wait') return;
      if (step.then === 'abort') return this.abort(step.reason);
      if (step.then === 'close') {
        this.outbox.flush();
        this.closeReason = step.reason;
        this.phase = 'closing';
        this.socket.end();
        return;
      }
      if (step.then === 'transmission') this.enterTransmission(step.negotiated);
      if (step.then === 'starttls') return this.startTls();
    }
  }

  private enterTransmission(n: Negotiated): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.negotiated = n;
    this.device = n.export.device;
    this.commands = new Commands({
      device: n.export.device,
      replies: new ReplyEncoder(n.extended ? 'extended' : n.structured ? 'structured' : 'simple'),
      outbox: this.outbox,
      pool: this.hooks.pool,
      stats: this.stats,
      uncharge: (bytes) => this.uncharge(bytes),
    });
    this.headerSize = n.extended ? 32 : 28;
    this.requestMagic = n.extended ? EXTENDED_REQUEST_MAGIC : REQUEST_MAGIC;
    this.phase = 'transmission';
    this.hooks.budget.join();
    this.joined = true;
    this.hooks.onTransmission(this);
  }

  private pumpTransmission(): void {
    const q = this.input;
    const n = this.negotiated!;
    const hs = this.headerSize;
    while (this.phase === 'transmission') {
      if (this.discardLeft > 0) {
        this.discardLeft -= q.skip(this.discardLeft);
        if (this.discardLeft > 0) return;
        const [hi, lo, offset] = this.discardCookie;
        this.commands!.replyError(hi, lo, offset, 'EINVAL', 'payload larger than the maximum block size, or not allowed on this command');
        continue;
      }
      if (q.length < hs) return;
      const type = q.readUInt16BE(6);
      const length = n.extended ? offsetOf(q.readUInt32BE(24), q.readUInt32BE(28)) : q.readUInt32BE(24);
      if (this.congested(costOf(type, length))) {
        this.stall();
        return;
      }
      if (q.readUInt32BE(0) !== this.requestMagic) return this.abort('bad request magic');
      let flags = q.readUInt16BE(4);
      const hi = q.readUInt32BE(8);
      const lo = q.readUInt32BE(12);
      const offset = offsetOf(q.readUInt32BE(16), q.readUInt32BE(20));
      let payload: Buffer | null = null;
      let pooled = false;
      const hasPayload = type === CMD.WRITE || (n.extended && (flags & CMD_FLAG.PAYLOAD_LEN) !== 0);
      if (hasPayload) {
        if (length > LIMITS.MAX_PAYLOAD || type !== CMD.WRITE) {
          // Read and discard, then refuse; a payload too large to be worth reading ends it.
          if (length > LIMITS.MAX_DISCARD) return this.abort(`request payload of ${length} bytes`);
          q.skip(hs);
          this.discardLeft = length;
          this.discardCookie = [hi, lo, Number.isFinite(offset) ? offset : 0];
          this.stats.requests++;
          continue;
        }
        if (length >= DIRECT_READ_MIN) {
          // Large: assembled in a pooled buffer from what is queued and what is still to come.
          q.skip(hs);
          this.charge(length);
          const buf = this.hooks.pool.get(length);
          const have = Math.min(q.length, length);
          q.copyOut(buf, have);
          this.fill = { flags: flags & ~CMD_FLAG.PAYLOAD_LEN, hi, lo, offset, length, buf, filled: have };
          if (have < length) return;
          this.fill = null;
          payload = buf;
        } else {
          if (q.length < hs + length) return; // wait for the whole payload
          q.skip(hs);
          this.charge(length);
          // Copied out: the queue may hold the server's shared read buffer (see receive).
          payload = this.hooks.pool.get(length);
          q.copyOut(payload, length);
        }
        pooled = true;
        flags &= ~CMD_FLAG.PAYLOAD_LEN;
      } else {
        q.skip(hs);
      }
      if (!this.finishRequest(type, flags, hi, lo, offset, length, payload, pooled)) return;
    }
  }

  /**
   * A request whose header (and payload) has arrived: validate, then run it. Returns false when
   * the session stops taking requests (DISC).
   */
  private finishRequest(type: number, flags: number, hi: number, lo: number, offset: number, length: number, payload: Buffer | null, pooled: boolean): boolean {
    const release = pooled ? () => this.hooks.pool.put(payload!) : undefined;
    this.stats.requests++;
    const bad = validateRequest(this.negotiated!, this.device!.size, type, flags, offset, length);
    if (bad) {
      release?.();
      if (payload) this.uncharge(payload.length);
      this.commands!.replyError(hi, lo, Number.isFinite(offset) ? offset : 0, bad, describe(bad, type, offset, length));
      return true;
    }
    if (type === CMD.DISC) {
      this.closeReason = 'client sent NBD_CMD_DISC';
      this.phase = 'closing';
      this.afterIdle(() => {
        this.phase = 'transmission';
        this.endSocket();
      });
      return false;
    }
    if (this.shutdown) {
      release?.();
      if (payload) this.uncharge(payload.length);
      this.commands!.replyError(hi, lo, offset, 'ESHUTDOWN', 'server is shutting down');
      return true;
    }
    this.dispatch(type, flags, hi, lo, offset, length, payload, release);
    return true;
  }

  /**
   * True when reading a request that will hold `cost` bytes would grow memory past the limits:
   * this connection's own, or its share of the server's budget (then it waits on the budget).
   */
  private congested(cost: number): boolean {
    if (this.socket.writableLength + this.outbox.queuedBytes >= this.limits.maxQueuedReplyBytes) return true;
    // One request is always admitted, however large, so progress never depends on the limits.
    if (this.inflight > 0 && (this.inflight >= this.limits.maxInflight || this.inflightBytes >= this.limits.maxInflightBytes)) return true;
    if (this.hooks.budget.admits(this.held, cost)) return false;
    this.hooks.budget.wait(this);
    return true;
  }

  /** What the next queued request would hold, if its header has arrived (else 0). */
  private nextCost(): number {
    const q = this.input;
    if (this.phase !== 'transmission' || q.length < this.headerSize) return 0;
    return costOf(q.readUInt16BE(6), this.negotiated!.extended ? offsetOf(q.readUInt32BE(24), q.readUInt32BE(28)) : q.readUInt32BE(24));
  }

  private charge(n: number): void {
    if (this.held === 0 && n > 0) this.hooks.budget.holding++;
    this.held += n;
    this.hooks.budget.charge(n);
  }

  private uncharge(n: number): void {
    if (n === 0) return;
    this.held -= n;
    if (this.held < 0) {
      const held = this.held;
      this.held = 0;
      budgetBug(`NBD session ${this.id} released more budget than it held (${held})`);
    }
    if (this.held === 0) this.hooks.budget.holding--;
    this.hooks.budget.release(n);
  }

  /** The budget has room again (or fewer connections share it): go on if we may. */
  wake(): void {
    this.maybeResume();
  }

  private stall(): void {
    if (this.stalled) return;
    this.stalled = true;
    this.socket.pause();
  }

  private maybeResume(): void {
    if (!this.stalled || this.phase !== 'transmission' || this.congested(this.nextCost())) return;
    this.stalled = false;
    this.hooks.budget.unwait(this);
    this.socket.resume();
    this.pump();
  }

  // ---- commands ---------------------------------------------------------------------------

  private dispatch(type: number, flags: number, hi: number, lo: number, offset: number, length: number, payload: Buffer | null, release?: () => void): void {
    const bytes = type === CMD.READ ? length : type === CMD.WRITE ? length : 0;
    this.inflight++;
    this.inflightBytes += bytes;
    if (type === CMD.READ) this.charge(bytes); // a write's payload was charged when it was allocated
    const work = this.commands!.run(type, flags, hi, lo, offset, length, payload);
    const settled = (): void => {
      release?.(); // the device holds no reference to the payload once the write settled
      this.inflight--;
      this.inflightBytes -= bytes;
      if (type !== CMD.READ) this.uncharge(bytes); // a read's charge went to its reply (see read)
      if (this.inflight === 0) this.wakeIdle();
      this.maybeResume();
    };
    work.then(settled, (err: unknown) => {
      this.abort(`internal error: ${(err as Error).stack ?? err}`);
      settled();
    });
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

/** What a request holds while it runs: its payload (write) or its data (read); the rest hold no data. */
function costOf(type: number, length: number): number {
  // An oversized request is refused without reading or producing its payload.
  return (type === CMD.READ || type === CMD.WRITE) && length <= LIMITS.MAX_PAYLOAD ? length : 0;
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
