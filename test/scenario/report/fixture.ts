// A realistic scenario report (2 arrays, a link, a nemesis trace, events, backlog, a workload
// with a window without acks, checks one failing) and an empty one, for the report's tests.
import { REPORT_FORMAT, type ScenarioReport, type TraceFault, type WorkloadSample } from '../../../src/scenario/report/types.js';
import type { ScenarioSpec } from '../../../src/scenario/spec/types.js';

const spec: ScenarioSpec = {
  name: 'link-flap-async',
  description: 'Flap the link <script>alert("pwned")</script> & watch the backlog',
  file: '/work/scenarios/link-flap-async.yaml',
  labFile: '/work/lab/default.yaml',
  seed: 7,
  timeoutMs: 120_000,
  workloads: [{ kind: 'ledger', name: 'w1', startMs: 0, durationMs: null, array: 'alpha', lun: 'lun0', sps: null, blocks: 4096, connections: 2, depth: 8, blockSize: 4096, fua: 0.1 }],
  steps: [],
  nemesis: [],
  checks: [],
};

const trace: TraceFault[] = [
  {
    index: 0, nemesis: 'flapper', atMs: 3_000, durationMs: 1_200,
    inject: { kind: 'link-cut', link: 'alpha-bravo', direction: 'both', reset: false },
    undo: { kind: 'link-restore', link: 'alpha-bravo' },
    label: 'link alpha-bravo cut both for 1.20 s',
  },
  {
    index: 1, nemesis: 'flapper', atMs: 8_000, durationMs: 2_500,
    inject: { kind: 'sp-crash', array: 'alpha', sp: 'spa' },
    undo: { kind: 'sp-restart', array: 'alpha', sp: 'spa' },
    label: 'alpha spa crashed for 2.50 s',
  },
  {
    index: 2, nemesis: 'latency', atMs: 9_000, durationMs: 4_000,
    inject: { kind: 'link-set', link: 'alpha-bravo', direction: 'a-to-b', latencyMs: 40, jitterMs: null, bandwidth: null },
    undo: { kind: 'link-restore', link: 'alpha-bravo' },
    label: 'link alpha-bravo a-to-b latency 40 ms for 4.00 s <odd & "quoted">',
  },
];

function sample(tMs: number, windowAcks: number, p50: number | null, p99: number | null, acked: number): WorkloadSample {
  return { tMs, issued: acked + 8, acked, windowAcks, latencyP50Ms: p50, latencyP99Ms: p99, latencyMaxMs: p99 === null ? null : p99 * 1.5 };
}

export function makeReport(): ScenarioReport {
  const samples: WorkloadSample[] = [];
  let acked = 0;
  for (let t = 1000; t <= 15_000; t += 1000) {
    const stalled = t === 9000 || t === 10_000; // the SP crash stopped the host
    const n = stalled ? 0 : 900 + (t % 3000) / 10;
    acked += n;
    samples.push(sample(t, n, stalled ? null : 0.4 + t / 50_000, stalled ? null : t === 11_000 ? 85 : 2.1, acked));
  }
  return {
    format: REPORT_FORMAT,
    scenario: 'link-flap-async',
    seed: 7,
    lab: 'sanbox-lab-7-x1',
    runDir: '/tmp/sanbox-runs/link-flap-async-7',
    startedAt: '2024-05-01T10:00:00.000Z',
    startedAtMs: 1_714_557_600_000,
    durationMs: 16_000,
    ok: false,
    failure: 'check 2 (prefix w1 on bravo) failed: 3 acked writes missing & <lost>',
    rerun: 'sanbox scenario run scenarios/link-flap-async.yaml --seed 7',
    replay: "sanbox scenario run scenarios/link-flap-async.yaml --replay '/tmp/sanbox-runs/link-flap-async-7/report.json'",
    spec,
    trace,
    steps: [
      { source: 'step', index: 0, name: 'settle', kind: 'wait', label: 'wait mirror m1 in-sync', command: 'sanbox mirror wait m1 --state in-sync', plannedMs: null, startMs: 0, endMs: 1_500, ok: true },
      { source: 'nemesis', index: 0, phase: 'inject', name: null, kind: 'link-cut', label: trace[0]!.label, command: 'sanbox link cut alpha-bravo', plannedMs: 3_000, startMs: 3_002, endMs: 3_010, ok: true },
      { source: 'nemesis', index: 0, phase: 'undo', name: null, kind: 'link-restore', label: 'restore', command: 'sanbox link restore alpha-bravo', plannedMs: 4_200, startMs: 4_201, endMs: 4_205, ok: true },
      { source: 'nemesis', index: 1, phase: 'undo', name: null, kind: 'sp-restart', label: 'restart spa', command: 'sanbox sp restart alpha spa', plannedMs: 10_500, startMs: 10_500, endMs: 10_900, ok: false, error: { code: 'busy', message: 'SP <spa> is restarting' } },
      { source: 'step', index: 1, name: 'promote', kind: 'group-promote', label: 'promote g1 on bravo', command: 'sanbox group promote g1 --array bravo', plannedMs: 14_000, startMs: 14_000, endMs: 14_002, ok: false, error: { code: 'split-brain', message: 'refused' } },
    ],
    events: [
      { tMs: 500, source: 'lab', type: 'lab.started', data: {} },
      { tMs: 3_005, source: 'alpha-bravo', type: 'link.cut', data: { direction: 'both' } },
      { tMs: 3_400, source: 'alpha', type: 'mirror.fractured', data: { mirror: 'm1' } },
      { tMs: 4_204, source: 'alpha-bravo', type: 'link.restored', data: {} },
      { tMs: 5_000, source: 'alpha', type: 'group.metrics', data: { backlog: 12 } },
      { tMs: 8_001, source: 'alpha', type: 'sp.crashed', data: { sp: 'spa' } },
      { tMs: 8_010, source: 'alpha', type: 'lun.trespassed', data: { lun: 'lun0', to: 'spb' } },
      { tMs: 10_600, source: 'alpha', type: 'sp.restarted', data: { sp: 'spa' } },
      { tMs: 11_000, source: 'bravo', type: 'group.promoted', data: { group: 'g1', note: '</title><script>x</script>' } },
      { tMs: 12_000, source: 'bravo', type: 'connection.opened', data: {} },
    ],
    workloads: [
      {
        name: 'w1', kind: 'ledger', command: 'sanbox check ledger write --uri nbd://127.0.0.1:10809/lun0 --json',
        startMs: 0, endMs: 15_500, exitCode: 1, signal: null, report: null, samples,
        stderrTail: ['write failed: EIO <at block 7>', 'giving up'],
      },
      { name: 'idle', kind: 'command', command: 'sleep 1', startMs: 0, endMs: null, exitCode: null, signal: null, report: null, samples: [], stderrTail: [] },
    ],
    backlog: [
      {
        group: 'g1', array: 'alpha',
        samples: [0, 2, 4, 6, 8, 10, 12, 14].map((s) => ({ tMs: s * 1000, entries: s * 10, bytes: s === 4 ? 3 * 1024 * 1024 : s * 65_536 })),
      },
    ],
    checks: [
      { index: 0, kind: 'ledger', label: 'ledger w1 through alpha', ok: true, skipped: false, summary: 'every block holds its newest acked version' },
      { index: 1, kind: 'fs', label: 'fs alpha:lun0', ok: false, skipped: true, summary: 'no FUSE here' },
      { index: 2, kind: 'prefix', label: 'prefix w1 on bravo <lag>', ok: false, skipped: false, summary: '3 acked writes missing', rpoSeconds: 1.25 },
    ],
    rpoSeconds: 1.25,
    rtoSeconds: null,
  };
}

export function emptyReport(): ScenarioReport {
  return {
    ...makeReport(),
    ok: true,
    failure: null,
    durationMs: 0,
    trace: [],
    steps: [],
    events: [],
    workloads: [],
    backlog: [],
    checks: [],
    rpoSeconds: null,
    rtoSeconds: null,
  };
}
