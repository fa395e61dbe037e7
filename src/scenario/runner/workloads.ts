/**
 * A run's host I/O: each workload is a child process, as a host is — `sanbox check ledger write`,
 * `sanbox check prefix write`, fio with its nbd engine, or a shell command. Their seeds and run
 * ids come from the scenario seed, so a rerun writes the same data in the same order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { mixSeed } from '../../random/index.js';
import type { ScenarioSpec, WorkloadSpec } from '../spec/types.js';
import type { WorkloadRecord, WorkloadSample } from '../report/types.js';
import type { LabApis } from './apis.js';
import type { Progress } from './progress.js';
import { SANBOX_BIN, stdoutJson } from './lab.js';
import { shellEnv } from './shell.js';

/** A workload with no duration runs until stopped; the writer still needs a bound. */
const UNBOUNDED_SECONDS = 86_400;
const STOP_GRACE_MS = 30_000;
const TAIL_LINES = 20;

export interface WorkloadPlan {
  argv: string[];
  /** the state file a checker reads afterwards (ledger, prefix) */
  stateFile: string | null;
  env: NodeJS.ProcessEnv;
  /** the scenario file's directory */
  cwd: string;
}

const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export function workloadSeed(seed: number, index: number): number {
  return mixSeed(seed, 0x776c, index);
}

/** The process to start for a workload (pure, given the lab's URIs). */
export function planWorkload(w: WorkloadSpec, index: number, seed: number, apis: LabApis, runDir: string): WorkloadPlan {
  const env = apis.lab.env;
  const s = workloadSeed(seed, index);
  const runId = String((s % 0xfffffffe) + 1);
  const seconds = String(w.durationMs === null ? UNBOUNDED_SECONDS : w.durationMs / 1000);
  const node = [process.execPath, SANBOX_BIN];
  const cwd = apis.lab.scenarioDir;
  switch (w.kind) {
    case 'ledger': {
      const stateFile = join(runDir, `${w.name}.ledger.json`);
      const uris = apis.uris(w.array, w.lun, w.sps).flatMap((u) => ['--uri', u]);
      const argv = [...node, 'check', 'ledger', 'write', ...uris, '--state', stateFile, '--blocks', String(w.blocks), '--connections', String(w.connections), '--depth', String(w.depth), '--block-size', String(w.blockSize), '--fua', String(w.fua), '--seed', String(s), '--run-id', runId, '--seconds', seconds, '-q', '--json', '--progress-json'];
      return { argv, stateFile, env, cwd };
    }
    case 'prefix': {
      const stateFile = join(runDir, `${w.name}.prefix.json`);
      const uris = w.luns.map((l) => apis.uris(w.array, l)[0]).join(',');
      const argv = [...node, 'check', 'prefix', 'write', '--uri', uris, '--state', stateFile, '--depth', String(w.depth), '--seed', String(s), '--run-id', runId, '--seconds', seconds, '-q', '--json', '--progress-json'];
      if (w.blocks !== null) argv.push('--blocks', String(w.blocks));
      return { argv, stateFile, env, cwd };
    }
    case 'fio': {
      const uri = apis.uris(w.array, w.lun, w.sp === null ? null : [w.sp])[0];
      const timed = w.durationMs === null ? [] : [`--runtime=${w.durationMs / 1000}`, '--time_based'];
      return { argv: ['fio', `--name=${w.name}`, '--ioengine=nbd', `--uri=${uri}`, `--randseed=${s}`, '--output-format=json', ...timed, ...w.args], stateFile: null, env, cwd };
    }
    case 'command':
      return { argv: ['sh', '-c', w.run], stateFile: null, env: { ...env, ...shellEnv(apis) }, cwd };
  }
}

export function commandLine(argv: string[]): string {
  const shown = argv[0] === process.execPath && argv[1] === SANBOX_BIN ? ['sanbox', ...argv.slice(2)] : argv;
  return shown.map(q).join(' ');
}

/** A started workload: its record fills in as it runs. */
export class RunningWorkload {
  readonly record: WorkloadRecord;
  private readonly proc: ChildProcess;
  private stdout = '';
  private stderrLine = '';
  readonly exited: Promise<void>;
  private ended = false;
  private stopping = false;

  constructor(
    readonly spec: WorkloadSpec,
    readonly plan: WorkloadPlan,
    startedAtMs: number,
  ) {
    this.record = { name: spec.name, kind: spec.kind, command: commandLine(plan.argv), startMs: Date.now() - startedAtMs, endMs: null, exitCode: null, signal: null, report: null, samples: [], stderrTail: [] };
    this.proc = spawn(plan.argv[0], plan.argv.slice(1), { cwd: plan.cwd, env: plan.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => this.onStderr(d.toString(), startedAtMs));
    this.exited = new Promise((resolve) => {
      const done = (code: number | null, signal: string | null) => {
        if (this.ended) return;
        this.ended = true;
        this.record.endMs = Date.now() - startedAtMs;
        this.record.exitCode = code;
        this.record.signal = signal;
        this.record.report = this.stdout.trim() ? (stdoutJson(this.stdout) ?? { stdout: this.stdout.slice(-2000) }) : null;
        resolve();
      };
      this.proc.on('error', (e) => {
        this.record.stderrTail.push(`cannot start: ${e.message}`);
        done(127, null);
      });
      this.proc.on('close', done);
    });
  }

  get done(): boolean {
    return this.ended;
  }

  private onStderr(text: string, startedAtMs: number): void {
    const lines = (this.stderrLine + text).split('\n');
    this.stderrLine = lines.pop() ?? '';
    for (const line of lines) {
      const sample = progressSample(line, startedAtMs);
      if (sample) this.record.samples.push(sample);
      else if (line.trim()) {
        this.record.stderrTail.push(line);
        if (this.record.stderrTail.length > TAIL_LINES) this.record.stderrTail.shift();
      }
    }
  }

  /** SIGTERM (the writers save their state and report), SIGKILL after a grace period. */
  async stop(): Promise<void> {
    // One SIGTERM only: a second one could land after the writer removed its handler and kill it.
    if (!this.ended && !this.stopping) {
      this.stopping = true;
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), STOP_GRACE_MS);
      void this.exited.then(() => clearTimeout(timer));
    }
    await this.exited;
  }
}

/** A `--progress-json` line of the check writers, as a sample (null: not one). */
export function progressSample(line: string, startedAtMs: number): WorkloadSample | null {
  if (!line.startsWith('{"progress"')) return null;
  try {
    const p = JSON.parse(line) as { t: number; issued: number; acked: number; window: { acks: number; p50Ms: number | null; p99Ms: number | null; maxMs: number | null } };
    return { tMs: p.t - startedAtMs, issued: p.issued, acked: p.acked, windowAcks: p.window.acks, latencyP50Ms: p.window.p50Ms, latencyP99Ms: p.window.p99Ms, latencyMaxMs: p.window.maxMs };
  } catch {
    return null;
  }
}

/** The workloads of a run: each started at its time (unless the run gave up first), by name. */
export class WorkloadSet {
  private readonly running = new Map<string, RunningWorkload>();
  private readonly starters = new Map<string, NodeJS.Timeout>();
  /** resolve functions of those waiting for a workload to start */
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(spec: ScenarioSpec, seed: number, apis: LabApis, runDir: string, t0: number, records: WorkloadRecord[], progress: Progress, aborted: () => boolean) {
    spec.workloads.forEach((w, i) => {
      const start = () => {
        this.starters.delete(w.name);
        if (aborted()) return;
        const run = new RunningWorkload(w, planWorkload(w, i, seed, apis, runDir), t0);
        this.running.set(w.name, run);
        records.push(run.record);
        progress.line(`workload ${w.name} started: ${run.record.command}`);
        void run.exited.then(() => progress.line(`workload ${w.name} ended (exit ${run.record.exitCode ?? run.record.signal})`));
        for (const wake of this.waiting.get(w.name) ?? []) wake();
        this.waiting.delete(w.name);
      };
      // At 0 at once: a first step that waits for the workload finds it started.
      if (w.startMs === 0) start();
      else this.starters.set(w.name, setTimeout(start, w.startMs));
    });
  }

  get(name: string): RunningWorkload {
    const w = this.running.get(name);
    if (!w) throw new Error(`workload ${name} has not started`);
    return w;
  }

  done(name: string): boolean {
    return this.running.get(name)?.done === true;
  }

  all(): RunningWorkload[] {
    return [...this.running.values()];
  }

  /** Stops a workload; one not started yet never starts. */
  async stop(name: string): Promise<void> {
    const pending = this.starters.get(name);
    if (pending) {
      clearTimeout(pending);
      this.starters.delete(name);
      return;
    }
    await this.get(name).stop();
  }

  /** Resolves when the workload (started now or later) ends; rejects after `timeoutMs`. */
  async wait(name: string, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, fail) => (timer = setTimeout(() => fail(new Error(`workload ${name} still running after ${timeoutMs / 1000} s`)), timeoutMs)));
    try {
      await Promise.race([this.started(name).then((w) => w.exited), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private started(name: string): Promise<RunningWorkload> {
    const w = this.running.get(name);
    if (w) return Promise.resolve(w);
    if (!this.starters.has(name)) return Promise.reject(new Error(`workload ${name} was stopped before it started`));
    return new Promise((resolve) => this.waiting.set(name, [...(this.waiting.get(name) ?? []), () => resolve(this.get(name))]));
  }

  /**
   * The end of the timeline: no more starts; the workloads that run until stopped (or all, when
   * `stopAll`) are stopped, the others waited for. Their writers save their state files.
   */
  async finish(stopAll: boolean): Promise<void> {
    this.starters.forEach(clearTimeout);
    this.starters.clear();
    await Promise.all(this.all().map((w) => (stopAll || w.spec.durationMs === null ? w.stop() : w.exited)));
  }
}
