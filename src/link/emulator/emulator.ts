/**
 * The link emulator: a TCP proxy between two remote-link endpoints that can delay, throttle,
 * stall, reset and cut the traffic, like a WAN between two arrays.
 *
 * A link joins array `a` and array `b`. It has one or more routes, each a listener that forwards
 * to a target: the route `to-b` is where array a dials to reach array b (bytes from the dialer to
 * the target flow a-to-b, the answers b-to-a), and `to-a` the other way round. Every setting is per
 * direction (a-to-b, b-to-a), whatever side opened the connection.
 *
 * Per direction and per connection, the bytes read from the source wait in a FIFO queue
 * (./pipe.ts) until their due time (./pacer.ts), kept to about 0.05 ms by ./wakeups.ts (a timer
 * for the bulk of a wait, polls of the clock for its last fraction of a millisecond):
 * - bandwidth: a chunk is serialized at `bandwidth` bytes/s after the bytes ahead of it (split into
 *   pieces of about 1 ms of the cap, 1460 bytes to 16 KiB), then propagated; a token bucket (burst
 *   of 50 ms worth, at least 16 KiB) also meters the delivery, so bytes that waited behind a stall
 *   or a cut go out at the cap;
 * - latency: each chunk is due `latencyMs + random(0..jitterMs)` after it was serialized, but never
 *   before the chunk ahead of it (byte order is kept: TCP never reorders; jitter only stretches gaps);
 * - loss: each chunk (one read, or one piece under a cap) is lost with probability
 *   `lossPercent`/100 and then costs one `rtoMs` more, as a lost TCP segment costs a retransmission
 *   timeout; the chunks behind it wait for it (head-of-line blocking). Draws come from
 *   `mulberry32(seed)` when the emulator is given a seed, else Math.random;
 * - nothing set (no latency, jitter, cap or loss): chunks go straight through, no queue, no clock;
 * - stall: nothing is delivered until the stall ends (bytes keep queueing);
 * - cut: a black hole, the way a pulled cable behaves for TCP. Nothing crosses a cut direction:
 *   the bytes wait (bounded, see below), the peers see silence and their own timeouts fire. New
 *   connections are accepted but not connected onward while any direction is cut (a SYN that
 *   gets no answer). A connection that has been held by a cut for `cutResetMs` is reset (TCP's
 *   retransmission timeout giving up), so a long cut ends every connection with ECONNRESET, and a
 *   short one (shorter than `cutResetMs`) is survived with nothing lost, like a brief outage.
 *   `cut(..., { reset: true })` resets the current connections at once. Restore delivers what
 *   waits and connects the held connections.
 * - reset: destroys the current connections with a TCP RST on both sides.
 *
 * Memory is bounded: when a direction's queue holds more than `queueBytes`, the source socket is
 * paused (TCP back-pressure to the sender) and resumed below half of it; a destination that does
 * not drain pauses delivery the same way.
 *
 * Every change is an event (`'event'`, with `seq` and `time`); `status()` is a snapshot.
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net';
import { Conn } from './conn.js';
import { mulberry32, type Random } from '../../random/index.js';
import { Wakeups } from './wakeups.js';
import {
  checkDirection,
  DEFAULT_SETTINGS,
  SETTING_NAMES,
  checkMs,
  checkSettings,
  DIRECTIONS,
  dirs,
  LinkError,
  type ConnectionStatus,
  type Direction,
  type DirectionArg,
  type DirectionSettings,
  type LinkEmulatorOptions,
  type LinkEvent,
  type LinkStatus,
  type RouteConfig,
} from './types.js';

// The vocabulary lives in types.ts; re-exported here, the module's public face.
export {
  checkDirection,
  checkSettings,
  DEFAULT_SETTINGS,
  DIRECTIONS,
  LinkError,
  type ConnectionStatus,
  type DelayQueueStats,
  type Direction,
  type DirectionArg,
  type DirectionSettings,
  type LinkEmulatorOptions,
  type LinkEvent,
  type LinkStatus,
  type RouteConfig,
} from './types.js';

const MAX_EVENTS = 1000;
/** A cut this long resets the connections through the link (cutResetMs default). */
const DEFAULT_CUT_RESET_MS = 15_000;
/** Longest cutResetMs accepted. */
const MAX_CUT_RESET_MS = 86_400_000;
/** Dialing the target of a route fails after this long (connectTimeoutMs default). */
const CONNECT_TIMEOUT_MS = 10_000;

export class LinkEmulator extends EventEmitter {
  readonly name: string;
  readonly a: string;
  readonly b: string;
  readonly queueBytes: number;
  readonly connectTimeoutMs: number;
  /** Calls the pipes back at their due times (one timer and one poll loop for all). */
  readonly wakeups: Wakeups;
  /** Jitter and loss draws. */
  readonly random: Random;
  cutResetMs: number;
  private readonly routes: RouteConfig[];
  private readonly settings: Record<Direction, DirectionSettings>;
  private readonly cut: Record<Direction, boolean> = { 'a-to-b': false, 'b-to-a': false };
  private cutSince: number | undefined;
  private cutTimer: NodeJS.Timeout | undefined;
  private readonly stallUntil: Record<Direction, number> = { 'a-to-b': 0, 'b-to-a': 0 };
  private stallTimers: NodeJS.Timeout[] = [];
  private readonly servers: Server[] = [];
  private readonly conns = new Set<Conn>();
  private nextConn = 1;
  private seq = 0;
  private readonly events: LinkEvent[] = [];
  private readonly totals = {
    connections: 0,
    resets: 0,
    bytes: { 'a-to-b': 0, 'b-to-a': 0 } as Record<Direction, number>,
    losses: { 'a-to-b': 0, 'b-to-a': 0 } as Record<Direction, number>,
  };
  private stopped = false;
  private started = false;

  constructor(opts: LinkEmulatorOptions) {
    super();
    this.setMaxListeners(100);
    this.name = opts.name;
    this.a = opts.a ?? 'a';
    this.b = opts.b ?? 'b';
    this.routes = opts.routes.map((r) => ({ ...r, listen: { ...r.listen }, target: { ...r.target } }));
    this.queueBytes = opts.queueBytes ?? 1 << 20;
    if (!Number.isSafeInteger(this.queueBytes) || this.queueBytes < 1024) throw new LinkError('invalid-argument', 'queueBytes must be at least 1024');
    this.cutResetMs = checkMs(opts.cutResetMs ?? DEFAULT_CUT_RESET_MS, 'cutResetMs', MAX_CUT_RESET_MS);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    if (opts.seed !== undefined && !Number.isSafeInteger(opts.seed)) throw new LinkError('invalid-argument', `seed must be an integer, not ${JSON.stringify(opts.seed)}`);
    this.random = opts.seed === undefined ? Math.random : mulberry32(opts.seed);
    if (opts.pollMs !== undefined) checkMs(opts.pollMs, 'pollMs', 10);
    this.wakeups = new Wakeups(opts.pollMs);
    this.settings = {
      'a-to-b': { ...DEFAULT_SETTINGS, ...checkSettings(opts.settings?.['a-to-b'] ?? {}) },
      'b-to-a': { ...DEFAULT_SETTINGS, ...checkSettings(opts.settings?.['b-to-a'] ?? {}) },
    };
    if (opts.cut && opts.cut !== 'none') {
      for (const d of dirs(checkDirection(opts.cut))) this.cut[d] = true;
      this.cutSince = Date.now();
    }
  }

  /** Opens the listeners; fills in the ports of routes given port 0. */
  async start(): Promise<void> {
    if (this.started) throw new LinkError('invalid-state', 'already started');
    this.started = true;
    try {
      for (const r of this.routes) {
        const srv = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => this.accept(r, sock));
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen(r.listen.port, r.listen.host, () => {
            srv.off('error', reject);
            resolve();
          });
        });
        r.listen.port = (srv.address() as AddressInfo).port;
        this.servers.push(srv);
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
    if (this.anyCut()) this.armCutTimer();
    this.emitEvent('link.started', { routes: this.status().routes, settings: this.status().settings, cut: { ...this.cut } });
  }

  private accept(r: RouteConfig, sock: Socket): void {
    if (this.stopped) {
      sock.destroy();
      return;
    }
    sock.setNoDelay(true);
    const c = new Conn(this, this.nextConn++, r, sock);
    this.conns.add(c);
    this.totals.connections++;
    sock.resume();
    c.dial();
    if (c.state === 'held') this.emitEvent('connection.held', { id: c.id, route: r.name, from: c.from() });
  }

  /** Closes the listeners and resets every connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.cutTimer) clearTimeout(this.cutTimer);
    for (const t of this.stallTimers) clearTimeout(t);
    for (const c of [...this.conns]) c.destroy('stopped', true);
    this.wakeups.stop();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.emitEvent('link.stopped', {});
  }

  // ---- used by connections ----

  settingsOf(d: Direction): DirectionSettings {
    return this.settings[d];
  }
  isCut(d: Direction): boolean {
    return this.cut[d];
  }
  anyCut(): boolean {
    return this.cut['a-to-b'] || this.cut['b-to-a'];
  }
  stallLeft(d: Direction): number {
    return this.stallUntil[d] - Date.now();
  }
  countBytes(d: Direction, n: number): void {
    this.totals.bytes[d] += n;
  }
  countLoss(d: Direction): void {
    this.totals.losses[d]++;
  }
  connClosed(c: Conn, reason: string): void {
    this.conns.delete(c);
    const st = c.status();
    this.emitEvent('connection.closed', { id: c.id, route: c.route.name, reason, bytes: st.bytes });
  }

  emitEvent(type: string, details: Record<string, unknown>): LinkEvent {
    const ev: LinkEvent = { seq: ++this.seq, time: new Date().toISOString(), link: this.name, type, ...details };
    this.events.push(ev);
    if (this.events.length > MAX_EVENTS) this.events.shift();
    this.emit('event', ev);
    return ev;
  }

  /** Kept events with seq > since (the last 1000). */
  eventsSince(since: number): LinkEvent[] {
    return this.events.filter((e) => e.seq > since);
  }

  // ---- operations (each validates everything first: a refused call changes nothing) ----

  /** Changes latency, jitter, bandwidth, loss and/or RTO of one or both directions (new bytes get them). */
  set(settings: Partial<DirectionSettings>, direction: DirectionArg = 'both'): LinkEvent {
    const s = checkSettings(settings);
    const ds = dirs(checkDirection(direction));
    if (Object.keys(s).length === 0) throw new LinkError('invalid-argument', `nothing to set: give ${SETTING_NAMES.join(', ')}`);
    const before = Object.fromEntries(ds.map((d) => [d, { ...this.settings[d] }]));
    for (const d of ds) Object.assign(this.settings[d], s);
    for (const c of this.conns) for (const d of ds) c.pipes[d].pump();
    return this.emitEvent('link.settings', { direction, changed: s, before, after: Object.fromEntries(ds.map((d) => [d, { ...this.settings[d] }])) });
  }

  /** Holds all traffic of the direction(s) for ms, then delivers what waited. */
  stall(ms: number, direction: DirectionArg = 'both'): LinkEvent {
    checkMs(ms, 'stall');
    const ds = dirs(checkDirection(direction));
    const until = Date.now() + ms;
    for (const d of ds) this.stallUntil[d] = Math.max(this.stallUntil[d], until);
    const t = setTimeout(() => {
      this.stallTimers = this.stallTimers.filter((x) => x !== t);
      if (!this.stopped) this.emitEvent('link.stall-ended', { direction, ms });
      for (const c of this.conns) for (const d of ds) c.pipes[d].pump();
    }, ms);
    this.stallTimers.push(t);
    return this.emitEvent('link.stalled', { direction, ms, until: new Date(until).toISOString() });
  }

  /** Resets (TCP RST) every current connection. */
  reset(reason = 'reset'): LinkEvent {
    const ids = [...this.conns].map((c) => c.id);
    this.totals.resets += ids.length;
    for (const c of [...this.conns]) c.destroy(reason, true);
    return this.emitEvent('link.reset', { connections: ids, reason });
  }

  /** Cuts one or both directions (a black hole; see the module comment). */
  cutLink(direction: DirectionArg = 'both', opts: { reset?: boolean } = {}): LinkEvent {
    const ds = dirs(checkDirection(direction));
    for (const d of ds) this.cut[d] = true;
    this.cutSince ??= Date.now();
    const ev = this.emitEvent('link.cut', { direction, cut: { ...this.cut }, reset: !!opts.reset });
    if (opts.reset) this.reset('cut');
    this.armCutTimer();
    return ev;
  }

  /** Restores every direction: waiting bytes are delivered and held connections dialled. */
  restore(): LinkEvent {
    const was = { ...this.cut };
    this.cut['a-to-b'] = false;
    this.cut['b-to-a'] = false;
    const since = this.cutSince;
    this.cutSince = undefined;
    if (this.cutTimer) clearTimeout(this.cutTimer);
    this.cutTimer = undefined;
    const ev = this.emitEvent('link.restored', { was, cutMs: since === undefined ? 0 : Date.now() - since });
    for (const c of [...this.conns]) {
      if (!c.target) c.dial();
      else for (const d of DIRECTIONS) c.pipes[d].pump();
    }
    return ev;
  }

  /** Resets connections held by a cut for longer than cutResetMs (TCP giving up). */
  private armCutTimer(): void {
    if (this.cutTimer) clearTimeout(this.cutTimer);
    this.cutTimer = undefined;
    if (!this.anyCut() || this.cutResetMs <= 0 || this.stopped) return;
    const since = this.cutSince ?? Date.now();
    const left = since + this.cutResetMs - Date.now();
    this.cutTimer = setTimeout(() => {
      this.cutTimer = undefined;
      if (!this.anyCut()) return;
      const victims = [...this.conns];
      if (victims.length) {
        this.totals.resets += victims.length;
        for (const c of victims) c.destroy('cut-timeout', true);
        this.emitEvent('link.cut-timeout', { connections: victims.map((c) => c.id), afterMs: this.cutResetMs });
      }
      // Connections made later during the same cut get their own full timeout.
      this.cutSince = Date.now();
      this.armCutTimer();
    }, Math.max(1, left));
    this.cutTimer.unref();
  }

  status(): LinkStatus {
    const conns = [...this.conns].map((c) => c.status());
    const sum = (f: (c: ConnectionStatus) => Record<Direction, number>) => ({
      'a-to-b': conns.reduce((n, c) => n + f(c)['a-to-b'], 0),
      'b-to-a': conns.reduce((n, c) => n + f(c)['b-to-a'], 0),
    });
    const now = Date.now();
    const stalled = DIRECTIONS.some((d) => this.stallUntil[d] > now);
    const state = this.stopped
      ? 'stopped'
      : this.cut['a-to-b'] && this.cut['b-to-a']
        ? 'cut'
        : this.anyCut()
          ? 'partially-cut'
          : stalled
            ? 'stalled'
            : 'up';
    return {
      link: this.name,
      a: this.a,
      b: this.b,
      state,
      settings: { 'a-to-b': { ...this.settings['a-to-b'] }, 'b-to-a': { ...this.settings['b-to-a'] } },
      cut: { ...this.cut },
      cutSince: this.cutSince === undefined ? null : new Date(this.cutSince).toISOString(),
      stalledUntil: {
        'a-to-b': this.stallUntil['a-to-b'] > now ? new Date(this.stallUntil['a-to-b']).toISOString() : null,
        'b-to-a': this.stallUntil['b-to-a'] > now ? new Date(this.stallUntil['b-to-a']).toISOString() : null,
      },
      queueBytes: this.queueBytes,
      cutResetMs: this.cutResetMs,
      routes: this.routes.map((r) => ({ name: r.name, listen: { ...r.listen }, target: { ...r.target }, forward: r.forward })),
      connections: conns,
      totals: { connections: this.totals.connections, resets: this.totals.resets, bytes: { ...this.totals.bytes }, losses: { ...this.totals.losses } },
      delayQueue: { ...this.wakeups.stats },
      bytes: sum((c) => c.bytes),
      queued: sum((c) => c.queued),
      lastEventSeq: this.seq,
    };
  }
}
