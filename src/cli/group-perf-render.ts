/**
 * What `sanbox group perf` shows of a group's performance records: a table (one row a record)
 * and the chart's panels (src/plot). The record's fields: src/replication/group/types.ts
 * GroupMetrics.
 */
import type { GroupMetrics, GroupPerfRecords } from '../replication/group/index.js';
import { fmtValue, utcStamp, type TimeChartSpec, type TimePoint } from '../plot/index.js';
import { table } from './common.js';

/** A record further from its predecessor than this many intervals: records are missing there. */
const GAP_INTERVALS = 3;

const timeOf = (m: GroupMetrics) => Date.parse(m.time);
const num = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : '-');

/** `since 2026-12-03 05:31:20 UTC` or `` */
export function sinceWords(r: GroupPerfRecords): string {
  return r.since ? ` since ${utcStamp(Date.parse(r.since))}` : '';
}

/** The records as an aligned table, under a line saying how many and how often. */
export function perfTable(r: GroupPerfRecords, array?: string): string {
  const where = array ? ` on ${array}` : '';
  const every = `every ${fmtValue(r.perfEveryMs / 1000)} s`;
  if (!r.records.length) return `no performance records of group ${r.group}${where}${sinceWords(r)} (one is written ${every})`;
  const rows = r.records.map((m) => [
    Number.isFinite(timeOf(m)) ? utcStamp(timeOf(m)).replace(/ UTC$/, '') : String(m.time),
    num(m.netkbps, 1),
    num(m.dataKbps, 1),
    num(m.entriesPerSec, 1),
    String(m.entriesWaiting),
    num(m.pctwl, 2),
    num(m.oldestEntryAgeMs / 1000, 2),
  ]);
  const head = `group ${r.group}${where}: ${r.records.length} performance record${r.records.length === 1 ? '' : 's'} (${every})${sinceWords(r)}`;
  return `${head}\n${table(['TIME (UTC)', 'KB/S SENT', 'DATA KB/S', 'ENTRIES/S', 'BACKLOG', 'WRITELOG %', 'LAG S'], rows)}`;
}

/** The chart of the records: sent KB/s (total, data), entries/s, backlog, writelog percent, lag. */
export function perfChart(r: GroupPerfRecords, array?: string): TimeChartSpec {
  const series = (name: string, value: (m: GroupMetrics) => number) => ({
    name,
    points: r.records.map((m): TimePoint => ({ tMs: timeOf(m), value: Number.isFinite(value(m)) ? value(m) : null })),
  });
  const where = array ? `array ${array}, ` : '';
  return {
    title: `group ${r.group}: performance records`,
    subtitle: `${where}${r.records.length} record${r.records.length === 1 ? '' : 's'}, one every ${fmtValue(r.perfEveryMs / 1000)} s${sinceWords(r)}; lines break where records are missing`,
    gapMs: GAP_INTERVALS * r.perfEveryMs,
    emptyMessage: `no performance records of group ${r.group}${sinceWords(r)} (one is written every ${fmtValue(r.perfEveryMs / 1000)} s)`,
    panels: [
      { title: 'sent to the secondaries', unit: 'KB/s', series: [series('total (records and protocol)', (m) => m.netkbps), series('record data', (m) => m.dataKbps)] },
      { title: 'entries sent', unit: 'entries/s', series: [series('entries/s', (m) => m.entriesPerSec)] },
      { title: 'backlog: entries not yet acknowledged', unit: 'entries', series: [series('backlog', (m) => m.entriesWaiting)] },
      { title: 'writelog in use', unit: '%', series: [series('writelog', (m) => m.pctwl)] },
      { title: 'lag: age of the oldest entry', unit: 's', series: [series('lag', (m) => m.oldestEntryAgeMs / 1000)] },
    ],
  };
}
