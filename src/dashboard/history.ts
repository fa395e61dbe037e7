/**
 * The metrics history the dashboard's charts read: every `everyMs` it scrapes each running
 * array's `GET /metrics`, turns the last two scrapes into one point (./rates.ts) and keeps the
 * points of the last `keepMs`. It scrapes only while a page watches (a request for the series
 * in the last `idleMs`): an open dashboard costs the arrays a scrape a second, a closed one
 * nothing.
 */
import { arrayUp, callUpstream, type DashboardLab } from './lab.js';
import { parsePromText } from './prom.js';
import { metricsPoint, type MetricsPoint, type Scrape } from './rates.js';

export interface HistoryOptions {
  everyMs?: number;
  keepMs?: number;
  idleMs?: number;
}

export class MetricsHistory {
  private readonly everyMs: number;
  private readonly keepMs: number;
  private readonly idleMs: number;
  private readonly last = new Map<string, Scrape>();
  private readonly points: MetricsPoint[] = [];
  private timer: NodeJS.Timeout | undefined;
  private watchedAt = 0;
  private busy = false;

  constructor(
    private readonly lab: () => DashboardLab,
    opts: HistoryOptions = {},
  ) {
    this.everyMs = opts.everyMs ?? 1000;
    this.keepMs = opts.keepMs ?? 5 * 60_000;
    this.idleMs = opts.idleMs ?? 60_000;
  }

  /** The points after `sinceMs`; (re)starts the scraping. */
  since(sinceMs: number): { everyMs: number; points: MetricsPoint[] } {
    this.watchedAt = Date.now();
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), this.everyMs);
      void this.tick();
    }
    return { everyMs: this.everyMs, points: this.points.filter((p) => p.timeMs > sinceMs) };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (Date.now() - this.watchedAt > this.idleMs) {
      // Nobody looks: stop, and forget the last scrapes (a rate over the gap would mislead).
      this.stop();
      this.last.clear();
      return;
    }
    if (this.busy) return; // a slow array: skip a beat rather than pile up scrapes
    this.busy = true;
    try {
      const lab = this.lab();
      const merged: MetricsPoint = { timeMs: Date.now(), luns: [], groups: [], resyncs: [] };
      await Promise.all(
        lab.arrays.filter(arrayUp).map(async (a) => {
          try {
            const ans = await callUpstream(a.api, 'GET', '/metrics');
            if (ans.status !== 200) return;
            const cur: Scrape = { timeMs: Date.now(), samples: parsePromText(ans.body) };
            const p = metricsPoint(this.last.get(a.name), cur);
            this.last.set(a.name, cur);
            merged.luns.push(...p.luns);
            merged.groups.push(...p.groups);
            merged.resyncs.push(...p.resyncs);
          } catch {
            this.last.delete(a.name); // down: its next rate starts afresh
          }
        }),
      );
      this.points.push(merged);
      while (this.points.length && this.points[0]!.timeMs < merged.timeMs - this.keepMs) this.points.shift();
    } finally {
      this.busy = false;
    }
  }
}
