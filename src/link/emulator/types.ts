/** The link emulator's vocabulary: directions, settings, routes, events, status, and their checks. */

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
  /**
   * Loss-like stalls: the share of chunks, in percent (0-100), that are delayed by one `rtoMs`
   * more, as a lost TCP segment costs a retransmission timeout (the bytes behind it wait too).
   */
  lossPercent: number;
  /** The retransmission timeout a loss costs, ms (default 200, Linux's minimum RTO). */
  rtoMs: number;
}

/** What a direction does before anything is set. */
export const DEFAULT_SETTINGS: Readonly<DirectionSettings> = { latencyMs: 0, jitterMs: 0, bandwidth: 0, lossPercent: 0, rtoMs: 200 };
export const SETTING_NAMES: readonly (keyof DirectionSettings)[] = ['latencyMs', 'jitterMs', 'bandwidth', 'lossPercent', 'rtoMs'];

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
  /** Seed of the jitter and loss draws (src/random), so a run can be repeated; default: Math.random. */
  seed?: number;
  /**
   * How long before a due time the delay queue stops sleeping and polls the clock, ms
   * (./wakeups.ts): 0 (the default) timers only, no polling CPU, delays up to ~1.3 ms late;
   * POLL_MS (a lab's `precise: true`) delays to a few µs, at up to a core while the link is busy.
   */
  pollMs?: number;
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
  /** `losses`: chunks delayed by a loss-like stall (one RTO) since the emulator started. */
  totals: { connections: number; resets: number; bytes: Record<Direction, number>; losses: Record<Direction, number> };
  /** What precise delays cost (./wakeups.ts): the clock-polling time is CPU time. */
  delayQueue: DelayQueueStats;
  bytes: Record<Direction, number>;
  queued: Record<Direction, number>;
  lastEventSeq: number;
}

export interface DelayQueueStats {
  /** Wake-ups delivered (a connection's direction called back at its due time). */
  wakeups: number;
  /** Wall time spent polling the clock for the last fraction of a wait, ms (it never sleeps: CPU time). */
  pollMs: number;
  /** Timers armed for the bulk of waits. */
  timers: number;
  /** Wake-ups later than their due time by more than 0.1 ms (the machine was busy). */
  late: number;
  /** How late the wake-ups were, summed, ms (over `wakeups`: the mean). */
  lateMs: number;
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

export const other = (d: Direction): Direction => (d === 'a-to-b' ? 'b-to-a' : 'a-to-b');
export const dirs = (d: DirectionArg): Direction[] => (d === 'both' ? [...DIRECTIONS] : [d]);

/** Validates a direction argument. */
export function checkDirection(v: unknown): DirectionArg {
  if (v === 'a-to-b' || v === 'b-to-a' || v === 'both') return v;
  throw new LinkError('invalid-argument', `direction must be a-to-b, b-to-a or both, not ${JSON.stringify(v)}`);
}

/** Largest latency, jitter or stall accepted. */
export const MAX_DELAY_MS = 3_600_000;

export function checkMs(v: unknown, what: string, max = MAX_DELAY_MS): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) {
    throw new LinkError('invalid-argument', `${what} must be a number of milliseconds, 0-${max}, not ${JSON.stringify(v)}`);
  }
  return v;
}

export function checkRate(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new LinkError('invalid-argument', `bandwidth must be an integer number of bytes per second (0: unlimited), not ${JSON.stringify(v)}`);
  }
  return v;
}

export function checkPercent(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 100) {
    throw new LinkError('invalid-argument', `${what} must be a percentage, 0-100, not ${JSON.stringify(v)}`);
  }
  return v;
}

/** Checks a partial settings object; throws LinkError (nothing is changed by the caller). */
export function checkSettings(s: unknown): Partial<DirectionSettings> {
  if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new LinkError('invalid-argument', 'settings must be an object');
  const o = s as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(SETTING_NAMES as readonly string[]).includes(k)) throw new LinkError('invalid-argument', `unknown setting ${JSON.stringify(k)} (${SETTING_NAMES.join(', ')})`);
  }
  const out: Partial<DirectionSettings> = {};
  if (o.latencyMs !== undefined) out.latencyMs = checkMs(o.latencyMs, 'latency');
  if (o.jitterMs !== undefined) out.jitterMs = checkMs(o.jitterMs, 'jitter');
  if (o.bandwidth !== undefined) out.bandwidth = checkRate(o.bandwidth);
  if (o.lossPercent !== undefined) out.lossPercent = checkPercent(o.lossPercent, 'lossPercent');
  if (o.rtoMs !== undefined) out.rtoMs = checkMs(o.rtoMs, 'rto');
  return out;
}
