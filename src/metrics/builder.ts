/**
 * One scrape's worth of metrics, built with prom-client from values read at scrape time: each
 * scrape gets a fresh Registry, and every metric is filled from the views the services already
 * keep (counters, status snapshots), so nothing on the I/O path ever calls prom-client.
 *
 * Counters are given as their current totals (a fresh prom-client Counter `inc`ed once by the
 * total). A histogram is given as its bucket counts and sum: prom-client's Histogram only takes
 * single observations, so `PresetHistogram` hands the finished buckets to the registry through
 * the same `get()` interface every prom-client metric has, and prom-client writes the text.
 */
import { Counter, Gauge, Registry, type Metric } from 'prom-client';

export type Labels = Record<string, string>;

/** The text exposition format, as prom-client's registry names it. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

interface HistogramValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

class PresetHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly values: HistogramValue[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {}

  /** `counts`: non-cumulative, one per bound and one for +Inf; `sum`: of the observations. */
  add(labels: Labels, counts: readonly number[], sum: number): void {
    assertLabels(this.name, this.labelNames, labels);
    if (counts.length !== this.bounds.length + 1) throw new Error(`${this.name}: ${counts.length} bucket counts for ${this.bounds.length} bounds + Inf`);
    let cumulative = 0;
    for (let i = 0; i < counts.length; i++) {
      const c = counts[i]!;
      if (!(c >= 0)) throw new Error(`${this.name}: bucket count ${c} is not a count`);
      cumulative += c;
      const le = i < this.bounds.length ? String(this.bounds[i]) : '+Inf';
      this.values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: cumulative });
    }
    this.values.push({ metricName: `${this.name}_sum`, labels: { ...labels }, value: sum });
    this.values.push({ metricName: `${this.name}_count`, labels: { ...labels }, value: cumulative });
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: HistogramValue[] } {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values };
  }
}

function assertLabels(name: string, want: readonly string[], got: Labels): void {
  const keys = Object.keys(got);
  if (keys.length !== want.length || !want.every((k) => typeof got[k] === 'string')) {
    throw new Error(`${name}: labels ${JSON.stringify(got)} are not exactly ${want.join(', ')}`);
  }
}

export class MetricsBuilder {
  private readonly registry = new Registry();

  /** A gauge: `set(labels, value)` for each series. */
  gauge(name: string, help: string, labelNames: readonly string[]): (labels: Labels, value: number) => void {
    const g = new Gauge({ name, help, labelNames: [...labelNames], registers: [this.registry] });
    return (labels, value) => {
      assertLabels(name, labelNames, labels);
      if (!Number.isFinite(value)) throw new Error(`${name}: ${value} is not a finite value`);
      g.set(labels, value);
    };
  }

  /** A counter given as its current total per series. */
  counter(name: string, help: string, labelNames: readonly string[]): (labels: Labels, total: number) => void {
    if (!name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
    const c = new Counter({ name, help, labelNames: [...labelNames], registers: [this.registry] });
    return (labels, total) => {
      assertLabels(name, labelNames, labels);
      c.inc(labels, total);
    };
  }

  /** A histogram given as finished buckets: `add(labels, nonCumulativeCounts, sum)` per series. */
  histogram(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]): (labels: Labels, counts: readonly number[], sum: number) => void {
    const h = new PresetHistogram(name, help, labelNames, bounds);
    this.registry.registerMetric(h as unknown as Metric);
    return (labels, counts, sum) => h.add(labels, counts, sum);
  }

  /** A state set: one series per state, 1 for `current` and 0 for the others. */
  stateSet(name: string, help: string, labelNames: readonly string[], states: readonly string[]): (labels: Labels, current: string) => void {
    const set = this.gauge(name, help, [...labelNames, 'state']);
    return (labels, current) => {
      if (!states.includes(current)) throw new Error(`${name}: state ${JSON.stringify(current)} is not one of ${states.join(', ')}`);
      for (const s of states) set({ ...labels, state: s }, s === current ? 1 : 0);
    };
  }

  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
