/**
 * The adaptive resync controller's window (a mirror's `syncController: adaptive`): how many resync
 * bytes may be on the wire to one secondary, so that host writes to it are not held behind resync
 * data, while the resync uses what the host leaves of the link. Pure: tests drive it sample by
 * sample; ./resync-gate.ts applies it to the copy and feeds it the host's latency.
 *
 * Host writes and resync data share one connection: a TCP stream is first in, first out, so a host
 * write waits behind every resync byte queued ahead of it (in the socket, at the link's bottleneck,
 * at the secondary). A fixed window (the `fixed` controller: WINDOW[priority] MiB) on a 40 MB/s
 * link holds each host write ~50 ms. Two loops keep it short:
 *
 * - the queue (LEDBAT, RFC 6817): delay = RTT - base RTT (the least RTT of the last BASE_BUCKETS
 *   seconds: what the path costs with an empty queue), the current RTT the least of the last
 *   CURRENT_SAMPLES (one late reply is noise). Below the target the window grows by up to one
 *   piece per round trip (only while the copy fills it), above it shrinks in proportion, and at
 *   HALVE_AT times the target it halves (at most once per round trip). The target is TARGET_SHARE
 *   of the base RTT, at least TARGET_MIN_MS (while the host is idle: the base RTT, at least
 *   IDLE_TARGET_MIN_MS): above what a busy machine or a link emulator's timers
 *   add to an empty path (up to a millisecond), which read as a queue would keep the window far
 *   below what the link holds. Until the first delay at the target the window doubles per round
 *   trip (slow start), so a long fat link fills fast;
 * - the host (`hostVerdict`): the gate compares the host's remote-write p90 while the resync runs
 *   with its p90 while nothing of the resync is on the wire (measured in short pauses); above
 *   HOST_SLACK times it the window shrinks by HOST_BACKOFF, at most once per GUARD_MS. This catches
 *   what the RTT of the resync's own pieces does not show: the disks and CPUs both sides share.
 *
 * The sync rate stays the cap (./throttle.ts).
 */

/** The least target queueing delay (ms): below it, the clock's and the event loop's noise. */
export const TARGET_MIN_MS = 1;
/**
 * While the host writes nothing (the gate says idle) the target is the base RTT, at least this:
 * the copy keeps the link busy through the secondary's and its own pauses, and the first host
 * write finds about that much and one piece ahead of it (from then on the host's target applies).
 */
export const IDLE_TARGET_MIN_MS = 20;
/** Target queueing delay as a share of the base RTT. */
export const TARGET_SHARE = 0.5;
/** The host's remote-write p90 during the resync may be this many times its p90 without it. */
export const HOST_SLACK = 1.15;
/** The window's share kept when the host's latency is above HOST_SLACK. */
export const HOST_BACKOFF = 0.7;
/** The host's latency is compared at most this often. */
export const GUARD_MS = 200;
/** The base RTT is the least of this many one-second buckets (a path that got slower is learned in that time). */
export const BASE_BUCKETS = 10;

/** Samples the current delay is the least of (LEDBAT's current-delay filter: one late reply is noise). */
export const CURRENT_SAMPLES = 8;
/** A delay this many times the target halves the window (a queue far beyond the target: back off now). */
const HALVE_AT = 4;
/**
 * The resync's unit on the wire while the host writes: a region (the default 64 KiB). Of one size,
 * so that their round trips compare (a piece's own time on the link is in its RTT: 1.6 ms at
 * 40 MB/s); a host write waits behind at most one more than the queue.
 */
export const PIECE_BYTES = 64 * 1024;
/**
 * While the host is idle a piece may be up to a quarter of the window, at most this (a resync
 * chunk): each request costs the secondary a frame, a protection save and a write, and at 64 KiB
 * those, not the link, were the limit (bench:mirror, 100 MB/s: 59-67% of the cap). A quarter keeps
 * four pieces on the wire (with two, the link idles while the secondary writes one) and a piece's
 * own time on the link a quarter of what the window covers: the first host write after an idle
 * spell waits about the idle target and one piece.
 */
export const IDLE_PIECE_MAX_BYTES = 1024 * 1024;
/** The window never shrinks below this many pieces (two: one crossing while the next is sent). */
const MIN_PIECES = 2;

export interface WindowState {
  windowBytes: number;
  readonly maxBytes: number;
  /** doubling per round trip until the first delay at the target (or a host verdict over) */
  slowStart: boolean;
  /** the least RTT of each of the last BASE_BUCKETS one-second buckets, newest last (ms) */
  baseBuckets: number[];
  bucketStartMs: number;
  /** the last CURRENT_SAMPLES RTTs (ms) */
  recent: number[];
  baseRttMs: number;
  queueDelayMs: number;
  targetMs: number;
  /** when the window was last halved (ms) */
  lastHalvedMs: number;
  /** the host's latency was above its slack at the last comparison */
  hostLimited: boolean;
  lastBackoffMs: number;
}

export function initialWindow(maxBytes: number, nowMs: number): WindowState {
  if (!(maxBytes >= MIN_PIECES * PIECE_BYTES)) throw new RangeError(`window max ${maxBytes} below ${MIN_PIECES} pieces`);
  return {
    windowBytes: 4 * PIECE_BYTES,
    maxBytes,
    slowStart: true,
    baseBuckets: [],
    bucketStartMs: nowMs,
    recent: [],
    baseRttMs: Infinity,
    queueDelayMs: 0,
    targetMs: TARGET_MIN_MS,
    lastHalvedMs: -Infinity,
    hostLimited: false,
    lastBackoffMs: -Infinity,
  };
}

/**
 * One piece of `bytes` answered `rttMs` after it was sent, at `nowMs`: the next state. The
 * arrays of `prev` pass to the result (an ack is thousands a second: nothing is copied), so only
 * the returned state may be used afterwards. `onWireBytes`: what was on the wire with it (itself
 * included); the window grows only when it was the limit (within one piece of this size, or two
 * regions, of it), as TCP's congestion window does (RFC 7661): a copy held up elsewhere (the
 * disk, the sync rate) would otherwise see no delay and grow a window it never fills, and one
 * burst would then fill it.
 */
export function afterAck(prev: WindowState, sample: { rttMs: number; bytes: number; nowMs: number; onWireBytes?: number; hostIdle?: boolean }): WindowState {
  const { rttMs, bytes, nowMs } = sample;
  if (!(rttMs >= 0) || !(bytes > 0)) throw new RangeError(`bad resync sample: rtt ${rttMs} ms, ${bytes} bytes`);
  const s: WindowState = { ...prev };
  s.recent.push(rttMs);
  if (s.recent.length > CURRENT_SAMPLES) s.recent.shift();
  let current = Infinity;
  for (const x of s.recent) if (x < current) current = x;
  // base RTT: the least of the last BASE_BUCKETS one-second buckets (LEDBAT's: a standing queue
  // never becomes the base; what noise costs is covered by the target's floor)
  if (s.baseBuckets.length === 0 || nowMs - s.bucketStartMs >= 1000) {
    s.baseBuckets.push(rttMs);
    if (s.baseBuckets.length > BASE_BUCKETS) s.baseBuckets.shift();
    s.bucketStartMs = nowMs;
  } else if (rttMs < s.baseBuckets[s.baseBuckets.length - 1]!) s.baseBuckets[s.baseBuckets.length - 1] = rttMs;
  s.baseRttMs = Math.min(...s.baseBuckets);
  s.queueDelayMs = Math.max(0, current - s.baseRttMs);
  s.targetMs = sample.hostIdle ? Math.max(IDLE_TARGET_MIN_MS, s.baseRttMs) : Math.max(TARGET_MIN_MS, TARGET_SHARE * s.baseRttMs);
  const floor = MIN_PIECES * PIECE_BYTES;
  // grow only a window the copy fills (on the wire, it is within one piece of this size, or two
  // regions: pieces are whole regions, so four of a quarter of the window can stay just under
  // it), and never while the host's latency says it is too much
  const grows = !s.hostLimited && (sample.onWireBytes === undefined || sample.onWireBytes + Math.max(bytes, 2 * PIECE_BYTES) >= s.windowBytes);
  if (s.slowStart && s.queueDelayMs < s.targetMs) {
    if (grows) s.windowBytes += bytes;
  } else if (s.queueDelayMs >= HALVE_AT * s.targetMs) {
    s.slowStart = false;
    if (nowMs - s.lastHalvedMs >= s.baseRttMs) {
      s.windowBytes /= 2;
      s.lastHalvedMs = nowMs;
    }
  } else {
    s.slowStart = false;
    // LEDBAT: up to one piece per window's worth of acks, in proportion to the distance from the target
    const offTarget = (s.targetMs - s.queueDelayMs) / s.targetMs;
    if (grows || offTarget < 0) s.windowBytes += (offTarget * bytes * PIECE_BYTES) / s.windowBytes;
  }
  s.windowBytes = Math.min(s.maxBytes, Math.max(floor, s.windowBytes));
  return s;
}

/**
 * The host's remote-write latency compared with its latency without the resync (`over`: above
 * HOST_SLACK times it): over, the window shrinks by HOST_BACKOFF (at most once per GUARD_MS) and
 * slow start ends.
 */
export function hostVerdict(prev: WindowState, v: { over: boolean; nowMs: number }): WindowState {
  if (!v.over) return prev.hostLimited ? { ...prev, hostLimited: false } : prev;
  const s: WindowState = { ...prev, hostLimited: true, slowStart: false };
  if (v.nowMs - s.lastBackoffMs >= GUARD_MS) {
    s.windowBytes = Math.max(MIN_PIECES * PIECE_BYTES, s.windowBytes * HOST_BACKOFF);
    s.lastBackoffMs = v.nowMs;
  }
  return s;
}

/** The size of the next piece: PIECE_BYTES while the host writes; while it is idle, a multiple of it up to a quarter of the window. */
export function pieceBytesFor(s: WindowState, hostIdle: boolean): number {
  if (!hostIdle) return PIECE_BYTES;
  return Math.min(IDLE_PIECE_MAX_BYTES, Math.max(PIECE_BYTES, Math.floor(s.windowBytes / 4 / PIECE_BYTES) * PIECE_BYTES));
}

/** The p-th quantile (0..1) of `xs` (sorted in place). */
export function quantile(xs: number[] | Float64Array, p: number): number {
  if (xs.length === 0) throw new RangeError('quantile of nothing');
  xs.sort((a, b) => a - b);
  return xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
}

/** The state as status shows it. */
export interface WindowView {
  windowBytes: number;
  baseRttMs: number | null;
  queueDelayMs: number;
  targetMs: number;
  slowStart: boolean;
}

export function viewOf(s: WindowState): WindowView {
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { windowBytes: Math.round(s.windowBytes), baseRttMs: Number.isFinite(s.baseRttMs) ? r(s.baseRttMs) : null, queueDelayMs: r(s.queueDelayMs), targetMs: r(s.targetMs), slowStart: s.slowStart };
}
