// The dashboard's arithmetic (src/dashboard/rates.ts, prom.ts): Prometheus text read by a
// parser, counters turned into rates across SPs and resets, histogram buckets into quantiles,
// group and resync gauges picked from the primary's scrape.
import { describe, expect, it } from 'vitest';
import { counterIncrease, histogramQuantile, metricsPoint, parsePromText, type Scrape } from '../../src/dashboard/index.js';

const BOUNDS = ['0.0001', '0.001', '0.01', '0.1', '+Inf'];

/** A scrape of one LUN written through SP A and SP B: `ops` per SP and cumulative bucket counts per SP. */
function scrape(timeMs: number, perSp: Record<string, { ops: number; buckets: number[] }>, extra = ''): Scrape {
  const lines = ['# HELP sanbox_lun_ops_total host requests', '# TYPE sanbox_lun_ops_total counter'];
  for (const [sp, v] of Object.entries(perSp)) {
    lines.push(`sanbox_lun_ops_total{array="alpha",sp="${sp}",lun="disk0",op="write"} ${v.ops}`);
    lines.push(`sanbox_lun_ops_total{array="alpha",sp="${sp}",lun="disk0",op="read"} 999`);
    BOUNDS.forEach((le, i) => lines.push(`sanbox_lun_latency_seconds_bucket{array="alpha",sp="${sp}",lun="disk0",op="write",le="${le}"} ${v.buckets[i]}`));
  }
  return { timeMs, samples: parsePromText(lines.join('\n') + '\n' + extra) };
}

describe('parsePromText', () => {
  it('reads names, labels with escapes, values, and skips comments', () => {
    const s = parsePromText('# HELP x y\nx_total{a="1",b="q\\"uote,d"} 42\ny +Inf\nz{} 1.5e3 1700000000\n');
    expect(s).toEqual([
      { name: 'x_total', labels: { a: '1', b: 'q"uote,d' }, value: 42 },
      { name: 'y', labels: {}, value: Infinity },
      { name: 'z', labels: {}, value: 1500 },
    ]);
  });
  it('refuses a malformed line, naming it', () => {
    expect(() => parsePromText('ok 1\nbad{a="1" 2\n')).toThrow(/line 2/);
    expect(() => parsePromText('novalue\n')).toThrow(/no value/);
  });
});

describe('counterIncrease and histogramQuantile', () => {
  it('a reset counter counts from zero', () => {
    expect(counterIncrease(10, 15)).toBe(5);
    expect(counterIncrease(10, 3)).toBe(3);
    expect(counterIncrease(undefined, 3)).toBe(0);
  });
  it('interpolates inside the bucket that holds the rank, as histogram_quantile does', () => {
    const b = [
      { le: 0.001, count: 0 },
      { le: 0.002, count: 100 },
      { le: Infinity, count: 100 },
    ];
    expect(histogramQuantile(0.5, b)).toBeCloseTo(0.0015, 9);
    expect(histogramQuantile(0.99, b)).toBeCloseTo(0.00199, 9);
    expect(histogramQuantile(0.5, [{ le: Infinity, count: 0 }])).toBeNull();
    // the rank in +Inf: the highest finite bound
    expect(histogramQuantile(0.99, [{ le: 0.01, count: 1 }, { le: Infinity, count: 100 }])).toBe(0.01);
  });
});

describe('metricsPoint', () => {
  it('write IOPS and p50/p99 over the interval, summed over the SPs', () => {
    const a = scrape(0, { A: { ops: 100, buckets: [0, 100, 100, 100, 100] }, B: { ops: 0, buckets: [0, 0, 0, 0, 0] } });
    // 2 s later: 200 more writes on A, all 0.1-1 ms; 100 on B, 1-10 ms
    const b = scrape(2000, { A: { ops: 300, buckets: [0, 300, 300, 300, 300] }, B: { ops: 100, buckets: [0, 0, 100, 100, 100] } });
    const p = metricsPoint(a, b);
    expect(p.luns).toHaveLength(1);
    const l = p.luns[0]!;
    expect(l).toMatchObject({ array: 'alpha', lun: 'disk0' });
    expect(l.writeIops).toBe(150);
    // 300 writes: 200 in (0.1, 1] ms, 100 in (1, 10] ms; the median is in the first
    expect(l.p50Ms!).toBeCloseTo(0.1 + 0.9 * (150 / 200), 6);
    expect(l.p99Ms!).toBeCloseTo(1 + 9 * (97 / 100), 6);
  });
  it('an SP whose process restarted (counters reset) adds its new counts, never a negative rate', () => {
    const a = scrape(0, { A: { ops: 1000, buckets: [0, 1000, 1000, 1000, 1000] } });
    const b = scrape(1000, { A: { ops: 10, buckets: [0, 10, 10, 10, 10] } });
    const l = metricsPoint(a, b).luns[0]!;
    expect(l.writeIops).toBe(10);
    expect(l.p50Ms).not.toBeNull();
  });
  it('no write in the interval: IOPS 0 and no latency point; no previous scrape: no LUN point', () => {
    const a = scrape(0, { A: { ops: 5, buckets: [0, 5, 5, 5, 5] } });
    const b = scrape(1000, { A: { ops: 5, buckets: [0, 5, 5, 5, 5] } });
    expect(metricsPoint(a, b).luns[0]).toMatchObject({ writeIops: 0, p50Ms: null, p99Ms: null });
    expect(metricsPoint(undefined, b).luns).toEqual([]);
  });
  it("groups from the primary's scrape only, resyncs with done and goal", () => {
    const extra = [
      'sanbox_group_local_primary{array="alpha",group="g0"} 1',
      'sanbox_group_backlog_entries{array="alpha",group="g0"} 12',
      'sanbox_group_backlog_bytes{array="alpha",group="g0"} 49152',
      'sanbox_group_writelog_used_ratio{array="alpha",group="g0"} 0.25',
      'sanbox_group_oldest_entry_age_seconds{array="alpha",group="g0"} 1.5',
      'sanbox_group_local_primary{array="alpha",group="g9"} 0',
      'sanbox_mirror_resync_done_bytes{array="alpha",mirror="m0",image="bravo:0"} 1048576',
      'sanbox_mirror_resync_goal_bytes{array="alpha",mirror="m0",image="bravo:0"} 4194304',
      'sanbox_mirror_resync_rate_bytes_per_second{array="alpha",mirror="m0",image="bravo:0"} 65536',
    ].join('\n');
    const p = metricsPoint(undefined, scrape(0, {}, extra));
    expect(p.groups).toEqual([{ array: 'alpha', group: 'g0', backlogEntries: 12, backlogBytes: 49152, writelogPercent: 25, lagSeconds: 1.5 }]);
    expect(p.resyncs).toEqual([{ array: 'alpha', mirror: 'm0', image: 'bravo:0', doneBytes: 1048576, goalBytes: 4194304, rateBytesPerSecond: 65536 }]);
  });
});
