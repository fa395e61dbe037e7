// The `--progress-json` lines of `sanbox check ledger|prefix write` (docs/check.md, OPTIONS), as
// the CLI tests read them from the child's stderr, and the checks every such run must pass.
import { expect } from 'vitest';

export interface ProgressLine {
  progress: 'ledger' | 'prefix';
  t: number;
  issued: number;
  acked: number;
  failed?: number;
  unknown?: number;
  window: { acks: number; p50Ms: number | null; p99Ms: number | null; maxMs: number | null };
}

/** Every stderr line that is a JSON object with a `progress` field, in order. */
export function progressLines(stderr: string): ProgressLine[] {
  const out: ProgressLine[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    const j = JSON.parse(line);
    if (j && typeof j === 'object' && 'progress' in j) out.push(j as ProgressLine);
  }
  return out;
}

const has3Decimals = (x: number) => Math.abs(x * 1000 - Math.round(x * 1000)) < 1e-6;

/** Shape and arithmetic: exact keys, totals that only grow, windows that add up to the report's acks. */
export function expectProgress(lines: ProgressLine[], kind: 'ledger' | 'prefix', report: Record<string, number>): void {
  const third = kind === 'ledger' ? 'failed' : 'unknown';
  expect(lines.length).toBeGreaterThanOrEqual(1);
  let prev: ProgressLine | null = null;
  for (const l of lines) {
    expect(Object.keys(l)).toEqual(['progress', 't', 'issued', 'acked', third, 'window']);
    expect(l.progress).toBe(kind);
    expect(Object.keys(l.window)).toEqual(['acks', 'p50Ms', 'p99Ms', 'maxMs']);
    const { acks, p50Ms, p99Ms, maxMs } = l.window;
    if (acks === 0) expect([p50Ms, p99Ms, maxMs]).toEqual([null, null, null]);
    else {
      expect(0 <= p50Ms! && p50Ms! <= p99Ms! && p99Ms! <= maxMs!, JSON.stringify(l)).toBe(true);
      for (const x of [p50Ms!, p99Ms!, maxMs!]) expect(has3Decimals(x), String(x)).toBe(true);
    }
    if (prev) {
      expect(l.t).toBeGreaterThanOrEqual(prev.t);
      expect(l.acked - prev.acked).toBe(acks); // the window is exactly the acks since the last line
    } else expect(l.acked).toBe(acks);
    prev = l;
  }
  const last = lines.at(-1)!;
  expect({ issued: last.issued, acked: last.acked, [third]: last[third] }).toEqual({ issued: report.issued, acked: report.acked, [third]: report[third] });
  expect(lines.reduce((n, l) => n + l.window.acks, 0)).toBe(report.acked);
}
