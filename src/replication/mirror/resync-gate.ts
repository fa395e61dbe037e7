/**
 * The adaptive resync controller at work (./resync-window.ts is its pure window): admits resync
 * pieces while the bytes on the wire fit the window, and watches the host's remote writes to the
 * same secondary.
 *
 * What "the host's latency without the resync" is, is measured, not assumed: while the host
 * writes, the gate pauses the resync now and then (at its start, then every PROBE_EVERY_MS): no new
 * piece until the ones on the wire are answered, then PROBE_MS (up to PROBE_MAX_MS, until
 * PROBE_MIN_SAMPLES host writes) with nothing of the resync on the wire; the p90 of the host's
 * writes in that quiet time is the baseline. Every GUARD_MS the p90 of the host's writes since the
 * last comparison is held against it (hostVerdict). A pause costs the resync about its length:
 * ~1% of the time at these settings. An idle host (no write in HOST_IDLE_MS) is neither probed nor
 * guarded: the queue loop alone keeps the link's queue short for its first writes. A host faster
 * with the resync than its baseline by the slack is probed again REPROBE_AFTER_MS later.
 *
 * The probe's phases: off -> draining (no new pieces) -> quiet (nothing on the wire) -> off.
 */
import { afterAck, hostVerdict, initialWindow, pieceBytesFor, quantile, viewOf, GUARD_MS, HOST_SLACK, type WindowState, type WindowView } from './resync-window.js';

export const PROBE_EVERY_MS = 10_000;
/**
 * A host that beats its baseline by the slack while the resync runs shows the baseline was
 * measured at a bad moment (the host's own first writes, disks still busy with what the resync
 * wrote): the next probe comes this long after that comparison, not PROBE_EVERY_MS after the last.
 */
export const REPROBE_AFTER_MS = 1000;
export const PROBE_MS = 50;
export const PROBE_MAX_MS = 250;
export const PROBE_MIN_SAMPLES = 8;
/** No host write to this secondary for this long: the host is idle. */
export const HOST_IDLE_MS = 1000;
/** Host writes compared per guard interval at least (fewer: no verdict yet). */
const GUARD_MIN_SAMPLES = 5;

export type ProbePhase = 'off' | 'draining' | 'quiet';

/** The probe's transitions: anything absent is illegal. */
const PROBE: Record<ProbePhase, Partial<Record<'start' | 'drained' | 'done', ProbePhase>>> = {
  off: { start: 'draining' },
  draining: { drained: 'quiet' },
  quiet: { done: 'off' },
};

export function probeNext(from: ProbePhase, event: 'start' | 'drained' | 'done'): ProbePhase {
  const to = PROBE[from][event];
  if (!to) throw new Error(`resync probe: ${event} in phase ${from}`);
  return to;
}

export interface GateView {
  /** the size of the next piece: one region while the host writes, larger while it is idle */
  pieceBytes: number;
  /** the host's remote-write p90 with nothing of the resync on the wire (ms), null: not measured yet */
  hostBaselineMs: number | null;
  /** the host's remote-write p90 at the last comparison (ms) */
  hostP90Ms: number | null;
  hostLimited: boolean;
  probes: number;
  probe: ProbePhase;
}

export class ResyncGate {
  state: WindowState;
  private onWire = 0;
  private readonly waiting: Array<() => void> = [];
  private probe: ProbePhase = 'off';
  private probes = 0;
  private quietSince = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private readonly probeSamples: number[] = [];
  private readonly guardSamples: number[] = [];
  private guardAt = performance.now();
  private lastHostAt = -Infinity;
  private baselineMs: number | null = null;
  private baselineAt = -Infinity;
  private lastP90Ms: number | null = null;
  private closed = false;

  constructor(maxBytes: number) {
    this.state = initialWindow(maxBytes, performance.now());
  }

  /** The window and the host guard, as status and events show them. */
  view(): WindowView & GateView {
    return { ...viewOf(this.state), pieceBytes: this.pieceBytes(), hostBaselineMs: this.baselineMs, hostP90Ms: this.lastP90Ms, hostLimited: this.state.hostLimited, probes: this.probes, probe: this.probe };
  }

  /**
   * A host write's remote half to this secondary took `ms` (the data path, while this resync runs).
   * It counts for the time it was sent in: a write sent before the quiet time queued behind resync
   * pieces, one sent before the last comparison belongs to that one.
   */
  hostSample(ms: number): void {
    const now = performance.now();
    const sentAt = now - ms;
    this.lastHostAt = now;
    if (this.probe === 'quiet' && sentAt >= this.quietSince) this.probeSamples.push(ms);
    else if (this.probe === 'off' && sentAt >= this.guardAt) this.guardSamples.push(ms);
    this.check(now);
  }

  /** How many bytes the next piece carries (larger while the host is idle: ./resync-window.ts). */
  pieceBytes(): number {
    return pieceBytesFor(this.state, this.hostIdle(performance.now()));
  }

  private hostIdle(now: number): boolean {
    return now - this.lastHostAt > HOST_IDLE_MS;
  }

  /** Sends one piece through the window: waits for room (false: stopped meanwhile), sends, learns from its RTT. */
  async send(bytes: number, stopped: () => boolean, send: () => Promise<unknown>): Promise<boolean> {
    while (this.probe !== 'off' || (this.onWire > 0 && this.onWire + bytes > this.state.windowBytes)) {
      await new Promise<void>((r) => this.waiting.push(r));
      if (stopped() || this.closed) return false;
    }
    this.onWire += bytes;
    const t0 = performance.now();
    try {
      await send();
      const now = performance.now();
      this.state = afterAck(this.state, { rttMs: now - t0, bytes, nowMs: now, onWireBytes: this.onWire, hostIdle: this.hostIdle(now) });
      this.check(now);
    } finally {
      this.onWire -= bytes;
      if (this.onWire === 0 && (this.probe as ProbePhase) === 'draining') this.beginQuiet();
      this.wake();
    }
    return true;
  }

  /** The run ended: waiters return, no probe is pending. */
  close(): void {
    this.closed = true;
    clearTimeout(this.probeTimer);
    this.probe = 'off';
    this.wake();
  }

  private wake(): void {
    // everyone rechecks the room (a grown window may take several)
    for (const w of this.waiting.splice(0)) w();
  }

  /** Starts a probe when due, and compares the host's latency every GUARD_MS. */
  private check(now: number): void {
    if (this.probe !== 'off' || this.closed) return;
    if (!this.hostIdle(now) && now - this.baselineAt >= PROBE_EVERY_MS) {
      this.probe = probeNext(this.probe, 'start');
      this.probes++;
      if (this.onWire === 0) this.beginQuiet();
      return;
    }
    if (now - this.guardAt < GUARD_MS) return;
    this.guardAt = now;
    const n = this.guardSamples.length;
    if (n >= GUARD_MIN_SAMPLES && this.baselineMs !== null) {
      this.lastP90Ms = quantile(this.guardSamples, 0.9);
      if (HOST_SLACK * this.lastP90Ms < this.baselineMs) this.baselineAt = Math.min(this.baselineAt, now + REPROBE_AFTER_MS - PROBE_EVERY_MS);
      this.state = hostVerdict(this.state, { over: this.lastP90Ms > HOST_SLACK * this.baselineMs, nowMs: now });
    }
    this.guardSamples.length = 0;
  }

  private beginQuiet(): void {
    this.probe = probeNext(this.probe, 'drained');
    this.quietSince = performance.now();
    this.probeSamples.length = 0;
    this.armProbeTimer(PROBE_MS);
  }

  private armProbeTimer(ms: number): void {
    this.probeTimer = setTimeout(() => this.probeTick(), ms);
    this.probeTimer.unref();
  }

  /** The quiet time ends with enough host writes seen, or at PROBE_MAX_MS with what there is. */
  private probeTick(): void {
    if (this.closed || this.probe !== 'quiet') return;
    const now = performance.now();
    const n = this.probeSamples.length;
    if (n < PROBE_MIN_SAMPLES && now - this.quietSince < PROBE_MAX_MS) return this.armProbeTimer(PROBE_MS);
    if (n >= 3) this.baselineMs = quantile(this.probeSamples, 0.9);
    this.baselineAt = now;
    this.guardSamples.length = 0;
    this.guardAt = now;
    this.probe = probeNext(this.probe, 'done');
    this.wake();
  }
}
