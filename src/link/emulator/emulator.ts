/**
 * The link emulator: a TCP proxy between two remote-link endpoints that can delay, throttle,
 * stall, reset and cut the traffic, like a WAN between two arrays.
 *
 * A link joins array `a` and array `b`. It has one or more routes, each a listener that forwards
 * to a target: the route `to-b` is where array a dials to reach array b (bytes from the dialer to
 * the target flow a-to-b, the answers b-to-a), and `to-a` the other way round. Every setting is per
 * direction (a-to-b, b-to-a), whatever side opened the connection.
 *
 * Per direction and per connection, the bytes read from the source wait in a FIFO queue:
 * - latency: each chunk is due `latencyMs + random(0..jitterMs)` after it arrived, but never
 *   before the chunk ahead of it (byte order is kept; jitter only stretches gaps);
 * - bandwidth: a token bucket (`bandwidth` bytes/s, burst of 50 ms worth, at least 16 KiB) meters
 *   the bytes written to the destination; chunks are split as the tokens allow;
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
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';

export type Direction = 'a-to-b' | 'b-to-a';
export type DirectionArg = Direction | 'both';
export const DIRECTIONS: readonly Direction[] = ['a-to-b', 'b-to-a'];

export interface DirectionSettings {
  /** Fixed one-way delay, ms (>= 0). */
  latencyMs: number;
  /** Extra random delay, uniform in 0..jitterMs, ms (>= 0). */
  jitterMs: number;
  /** Bytes per second; 0: unlimited. */
  bandwidth: number;
}

export interface RouteConfig {
  /** Route name, e.g. `to-b`. */
  name: string;
  listen: { host: string; port: number };
  target: { host: string; port: number };
  /** Direction of the bytes from the dialer to the target. */
  forward: Direction;
}

export interface LinkEmulatorOptions {
  name: string;
  /** Names of the two ends (default `a` and `b`). */
  a?: string;
  b?: string;
  routes: RouteConfig[];
  /** Initial settings per direction. */
  settings?: Partial<Record<Direction, Partial<DirectionSettings>>>;
  /** Queue bound per connection and direction, bytes (default 1 MiB). */
  queueBytes?: number;
  /** A connection held by a cut this long is reset (default 15000 ms; 0: never). */
  cutResetMs?: number;
  /** Initially cut directions. */
  cut?: DirectionArg | 'none';
  /** Timeout to connect to a target, ms (default 10000). */
  connectTimeoutMs?: number;
}

export interface LinkEvent {
  seq: number;
  time: string;
  link: string;
  type: string;
  [k: string]: unknown;
}

export interface ConnectionStatus {
  id: number;
  route: string;
  from: string;
  state: 'connecting' | 'held' | 'open' | 'closing';
  openedAt: string;
  bytes: Record<Direction, number>;
  queued: Record<Direction, number>;
}

export interface LinkStatus {
  link: string;
  a: string;
  b: string;
  state: 'up' | 'cut' | 'partially-cut' | 'stalled' | 'stopped';
  settings: Record<Direction, DirectionSettings>;
  cut: Record<Direction, boolean>;
  cutSince: string | null;
  stalledUntil: Record<Direction, string | null>;
  queueBytes: number;
  cutResetMs: number;
  routes: { name: string; listen: { host: string; port: number }; target: { host: string; port: number }; forward: Direction }[];
  connections: ConnectionStatus[];
  totals: { connections: number; resets: number; bytes: Record<Direction, number> };
  bytes: Record<Direction, number>;
  queued: Record<Direction, number>;
  lastEventSeq: number;
}

export class LinkError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'LinkError';
  }
}

const other = (d: Direction): Direction => (d === 'a-to-b' ? 'b-to-a' : 'a-to-b');
const dirs = (d: DirectionArg): Direction[] => (d === 'both' ? [...DIRECTIONS] : [d]);

/** Validates a direction argument. */
export function checkDirection(v: unknown): DirectionArg {
  if (v === 'a-to-b' || v === 'b-to-a' || v === 'both') return v;
  throw new LinkError('invalid-argument', `direction must be a-to-b, b-to-a or both, not ${JSON.stringify(v)}`);
}

/** Largest latency, jitter or stall accepted. */
const MAX_DELAY_MS = 3_600_000;

function checkMs(v: unknown, what: string, max = MAX_DELAY_MS): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) {
    throw new LinkError('invalid-argument', `${what} must be a number of milliseconds, 0-${max}, not ${JSON.stringify(v)}`);
  }
  return v;
}

function checkRate(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new LinkError('invalid-argument', `bandwidth must be an integer number of bytes per second (0: unlimited), not ${JSON.stringify(v)}`);
  }
  return v;
}

/** Checks a partial settings object; throws LinkError (nothing is changed by the caller). */
export function checkSettings(s: unknown): Partial<DirectionSettings> {
  if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new LinkError('invalid-argument', 'settings must be an object');
  const o = s as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['latencyMs', 'jitterMs', 'bandwidth'].includes(k)) throw new LinkError('invalid-argument', `unknown setting ${JSON.stringify(k)} (latencyMs, jitterMs, bandwidth)`);
  }
  const out: Partial<DirectionSettings> = {};
  if (o.latencyMs !== undefined) out.latencyMs = checkMs(o.latencyMs, 'latency');
  if (o.jitterMs !== undefined) out.jitterMs = checkMs(o.jitterMs, 'jitter');
  if (o.bandwidth !== undefined) out.bandwidth = checkRate(o.bandwidth);
  return out;
}

interface Chunk {
  buf: Buffer;
  due: number;
}

/** One direction of one connection: source → queue → destination. */
class Pipe {
  queue: Chunk[] = [];
  queued = 0;
  bytes = 0;
  lastDue = 0;
  tokens = 0;
  tokenTime = performance.now();
  timer: NodeJS.Timeout | undefined;
  waitingDrain = false;
  srcEnded = false;
  destEnded = false;
  paused = false;

  constructor(
    readonly conn: Conn,
    readonly dir: Direction,
  ) {}

  get src(): Socket {
    return this.dir === this.conn.forward ? this.conn.client : this.conn.target!;
  }
  get dest(): Socket | undefined {
    return this.dir === this.conn.forward ? this.conn.target : this.conn.client;
  }

  push(buf: Buffer): void {
    const emu = this.conn.emu;
    const s = emu.settingsOf(this.dir);
    // performance.now(): sub-millisecond, so a 1 ms latency is not rounded up twice
    const now = performance.now();
    const due = Math.max(now + s.latencyMs + (s.jitterMs > 0 ? Math.random() * s.jitterMs : 0), this.lastDue);
    this.lastDue = due;
    this.queue.push({ buf, due });
    this.queued += buf.length;
    this.flowControl();
    this.pump();
  }

  /** Pauses the source over the bound, resumes it below half. */
  flowControl(): void {
    const bound = this.conn.emu.queueBytes;
    const src = this.dir === this.conn.forward ? this.conn.client : this.conn.target;
    if (!src) return;
    if (!this.paused && this.queued >= bound) {
      this.paused = true;
      src.pause();
    } else if (this.paused && this.queued <= bound / 2) {
      this.paused = false;
      src.resume();
    }
  }

  clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  schedule(ms: number): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.max(1, Math.floor(ms))); // timers fire late, never early: floor, then re-check
  }

  pump(): void {
    const conn = this.conn;
    const emu = conn.emu;
    if (conn.closed || this.waitingDrain) return;
    const dest = this.dest;
    if (!dest || conn.state !== 'open') return;
    if (emu.isCut(this.dir)) return; // restore calls pump
    const stallLeft = emu.stallLeft(this.dir);
    if (stallLeft > 0) return this.schedule(stallLeft);
    const s = emu.settingsOf(this.dir);
    for (let i = 0; i < 10_000 && this.queue.length; i++) {
      const head = this.queue[0]!;
      const now = performance.now();
      if (head.due > now) return this.schedule(head.due - now);
      let n = head.buf.length;
      if (s.bandwidth > 0) {
        const burst = Math.max(16384, s.bandwidth * 0.05);
        this.tokens = Math.min(burst, this.tokens + ((now - this.tokenTime) * s.bandwidth) / 1000);
        this.tokenTime = now;
        if (this.tokens < 1) return this.schedule(((Math.min(n, burst) - this.tokens) * 1000) / s.bandwidth);
        n = Math.min(n, Math.floor(this.tokens));
        this.tokens -= n;
      }
      const piece = n === head.buf.length ? head.buf : head.buf.subarray(0, n);
      if (n === head.buf.length) this.queue.shift();
      else head.buf = head.buf.subarray(n);
      this.queued -= n;
      this.bytes += n;
      emu.countBytes(this.dir, n);
      this.flowControl();
      const ok = dest.write(piece);
      if (!ok) {
        this.waitingDrain = true;
        dest.once('drain', () => {
          this.waitingDrain = false;
          this.pump();
        });
        return;
      }
    }
    if (this.queue.length) return this.schedule(0);
    if (this.srcEnded && !this.destEnded) {
      this.destEnded = true;
      dest.end();
      conn.maybeDone();
    }
  }
}

class Conn {
  target: Socket | undefined;
  state: 'connecting' | 'held' | 'open' | 'closing' = 'held';
  closed = false;
  readonly pipes: Record<Direction, Pipe>;
  readonly openedAt = new Date();
  heldSince: number | undefined;

  constructor(
    readonly emu: LinkEmulator,
    readonly id: number,
    readonly route: RouteConfig,
    readonly client: Socket,
  ) {
    this.pipes = { 'a-to-b': new Pipe(this, 'a-to-b'), 'b-to-a': new Pipe(this, 'b-to-a') };
    const up = this.pipes[this.forward];
    client.on('data', (d: Buffer) => up.push(d));
    client.on('end', () => {
      up.srcEnded = true;
      up.pump();
      this.maybeDone();
    });
    // Handled by 'close' (hadError: the other side is reset); the listener keeps it from being thrown.
    client.on('error', () => undefined);
    client.on('close', (hadError) => this.onSocketClose(client, hadError));
  }

  get forward(): Direction {
    return this.route.forward;
  }

  from(): string {
    return `${this.client.remoteAddress}:${this.client.remotePort}`;
  }

  /** Dials the target (unless a cut holds the connection). */
  dial(): void {
    if (this.closed || this.target) return;
    if (this.emu.anyCut()) {
      this.state = 'held';
      this.heldSince ??= Date.now();
      return;
    }
    this.state = 'connecting';
    const t = connect({ host: this.route.target.host, port: this.route.target.port, allowHalfOpen: true });
    this.target = t;
    t.setNoDelay(true);
    const timer = setTimeout(() => t.destroy(new Error('connect timeout')), this.emu.connectTimeoutMs);
    const down = this.pipes[other(this.forward)];
    t.on('connect', () => {
      clearTimeout(timer);
      if (this.closed) return;
      this.state = 'open';
      this.heldSince = undefined;
      this.emu.emitEvent('connection.opened', { id: this.id, route: this.route.name, from: this.from() });
      this.pipes[this.forward].pump();
      down.pump();
    });
    t.on('data', (d: Buffer) => down.push(d));
    t.on('end', () => {
      down.srcEnded = true;
      down.pump();
      this.maybeDone();
    });
    t.on('error', (e: Error) => {
      clearTimeout(timer);
      if (this.state === 'connecting') this.emu.emitEvent('connection.failed', { id: this.id, route: this.route.name, error: e.message });
    });
    t.on('close', (hadError) => {
      clearTimeout(timer);
      this.onSocketClose(t, hadError);
    });
  }

  /** A socket closed: abruptly (error, RST) resets the other side; an orderly close waits for the other pipe. */
  onSocketClose(s: Socket, hadError: boolean): void {
    if (this.closed) return;
    const pipeFromS = s === this.client ? this.pipes[this.forward] : this.pipes[other(this.forward)];
    if (hadError || !pipeFromS.srcEnded) this.destroy('reset-by-peer', true);
    else this.maybeDone();
  }

  maybeDone(): void {
    if (this.closed) return;
    const a = this.pipes['a-to-b'];
    const b = this.pipes['b-to-a'];
    const clientGone = this.client.destroyed;
    const targetGone = !this.target || this.target.destroyed;
    if ((a.destEnded && b.destEnded) || (clientGone && targetGone)) this.destroy('closed', false);
  }

  destroy(reason: string, rst: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.state = 'closing';
    for (const p of Object.values(this.pipes)) {
      p.clearTimer();
      p.queue = [];
      p.queued = 0;
    }
    for (const s of [this.client, this.target]) {
      if (!s || s.destroyed) continue;
      if (rst && typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
      else if (rst) s.destroy();
      else s.end(() => s.destroy());
    }
    this.emu.connClosed(this, reason);
  }

  status(): ConnectionStatus {
    return {
      id: this.id,
      route: this.route.name,
      from: this.from(),
      state: this.state,
      openedAt: this.openedAt.toISOString(),
      bytes: { 'a-to-b': this.pipes['a-to-b'].bytes, 'b-to-a': this.pipes['b-to-a'].bytes },
      queued: { 'a-to-b': this.pipes['a-to-b'].queued, 'b-to-a': this.pipes['b-to-a'].queued },
    };
  }
}

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
  private readonly totals = { connections: 0, resets: 0, bytes: { 'a-to-b': 0, 'b-to-a': 0 } as Record<Direction, number> };
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
    const def: DirectionSettings = { latencyMs: 0, jitterMs: 0, bandwidth: 0 };
    this.settings = {
      'a-to-b': { ...def, ...checkSettings(opts.settings?.['a-to-b'] ?? {}) },
      'b-to-a': { ...def, ...checkSettings(opts.settings?.['b-to-a'] ?? {}) },
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

  /** Changes latency, jitter and/or bandwidth of one or both directions. */
  set(settings: Partial<DirectionSettings>, direction: DirectionArg = 'both'): LinkEvent {
    const s = checkSettings(settings);
    const ds = dirs(checkDirection(direction));
    if (Object.keys(s).length === 0) throw new LinkError('invalid-argument', 'nothing to set: give latencyMs, jitterMs or bandwidth');
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
      totals: { connections: this.totals.connections, resets: this.totals.resets, bytes: { ...this.totals.bytes } },
      bytes: sum((c) => c.bytes),
      queued: sum((c) => c.queued),
      lastEventSeq: this.seq,
    };
  }
}
