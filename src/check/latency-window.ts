/**
 * Host write latency (issue to reply, ms) as the workloads report it: the quantile rule of the
 * ledger's final report, and a window of the samples since the last look, which `sanbox check
 * ... write --progress-json` prints once a second. Shared by the ledger writer and the prefix
 * workload so both say the same thing the same way.
 */

export interface LatencyQuantiles {
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** The acknowledged writes of one window and their latencies, ms rounded to 3 decimals (null: no ack). */
export interface LatencyWindowSummary {
  acks: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
}

/** p50, p99 and max of `samples`, which it sorts in place (callers pass an array they own). */
export function latencyQuantiles(samples: number[]): LatencyQuantiles {
  samples.sort((a, b) => a - b);
  const n = samples.length;
  // Lower nearest rank: the same rule the ledger's report has always used.
  const q = (p: number) => (n ? samples[Math.min(n - 1, Math.floor(p * n))]! : null);
  return { p50: q(0.5), p99: q(0.99), max: n ? samples[n - 1]! : null };
}

const ms3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);

/**
 * Latency samples since the last take(). add() is a plain push of a number, so the write path
 * pays nothing more; sorting happens once per take(), off the write path.
 */
export class LatencyWindow {
  private samples: number[] = [];

  add(ms: number): void {
    this.samples.push(ms);
  }

  /** The window since the previous call, and a fresh empty one started. */
  take(): LatencyWindowSummary {
    const s = this.samples;
    this.samples = [];
    const q = latencyQuantiles(s);
    return { acks: s.length, p50Ms: ms3(q.p50), p99Ms: ms3(q.p99), maxMs: ms3(q.max) };
  }
}
