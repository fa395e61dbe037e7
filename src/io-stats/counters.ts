/**
 * The I/O counters of one LUN in one process: per op type (read, write, flush, trim, zero) the
 * requests answered, the bytes moved, the errors and a latency histogram. They are plain numbers
 * in typed arrays, bumped on every request without allocating, and read only when something asks
 * (a /metrics scrape, an SP's `io-stats` command): the write path never touches prom-client.
 */

/** The op types counted, in the order of every per-op array below. */
export const IO_STAT_OPS = ['read', 'write', 'flush', 'trim', 'zero'] as const;
export type IoStatOp = (typeof IO_STAT_OPS)[number];
export const OP_READ = 0;
export const OP_WRITE = 1;
export const OP_FLUSH = 2;
export const OP_TRIM = 3;
export const OP_ZERO = 4;
const OPS = IO_STAT_OPS.length;

/**
 * Upper bounds of the latency buckets, seconds (the `+Inf` bucket is implicit): from 25 µs (a
 * page-cached write on this machine) to 10 s (a remote write that waits for its time-out).
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
const BUCKETS = LATENCY_BUCKETS_SECONDS.length + 1;

/** One LUN's counters as plain data (what crosses the chassis↔SP IPC as JSON). */
export interface IoStatsSnapshot {
  lun: number;
  /** The LUN's name (the `lun` label). */
  name: string;
  /** Per op (IO_STAT_OPS order): requests answered, successes and failures alike. */
  ops: number[];
  /** Per op: bytes of the requests that succeeded (flush: 0). */
  bytes: number[];
  /** Per op: requests that failed. */
  errors: number[];
  /** Per op: non-cumulative counts per bucket (LATENCY_BUCKETS_SECONDS, then +Inf). */
  latencyBuckets: number[][];
  /** Per op: the sum of the latencies, seconds. */
  latencySumSeconds: number[];
}

/**
 * One process's counters, as collected for a scrape: a single-process array has one (no `sp`);
 * a two-SP array one per SP. `luns` null: the SP is not serving or did not answer (`problem`).
 */
export interface ProcessIoStats {
  sp?: string;
  luns: IoStatsSnapshot[] | null;
  problem?: string;
}

export class IoStats {
  private readonly ops = new Float64Array(OPS);
  private readonly bytes = new Float64Array(OPS);
  private readonly errors = new Float64Array(OPS);
  /** op * BUCKETS + bucket: non-cumulative counts (made cumulative only when rendered). */
  private readonly buckets = new Float64Array(OPS * BUCKETS);
  private readonly sumSeconds = new Float64Array(OPS);

  constructor(
    readonly lun: number,
    public name: string,
  ) {}

  /** A request of type `op` answered successfully after `ms` milliseconds, having moved `bytes`. */
  done(op: number, bytes: number, ms: number): void {
    this.ops[op]! += 1;
    this.bytes[op]! += bytes;
    this.observe(op, ms);
  }

  /** A request of type `op` failed after `ms` milliseconds. */
  failed(op: number, ms: number): void {
    this.ops[op]! += 1;
    this.errors[op]! += 1;
    this.observe(op, ms);
  }

  private observe(op: number, ms: number): void {
    const s = ms / 1000;
    this.sumSeconds[op]! += s;
    // A linear scan of 18 bounds beats a binary search at this size and allocates nothing.
    let b = 0;
    const bounds = LATENCY_BUCKETS_SECONDS;
    while (b < bounds.length && s > bounds[b]!) b++;
    this.buckets[op * BUCKETS + b]! += 1;
  }

  snapshot(): IoStatsSnapshot {
    const latencyBuckets: number[][] = [];
    for (let op = 0; op < OPS; op++) latencyBuckets.push(Array.from(this.buckets.subarray(op * BUCKETS, (op + 1) * BUCKETS)));
    return {
      lun: this.lun,
      name: this.name,
      ops: Array.from(this.ops),
      bytes: Array.from(this.bytes),
      errors: Array.from(this.errors),
      latencyBuckets,
      latencySumSeconds: Array.from(this.sumSeconds),
    };
  }
}

/**
 * Every LUN's counters in one process, by LUN id. A LUN's counters outlive the stacks built over
 * it (a stack is rebuilt when the LUN grows or its layers change), and go when the LUN does.
 */
export class IoStatsTable {
  private readonly byLun = new Map<number, IoStats>();

  /** The LUN's counters, created at its first use; `name` follows a renamed LUN. */
  for(lun: number, name: string): IoStats {
    let s = this.byLun.get(lun);
    if (!s) this.byLun.set(lun, (s = new IoStats(lun, name)));
    s.name = name;
    return s;
  }

  remove(lun: number): void {
    this.byLun.delete(lun);
  }

  snapshot(): IoStatsSnapshot[] {
    return [...this.byLun.values()].sort((a, b) => a.lun - b.lun).map((s) => s.snapshot());
  }
}
