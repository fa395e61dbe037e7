/**
 * One scenario run: a fresh lab in the run's directory, the workloads, the steps and the
 * nemesis's trace side by side, then the checks, the lab stopped, and the report. Every failure
 * names the seed and the command that reruns it.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadLab } from '../../cli/lab/index.js';
import { drawSchedule } from '../schedule/index.js';
import type { ScenarioSpec } from '../spec/types.js';
import { REPORT_FORMAT, type BacklogSample, type CheckRecord, type ScenarioReport, type StepRecord, type TraceFault } from '../report/types.js';
import type { LinkBaseline } from './actions.js';
import { LabApis } from './apis.js';
import { runCheck } from './checks.js';
import { EventCollector } from './events.js';
import { prepareLab, startLab, stopLab } from './lab.js';
import { Progress } from './progress.js';
import { runSteps, runTrace, type TimelineContext } from './timeline.js';
import { WorkloadSet, type RunningWorkload } from './workloads.js';

export interface RunOptions {
  seed: number;
  /** the run's directory: lab file, images, workload state files, report */
  runDir: string;
  /** a report's trace to replay instead of drawing one from the seed */
  trace?: TraceFault[];
  /** keep the image files after the run (default: removed, the report stays) */
  keepImages?: boolean;
  /** where progress goes (null: nowhere) */
  progressOut?: NodeJS.WriteStream | null;
  /** how the scenario file is named in the rerun commands */
  fileArg?: string;
  /** aborts the run (Ctrl-C): what runs is stopped, faults undone, the lab stopped, the report written */
  signal?: AbortSignal;
}

const BACKLOG_POLL_MS = 500;

/** Lab names are 1-64 of [A-Za-z0-9._-]; a run's is its scenario's and seed's. */
function labNameOf(spec: ScenarioSpec, seed: number): string {
  return `scn-${spec.name}`.slice(0, 50).replace(/[^A-Za-z0-9._-]/g, '-') + `-${seed}`;
}

export async function runScenario(spec: ScenarioSpec, opts: RunOptions): Promise<ScenarioReport> {
  const seed = opts.seed >>> 0;
  const trace = opts.trace ?? drawSchedule(spec, seed);
  mkdirSync(opts.runDir, { recursive: true });
  let startedAtMs = Date.now();
  const progress = new Progress(() => startedAtMs, opts.progressOut === undefined ? process.stderr : opts.progressOut);
  const fileArg = opts.fileArg ?? spec.file;
  const report: ScenarioReport = {
    format: REPORT_FORMAT,
    scenario: spec.name,
    seed,
    lab: labNameOf(spec, seed),
    runDir: opts.runDir,
    startedAt: new Date(startedAtMs).toISOString(),
    startedAtMs,
    durationMs: 0,
    ok: false,
    failure: null,
    rerun: `sanbox scenario run ${fileArg} --seed ${seed}`,
    replay: `sanbox scenario run ${fileArg} --replay ${opts.runDir}/report.json`,
    spec,
    trace,
    steps: [],
    events: [],
    workloads: [],
    backlog: [],
    checks: [],
    rpoSeconds: null,
    rtoSeconds: null,
  };
  const lab = await prepareLab(spec.labFile, opts.runDir, report.lab, dirname(spec.file));
  lab.env.SANBOX_SEED = String(seed);
  progress.line(`scenario ${spec.name}, seed ${seed}: starting lab ${lab.name} (${trace.length} faults scheduled)`);
  const state = await startLab(lab);
  try {
    const parsed = loadLab(lab.file);
    const apis = new LabApis(lab, state, new Map(parsed.arrays.map((a) => [a.name, a.luns.map((l) => l.name)])));
    startedAtMs = Date.now();
    report.startedAtMs = startedAtMs;
    report.startedAt = new Date(startedAtMs).toISOString();
    await execute(spec, seed, trace, apis, report, progress, opts.runDir, opts.signal);
  } catch (e) {
    report.failure ??= `the run stopped: ${(e as Error).message}`;
  } finally {
    // The scenario's own time: the lab's stop is not part of it.
    report.durationMs = Date.now() - report.startedAtMs;
    progress.end(report.failure === null ? 'done' : 'failed');
    progress.line(`stopping lab ${lab.name}`);
    await stopLab(lab).catch((e: Error) => (report.failure ??= `sanbox down failed: ${e.message}`));
    if (!opts.keepImages) rmSync(lab.imagesDir, { recursive: true, force: true });
  }
  report.ok = report.failure === null;
  return report;
}

async function execute(spec: ScenarioSpec, seed: number, trace: TraceFault[], apis: LabApis, report: ScenarioReport, progress: Progress, runDir: string, interrupt?: AbortSignal): Promise<void> {
  const t0 = report.startedAtMs;
  const baseline = await linkBaseline(apis);
  const events = new EventCollector(apis, t0);
  events.start();
  sayEvents(events, progress);
  const stopBacklog = pollBacklog(apis, report, t0);
  // Set by the scenario timeout, an interrupt or a failed step: the steps stop, the nemesis only
  // undoes, and whatever a step runs (a command, a wait) is stopped.
  const abort = new AbortController();
  const giveUp = (why: string) => {
    report.failure ??= why;
    progress.line(why);
    abort.abort();
  };
  const timeout = setTimeout(() => giveUp(`timed out after ${spec.timeoutMs / 1000} s (scenario timeout)`), spec.timeoutMs);
  const onInterrupt = () => giveUp(`interrupted (${String(interrupt?.reason ?? 'signal')})`);
  if (interrupt?.aborted) onInterrupt();
  interrupt?.addEventListener('abort', onInterrupt);
  const aborted = () => abort.signal.aborted;
  let stepFailed: StepRecord | null = null;
  const workloads = new WorkloadSet(spec, seed, apis, runDir, t0, report.workloads, progress, aborted);
  // Every step, every fault's inject and undo, every check: what the bar counts.
  progress.plan(`scenario ${spec.name}`, spec.steps.length + 2 * trace.length + spec.checks.length);
  progress.live(() => liveStatus(workloads.all(), report.steps, t0));
  const ctx: TimelineContext = {
    apis,
    baseline,
    startedAtMs: t0,
    progress,
    steps: report.steps,
    aborted,
    signal: abort.signal,
    eventsSeen: (type, source) => events.count(type, source),
    workloadDone: (name) => workloads.done(name),
    stopWorkload: (name) => workloads.stop(name),
    waitWorkload: (name, timeoutMs) => workloads.wait(name, timeoutMs),
  };
  try {
    const [, faultFailed] = await Promise.all([
      runSteps(spec.steps, ctx).then((f) => {
        if (f) {
          stepFailed = f;
          report.failure ??= failureOf(f);
          abort.abort();
        }
      }),
      runTrace(trace, ctx),
    ]);
    if (faultFailed) report.failure ??= failureOf(faultFailed);
    await workloads.finish(aborted());
    // After a timeout or an interrupt the checks would only wait on what hung: skipped.
    if (!aborted() || stepFailed) await runChecks(spec, ctx, workloads, events, report, progress);
  } finally {
    clearTimeout(timeout);
    interrupt?.removeEventListener('abort', onInterrupt);
    await workloads.finish(true);
    stopBacklog();
    await events.stop();
    report.events = events.events.sort((a, b) => a.tMs - b.tMs);
  }
}

/** The state changes a person follows, on the progress; one line for a burst of the same (one per mirror, say). */
function sayEvents(events: EventCollector, progress: Progress): void {
  let lastSaid = '';
  events.onEvent((e) => {
    if (!/crashed|fractured|promoted|split-brain|restart|cut|restored|bypass|cache-dirty|sp\.|power/.test(e.type) || e.type.startsWith('connection.')) return;
    const line = `event ${e.source}: ${e.type}`;
    if (line !== lastSaid) progress.line(line);
    lastSaid = line;
  });
}

function failureOf(s: StepRecord): string {
  const what = s.source === 'step' ? `step ${s.index}${s.name ? ` (${s.name})` : ''}` : `fault #${s.index} (${s.phase})`;
  return `${what} ${s.label} failed: ${s.error?.code}: ${s.error?.message}`;
}

async function runChecks(spec: ScenarioSpec, ctx: TimelineContext, workloads: WorkloadSet, events: EventCollector, report: ScenarioReport, progress: Progress): Promise<void> {
  const checkCtx = {
    ...ctx,
    events: () => events.events,
    workload: (name: string) => {
      const w = workloads.get(name);
      const s = w.spec;
      const luns = s.kind === 'prefix' ? s.luns : s.kind === 'ledger' || s.kind === 'fio' ? [s.lun] : [];
      return { record: w.record, stateFile: w.plan.stateFile, array: s.kind === 'command' ? '' : s.array, luns, sps: s.kind === 'ledger' ? s.sps : null };
    },
  };
  for (const [i, c] of spec.checks.entries()) {
    progress.line(`check ${i}: ${c.kind}`);
    const r: CheckRecord = await runCheck(c, i, checkCtx);
    report.checks.push(r);
    progress.advance();
    progress.line(`  ${r.skipped ? 'SKIPPED' : r.ok ? 'ok' : 'FAIL'}: ${r.label}: ${r.summary}`);
    if (r.rpoSeconds !== undefined && r.rpoSeconds !== null) report.rpoSeconds = Math.max(report.rpoSeconds ?? 0, r.rpoSeconds);
    if (r.rtoSeconds !== undefined && r.rtoSeconds !== null) report.rtoSeconds = Math.max(report.rtoSeconds ?? 0, r.rtoSeconds);
    if (!r.ok) report.failure ??= `check ${i} (${r.label}) failed: ${r.summary}`;
  }
}

/** Every link's settings now, per direction: what `link-settings-restore` goes back to. */
async function linkBaseline(apis: LabApis): Promise<LinkBaseline> {
  const b: LinkBaseline = new Map();
  for (const l of apis.linkNames()) {
    const st = await apis.link(l).request<{ settings: LinkBaseline extends Map<string, infer V> ? V : never }>('GET', '/v1/status');
    b.set(l, st.settings);
  }
  return b;
}

/** Polls each group's backlog on its primary array; returns the stop function. */
function pollBacklog(apis: LabApis, report: ScenarioReport, t0: number): () => void {
  const groups = apis.current.groups ?? [];
  const series = groups.map((g) => ({ group: g.name, array: g.primary, samples: [] as BacklogSample[] }));
  report.backlog = series;
  const timer = setInterval(() => {
    for (const s of series) {
      if (!apis.arrayRunning(s.array)) continue;
      apis
        .array(s.array, 2000)
        .getGroup(s.group)
        .then((v) => {
          if (v.metrics) s.samples.push({ tMs: Date.now() - t0, entries: v.metrics.entriesWaiting, bytes: v.metrics.writelogBytes });
        })
        .catch(() => undefined); // the array is going down or busy: a gap in the chart
    }
  }, BACKLOG_POLL_MS);
  return () => clearInterval(timer);
}

/** The live line: each workload's acknowledged writes and last p99, the faults in force, the last step. */
function liveStatus(workloads: RunningWorkload[], steps: StepRecord[], t0: number): string {
  const t = ((Date.now() - t0) / 1000).toFixed(0);
  const w = workloads.map((x) => {
    const last = x.record.samples.at(-1);
    return `${x.spec.name} ${x.done ? 'done' : `${last?.acked ?? 0} acked${last?.latencyP99Ms != null ? ` p99 ${last.latencyP99Ms} ms` : ''}`}`;
  });
  const undone = new Set(steps.filter((s) => s.phase === 'undo').map((s) => s.index));
  const inForce = steps.filter((s) => s.phase === 'inject' && !undone.has(s.index)).map((s) => s.label);
  const step = steps.filter((s) => s.source === 'step').at(-1);
  return [`[${t} s] ${w.join(', ') || 'no workload'}`, inForce.length ? `faults: ${inForce.join('; ')}` : 'no fault', step ? `step: ${step.label}` : ''].filter(Boolean).join(' | ');
}
