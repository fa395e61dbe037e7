/**
 * From two successive scrapes of an array's `GET /metrics` to what the dashboard plots: per LUN
 * write IOPS and p50/p99 write latency over the interval between them (the counters' and
 * histogram buckets' increase, as Prometheus's rate() and histogram_quantile() compute them),
 * and the gauges of groups (backlog, writelog use, lag) and running resyncs as of the second one.
 * Pure: no clock, no I/O, so the arithmetic is tested on its own.
 */
import type { PromSample } from './prom.js';

export interface Scrape {
  timeMs: number;
  samples: PromSample[];
}

export interface LunStats {
  array: string;
  lun: string;
  writeIops: number;
  /** null: no write finished in the interval */
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface GroupStats {
  array: string;
  group: string;
  backlogEntries: number;
  backlogBytes: number;
  writelogPercent: number;
  lagSeconds: number;
}

export interface ResyncStats {
  array: string;
  mirror: string;
  image: string;
  doneBytes: number;
  goalBytes: number;
  rateBytesPerSecond: number;
}

export interface MetricsPoint {
  timeMs: number;
  luns: LunStats[];
  groups: GroupStats[];
  resyncs: ResyncStats[];
}

/**
 * A counter's increase. A counter that went down was reset (a crashed SP's process starts from
 * zero): the increase is then its whole current value, as Prometheus assumes.
 */
export function counterIncrease(prev: number | undefined, cur: number): number {
  if (prev === undefined) return 0;
  return cur >= prev ? cur - prev : cur;
}

/**
 * The q-quantile of a histogram given as cumulative bucket counts (upper bound `le`, the last
 * +Inf), interpolated linearly inside the bucket that holds it, as histogram_quantile() does.
 * null when the histogram is empty; the highest finite bound when the rank falls in +Inf.
 */
export function histogramQuantile(q: number, buckets: { le: number; count: number }[]): number | null {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const total = sorted.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of sorted) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket <= 0 ? b.le : prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/** The identity of a series without the labels named (so SPs and buckets can be summed). */
function key(labels: Record<string, string>, without: string[]): string {
  return Object.keys(labels)
    .filter((k) => !without.includes(k))
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

function byName(s: Scrape, name: string): PromSample[] {
  return s.samples.filter((x) => x.name === name);
}

/** The increase of every series of `name` (by full label set) between the two scrapes. */
function increases(prev: Scrape, cur: Scrape, name: string): { labels: Record<string, string>; inc: number }[] {
  const before = new Map(byName(prev, name).map((x) => [key(x.labels, []), x.value]));
  // A series absent before (an SP that came back, a new LUN) counts from zero: it is new.
  return byName(cur, name).map((x) => ({ labels: x.labels, inc: counterIncrease(before.get(key(x.labels, [])) ?? 0, x.value) }));
}

/** The point between `prev` and `cur`: rates over their interval, gauges as of `cur`. */
export function metricsPoint(prev: Scrape | undefined, cur: Scrape): MetricsPoint {
  const point: MetricsPoint = { timeMs: cur.timeMs, luns: [], groups: [], resyncs: [] };
  const seconds = prev ? (cur.timeMs - prev.timeMs) / 1000 : 0;
  if (prev && seconds > 0) {
    // Write ops summed over the SPs that answered them.
    const ops = new Map<string, { array: string; lun: string; n: number }>();
    for (const { labels, inc } of increases(prev, cur, 'sanbox_lun_ops_total')) {
      if (labels.op !== 'write') continue;
      const k = `${labels.array}/${labels.lun}`;
      const e = ops.get(k) ?? { array: labels.array ?? '', lun: labels.lun ?? '', n: 0 };
      e.n += inc;
      ops.set(k, e);
    }
    const buckets = new Map<string, Map<number, number>>();
    for (const { labels, inc } of increases(prev, cur, 'sanbox_lun_latency_seconds_bucket')) {
      if (labels.op !== 'write') continue;
      const k = `${labels.array}/${labels.lun}`;
      const m = buckets.get(k) ?? new Map<number, number>();
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
      m.set(le, (m.get(le) ?? 0) + inc);
      buckets.set(k, m);
    }
    for (const [k, e] of ops) {
      const b = [...(buckets.get(k) ?? new Map<number, number>())].map(([le, count]) => ({ le, count }));
      const ms = (q: number) => {
        const v = histogramQuantile(q, b);
        return v === null ? null : v * 1000;
      };
      point.luns.push({ array: e.array, lun: e.lun, writeIops: e.n / seconds, p50Ms: ms(0.5), p99Ms: ms(0.99) });
    }
  }
  const gauge = (name: string, labels: Record<string, string>) => byName(cur, name).find((x) => key(x.labels, []) === key(labels, []))?.value ?? 0;
  for (const p of byName(cur, 'sanbox_group_local_primary')) {
    if (p.value !== 1) continue; // the secondary's view has no backlog of its own
    const l = p.labels;
    point.groups.push({
      array: l.array ?? '',
      group: l.group ?? '',
      backlogEntries: gauge('sanbox_group_backlog_entries', l),
      backlogBytes: gauge('sanbox_group_backlog_bytes', l),
      writelogPercent: gauge('sanbox_group_writelog_used_ratio', l) * 100,
      lagSeconds: gauge('sanbox_group_oldest_entry_age_seconds', l),
    });
  }
  for (const g of byName(cur, 'sanbox_mirror_resync_goal_bytes')) {
    const l = g.labels;
    point.resyncs.push({
      array: l.array ?? '',
      mirror: l.mirror ?? '',
      image: l.image ?? '',
      doneBytes: gauge('sanbox_mirror_resync_done_bytes', l),
      goalBytes: g.value,
      rateBytesPerSecond: gauge('sanbox_mirror_resync_rate_bytes_per_second', l),
    });
  }
  return point;
}
