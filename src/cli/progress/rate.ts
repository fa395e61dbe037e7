/**
 * The rate of a progress over a sliding window: what moved in the last few seconds, not since
 * the start, so that a copy that speeds up, slows down or stalls shows it within the window. The
 * caller gives the times (an injected clock): the window is a pure function of its samples.
 */

/** Default length of the window. */
export const RATE_WINDOW_MS = 5000;
/** Below this span the rate is unknown: two samples a few ms apart say nothing. */
const MIN_SPAN_MS = 200;

interface Sample {
  tMs: number;
  done: number;
}

export class RateWindow {
  private samples: Sample[] = [];

  constructor(private readonly windowMs = RATE_WINDOW_MS) {
    if (!(windowMs > 0)) throw new RangeError(`rate window must be > 0 ms, not ${windowMs}`);
  }

  /** A reading at `tMs`. Times never go back; `done` may (a total that was recounted). */
  add(tMs: number, done: number): void {
    const last = this.samples.at(-1);
    if (last && tMs < last.tMs) throw new RangeError(`rate sample at ${tMs} ms is before the last one at ${last.tMs} ms`);
    this.samples.push({ tMs, done });
    this.trim(tMs);
  }

  /**
   * Units per second from the window's oldest sample (the last one at or before the window's
   * start, so that sparse samples still have a base) to the newest, measured up to `nowMs`: a
   * progress that stopped moving decays towards 0. Undefined with no sample or under MIN_SPAN_MS.
   */
  rate(nowMs: number): number | undefined {
    this.trim(nowMs);
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last) return undefined;
    const spanMs = nowMs - first.tMs;
    if (spanMs < MIN_SPAN_MS) return undefined;
    return Math.max(0, last.done - first.done) / (spanMs / 1000);
  }

  /** Drops samples older than the window, keeping the newest of them as the base. */
  private trim(nowMs: number): void {
    const start = nowMs - this.windowMs;
    let base = 0;
    while (base + 1 < this.samples.length && this.samples[base + 1]!.tMs <= start) base++;
    if (base > 0) this.samples = this.samples.slice(base);
  }
}
