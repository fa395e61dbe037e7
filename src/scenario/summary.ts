/** The summary of `--runs K`: passes, the failed seeds with their rerun commands, RPO and RTO distributions. */
import type { ScenarioReport } from './report/types.js';

export interface Distribution {
  n: number;
  min: number;
  p50: number;
  p90: number;
  max: number;
  mean: number;
}

export interface RunsSummary {
  scenario: string;
  runs: number;
  passed: number;
  failed: { seed: number; failure: string; rerun: string; report: string }[];
  rpoSeconds: Distribution | null;
  rtoSeconds: Distribution | null;
  durationSeconds: Distribution | null;
}

export function distribution(xs: number[]): Distribution | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { n: s.length, min: r(s[0]), p50: r(at(0.5)), p90: r(at(0.9)), max: r(s[s.length - 1]), mean: r(s.reduce((a, b) => a + b, 0) / s.length) };
}

export function summarize(reports: ScenarioReport[]): RunsSummary {
  const nums = (f: (r: ScenarioReport) => number | null) => reports.map(f).filter((x): x is number => x !== null);
  return {
    scenario: reports[0]?.scenario ?? '',
    runs: reports.length,
    passed: reports.filter((r) => r.ok).length,
    failed: reports.filter((r) => !r.ok).map((r) => ({ seed: r.seed, failure: r.failure ?? '', rerun: r.rerun, report: `${r.runDir}/report.json` })),
    rpoSeconds: distribution(nums((r) => r.rpoSeconds)),
    rtoSeconds: distribution(nums((r) => r.rtoSeconds)),
    durationSeconds: distribution(reports.map((r) => r.durationMs / 1000)),
  };
}

const fmt = (d: Distribution | null, unit: string) => (d ? `min ${d.min} p50 ${d.p50} p90 ${d.p90} max ${d.max} ${unit} (n=${d.n})` : '-');

export function formatSummary(s: RunsSummary): string {
  const lines = [
    `scenario ${s.scenario}: ${s.passed} of ${s.runs} runs passed, ${s.failed.length} failed`,
    `  RPO      ${fmt(s.rpoSeconds, 's')}`,
    `  RTO      ${fmt(s.rtoSeconds, 's')}`,
    `  duration ${fmt(s.durationSeconds, 's')}`,
  ];
  for (const f of s.failed) lines.push(`  FAILED seed ${f.seed}: ${f.failure}`, `    rerun: ${f.rerun}`);
  return lines.join('\n');
}
