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
