/**
 * Executes the two timelines of a run: the scenario's steps, one after another (each may wait
 * for its `at` time), and the nemesis's trace (each fault injected at its time and undone after
 * its duration), concurrently. Every action becomes a StepRecord with its times and outcome.
 */
import type { ActionSpec, ConditionSpec, StepSpec } from '../spec/types.js';
import type { StepRecord, TraceFault } from '../report/types.js';
import { ClientError } from '../../control/index.js';
import { commandOf, doApiAction, isApiAction, type LinkBaseline } from './actions.js';
import type { LabApis } from './apis.js';
import { waitFor, type ConditionContext } from './conditions.js';
import type { Progress } from './progress.js';
import { sanboxShell } from './shell.js';

export interface TimelineContext extends ConditionContext {
  apis: LabApis;
  baseline: LinkBaseline;
  startedAtMs: number;
  progress: Progress;
  /** set when the run gives up (timeout, interrupt, a failed step): loops stop at their next step */
  aborted(): boolean;
  /** the same as an AbortSignal: a running command, wait or sleep ends at once */
  signal: AbortSignal;
  stopWorkload(name: string): Promise<void>;
  waitWorkload(name: string, timeoutMs: number): Promise<void>;
  steps: StepRecord[];
}

const now = (ctx: TimelineContext) => Date.now() - ctx.startedAtMs;

/** Sleeps until scenario time `atMs` (returns early if the run is aborted). */
async function until(ctx: TimelineContext, atMs: number): Promise<void> {
  while (!ctx.aborted()) {
    const left = atMs - now(ctx);
    if (left <= 0) return;
    await new Promise((r) => setTimeout(r, Math.min(left, 100)));
  }
}

/** `p`, or a rejection as soon as the run is aborted. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(Object.assign(new Error('the run was aborted'), { code: 'aborted' }));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function errorOf(e: unknown): { code: string; message: string } {
  if (e instanceof ClientError) return { code: e.code, message: e.message };
  const code = (e as { code?: unknown }).code;
  return { code: typeof code === 'string' ? code : 'error', message: (e as Error).message ?? String(e) };
}

export function actionLabel(a: ActionSpec): string {
  if (a.kind === 'wait') return `wait ${conditionLabel(a.condition)} (timeout ${a.timeoutMs / 1000} s)`;
  if (a.kind === 'command') {
    const lines = a.run.trim().split('\n');
    const first = lines[0].length > 100 ? `${lines[0].slice(0, 100)}...` : lines[0];
    return `command ${first}${lines.length > 1 ? ' ...' : ''}`;
  }
  const { kind, ...rest } = a;
  const args = Object.entries(rest)
    .filter(([, v]) => v !== null && v !== false && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return `${kind} ${args.join(' ')}`.trim();
}

function conditionLabel(c: ConditionSpec): string {
  const { kind, ...rest } = c;
  return `${kind} ${Object.values(rest).filter((v) => v !== null).join(' ')}`.trim();
}

/** Runs one action; resolves with its result (errors are thrown). */
async function perform(a: ActionSpec, ctx: TimelineContext): Promise<unknown> {
  if (isApiAction(a)) return doApiAction(a, ctx.apis, ctx.baseline);
  switch (a.kind) {
    case 'workload-stop':
      return ctx.stopWorkload(a.workload);
    case 'workload-wait':
      return abortable(ctx.waitWorkload(a.workload, a.timeoutMs), ctx.signal);
    case 'wait':
      return waitFor(a.condition, ctx, a.timeoutMs, ctx.signal);
    case 'sleep':
      return abortable(new Promise((r) => setTimeout(r, a.ms)), ctx.signal);
    case 'command': {
      const r = await sanboxShell(a.run, ctx.apis, ctx.signal);
      if (r.code !== a.expectExit) throw Object.assign(new Error(`exit ${r.code} (expected ${a.expectExit}): ${r.output.trim().split('\n').slice(-5).join(' | ')}`), { code: 'exit-status' });
      return { exitCode: r.code, output: r.output.slice(-4000) };
    }
  }
}

async function record(rec: Omit<StepRecord, 'startMs' | 'endMs' | 'ok'>, a: ActionSpec, expectError: string | null, ctx: TimelineContext): Promise<StepRecord> {
  const startMs = now(ctx);
  const r: StepRecord = { ...rec, startMs, endMs: startMs, ok: false };
  ctx.steps.push(r);
  ctx.progress.line(`${rec.source === 'nemesis' ? `fault #${rec.index} ${rec.phase}` : `step ${rec.index}`}: ${rec.label}`);
  try {
    r.result = await perform(a, ctx);
    r.ok = expectError === null;
    if (!r.ok) r.error = { code: 'unexpected-success', message: `expected it to fail with ${expectError}` };
  } catch (e) {
    r.error = errorOf(e);
    r.ok = expectError !== null && r.error.code === expectError;
  }
  r.endMs = now(ctx);
  ctx.progress.advance();
  const said = (r.result as { output?: unknown } | undefined)?.output;
  if (typeof said === 'string' && said.trim()) ctx.progress.line(`  ${said.trim().split('\n').at(-1)}`);
  if (!r.ok) ctx.progress.line(`  FAILED: ${r.error?.code}: ${r.error?.message}`);
  else if (r.error) ctx.progress.line(`  failed as expected: ${r.error.code}`);
  return r;
}

/** The scenario's steps in order; resolves with the first failed step, or null. */
export async function runSteps(steps: StepSpec[], ctx: TimelineContext): Promise<StepRecord | null> {
  for (const [index, s] of steps.entries()) {
    if (ctx.aborted()) return null;
    if (s.atMs !== null) await until(ctx, s.atMs);
    if (ctx.aborted()) return null;
    const r = await record({ source: 'step', index, name: s.name, kind: s.action.kind, label: actionLabel(s.action), command: commandOf(s.action, ctx.apis.lab.name), plannedMs: s.atMs }, s.action, s.expectError, ctx);
    if (!r.ok) return r;
  }
  return null;
}

/** The nemesis's faults: inject and undo, in time order; resolves with the first failed action, or null. */
export async function runTrace(trace: TraceFault[], ctx: TimelineContext): Promise<StepRecord | null> {
  const actions = trace
    .flatMap((f) => [
      { f, phase: 'inject' as const, at: f.atMs, a: f.inject },
      { f, phase: 'undo' as const, at: f.atMs + f.durationMs, a: f.undo },
    ])
    .sort((x, y) => x.at - y.at || (x.phase === 'undo' ? -1 : 1));
  let failed: StepRecord | null = null;
  const injected = new Set<number>();
  for (const x of actions) {
    // After an abort only the undos of injected faults run: a run never ends with a fault in force.
    if (x.phase === 'inject' && ctx.aborted()) continue;
    if (x.phase === 'undo' && !injected.has(x.f.index)) continue;
    if (x.phase === 'inject') injected.add(x.f.index);
    if (!ctx.aborted()) await until(ctx, x.at);
    const r = await record({ source: 'nemesis', index: x.f.index, phase: x.phase, name: null, kind: x.a.kind, label: x.f.label, command: commandOf(x.a, ctx.apis.lab.name), plannedMs: x.at }, x.a, null, ctx);
    if (!r.ok && !failed) failed = r;
  }
  return failed;
}
