import type { Socket } from 'node:net';
import type { BlockDevice } from '../block/index.js';
import type { BufferPool } from './buffer-pool.js';
import { Admission, costOf, DEFAULT_LIMITS, type SessionLimits } from './admission.js';
import type { BudgetWaiter, MemoryBudget } from './memory-budget.js';
import { Commands, type SessionStats } from './commands.js';
import { Outbox } from './outbox.js';
import { ByteQueue } from '../wire/index.js';
import { CMD, CMD_FLAG, EXTENDED_REQUEST_MAGIC, LIMITS, REQUEST_MAGIC } from './constants.js';
import type { ExportCatalog } from './export.js';
import { greeting, Negotiation, type Negotiated } from './negotiation.js';
import { OptionPhase } from './option-phase.js';
import { DIRECT_READ_MIN, largeWriteAt, PayloadFill } from './payload-fill.js';
import { ReplyEncoder } from './replies.js';
import { describeRefusal, offsetOf, validateRequest } from './request.js';
import { upgradeSocket, type NbdTls } from './tls.js';

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

  private readonly admission: Admission;
  /** Input is paused because of our limits (not because the client is slow). */
  private stalled = false;
  /** Bytes of an oversized write still to be thrown away, and the reply owed after them. */
  private discardLeft = 0;
  private discardCookie: [number, number, number] = [0, 0, 0];
  /** A large write whose payload is being copied into a pooled buffer as it arrives. */
  private readonly fill = new PayloadFill();

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
    limits: SessionLimits = DEFAULT_LIMITS,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.admission = new Admission(id, limits, hooks.budget, this, () => this.queuedReplyBytes());
    this.outbox = new Outbox({
      id,
      socket: () => this.socket,
      closed: () => this.phase === 'closed',
      charge: (n) => this.admission.charge(n),
      uncharge: (n) => this.admission.uncharge(n),
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

  /** Reply bytes not yet written: queued in the outbox and in the socket. */
  private queuedReplyBytes(): number {
    return this.outbox.queuedBytes + (this.socket.writableLength ?? 0);
  }

  /** What this connection holds in memory right now: the figures back-pressure bounds. */
  get load(): { inflight: number; inflightBytes: number; queuedReplyBytes: number; bufferedInputBytes: number; budgetBytes: number } {
    return {
      inflight: this.admission.inflight,
      inflightBytes: this.admission.inflightBytes,
      budgetBytes: this.admission.held,
      queuedReplyBytes: this.queuedReplyBytes(),
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
    this.admission.uncharge(this.outbox.drop() + this.fill.drop());
    this.admission.leave();
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
    return this.fill.readBuffer(shared, this.phase === 'transmission');
  }

  onRead(n: number, buf: Buffer): void {
    if (!this.fill.isDirect(buf)) {
      this.receive(buf.subarray(0, n));
      return;
    }
    // The kernel wrote this read straight into the payload buffer.
    if (this.phase !== 'transmission') return;
    const f = this.fill.advance(n);
    if (!f) return;
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
        if (this.fill.pending) {
          view = this.fillFrom(view);
          if (this.fill.pending) return;
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
    const n = this.fill.copyFrom(view);
    const f = this.fill.advance(n);
    if (f) this.finishRequest(CMD.WRITE, f.flags, f.hi, f.lo, f.offset, f.length, f.buf, true);
    return view.subarray(n);
  }

  /** If `view` starts with the header of a write large enough for the pool, starts filling it. */
  private startFillAt(view: Buffer): boolean {
    if (this.phase !== 'transmission' || this.discardLeft > 0) return false;
    const w = largeWriteAt(view, this.requestMagic, this.negotiated!.extended);
    if (!w || this.admission.congested(w.length)) return false;
    this.admission.charge(w.length);
    this.fill.start({ ...w, buf: this.hooks.pool.get(w.length), filled: 0 });
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
      uncharge: (bytes) => this.admission.uncharge(bytes),
    });
    this.headerSize = n.extended ? 32 : 28;
    this.requestMagic = n.extended ? EXTENDED_REQUEST_MAGIC : REQUEST_MAGIC;
    this.phase = 'transmission';
    this.admission.join();
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
      if (this.admission.congested(costOf(type, length))) {
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
          this.admission.charge(length);
          const buf = this.hooks.pool.get(length);
          const have = Math.min(q.length, length);
          q.copyOut(buf, have);
          if (have < length) return this.fill.start({ flags: flags & ~CMD_FLAG.PAYLOAD_LEN, hi, lo, offset, length, buf, filled: have });
          payload = buf;
        } else {
          if (q.length < hs + length) return; // wait for the whole payload
          q.skip(hs);
          this.admission.charge(length);
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
      if (payload) this.admission.uncharge(payload.length);
      this.commands!.replyError(hi, lo, Number.isFinite(offset) ? offset : 0, bad, describeRefusal(bad, type, offset, length));
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
      if (payload) this.admission.uncharge(payload.length);
      this.commands!.replyError(hi, lo, offset, 'ESHUTDOWN', 'server is shutting down');
      return true;
    }
    this.dispatch(type, flags, hi, lo, offset, length, payload, release);
    return true;
  }

  /** What the next queued request would hold, if its header has arrived (else 0). */
  private nextCost(): number {
    const q = this.input;
    if (this.phase !== 'transmission' || q.length < this.headerSize) return 0;
    return costOf(q.readUInt16BE(6), this.negotiated!.extended ? offsetOf(q.readUInt32BE(24), q.readUInt32BE(28)) : q.readUInt32BE(24));
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
    if (!this.stalled || this.phase !== 'transmission' || this.admission.congested(this.nextCost())) return;
    this.stalled = false;
    this.admission.resumed();
    this.socket.resume();
    this.pump();
  }

  // ---- commands ---------------------------------------------------------------------------

  private dispatch(type: number, flags: number, hi: number, lo: number, offset: number, length: number, payload: Buffer | null, release?: () => void): void {
    const bytes = type === CMD.READ ? length : type === CMD.WRITE ? length : 0;
    this.admission.begin(type, bytes);
    const work = this.commands!.run(type, flags, hi, lo, offset, length, payload);
    const settled = (): void => {
      release?.(); // the device holds no reference to the payload once the write settled
      this.admission.end(type, bytes);
      if (this.admission.inflight === 0) this.wakeIdle();
      this.maybeResume();
    };
    work.then(settled, (err: unknown) => {
      this.abort(`internal error: ${(err as Error).stack ?? err}`);
      settled();
    });
  }

  private afterIdle(fn: () => void): void {
    if (this.admission.inflight === 0) fn();
    else this.idleWaiters.push(fn);
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
