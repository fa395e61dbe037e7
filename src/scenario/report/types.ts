/**
 * The report of one scenario run (`--report DIR` writes it as report.json, next to the timeline
 * report.html). Times `tMs` are milliseconds since the run's start (`startedAtMs`, epoch ms).
 */
import type { ActionSpec, ScenarioSpec } from '../spec/types.js';

export const REPORT_FORMAT = 'sanbox-scenario-report/1';

/** A fault the nemesis drew: injected at `atMs`, undone at `atMs + durationMs`. */
export interface TraceFault {
  /** 0, 1, ... in the order of the schedule (all nemeses merged, by time) */
  index: number;
  nemesis: string;
  atMs: number;
  durationMs: number;
  /** what is done at atMs */
  inject: ActionSpec;
  /** what is done at atMs + durationMs */
  undo: ActionSpec;
  /** a short human label: "link alpha-bravo cut both for 1.20 s" */
  label: string;
}

/** One executed action: a timeline step, or one half of a nemesis fault. */
export interface StepRecord {
  /** 'step' (timeline, `index` into spec.steps) or 'nemesis' (`index` into trace, `phase`) */
  source: 'step' | 'nemesis';
  index: number;
  phase?: 'inject' | 'undo';
  name: string | null;
  kind: string;
  label: string;
  /** the equivalent sanbox command a person could type */
  command: string;
  /** scheduled time (null: right after the previous step) */
  plannedMs: number | null;
  startMs: number;
  endMs: number;
  ok: boolean;
  /** the API's answer or the step's own summary */
  result?: unknown;
  error?: { code: string; message: string };
}

/** A state change seen on an event stream. */
export interface EventRecord {
  tMs: number;
  /** an array name, a link name, or 'lab' (the supervisor) */
  source: string;
  type: string;
  /** the event as its stream sent it */
  data: Record<string, unknown>;
}

/** One second of a workload's host I/O. */
export interface WorkloadSample {
  tMs: number;
  issued: number;
  acked: number;
  /** writes answered in this window, and their latency */
  windowAcks: number;
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  latencyMaxMs: number | null;
}

/** A group's backlog as polled from its primary array. */
export interface BacklogSample {
  tMs: number;
  entries: number;
  bytes: number;
}

export interface WorkloadRecord {
  name: string;
  kind: string;
  command: string;
  startMs: number;
  endMs: number | null;
  exitCode: number | null;
  signal: string | null;
  /** the workload's --json report, if it printed one */
  report: unknown;
  samples: WorkloadSample[];
  /** the last lines of its stderr */
  stderrTail: string[];
}

export interface CheckRecord {
  index: number;
  kind: string;
  label: string;
  ok: boolean;
  /** could not run here (e.g. no FUSE): neither pass nor fail, said so */
  skipped: boolean;
  summary: string;
  details?: unknown;
  /** prefix: the recovery point objective measured, seconds; rto: the recovery time, seconds */
  rpoSeconds?: number | null;
  rtoSeconds?: number | null;
}

export interface ScenarioReport {
  format: typeof REPORT_FORMAT;
  scenario: string;
  seed: number;
  /** the lab (its unique name for this run) and the run's directory */
  lab: string;
  runDir: string;
  startedAt: string;
  startedAtMs: number;
  durationMs: number;
  ok: boolean;
  /** the first thing that made the run fail (a step, a check, the timeout) */
  failure: string | null;
  /** the command that reruns this seed, and the one that replays this exact trace */
  rerun: string;
  replay: string;
  spec: ScenarioSpec;
  trace: TraceFault[];
  steps: StepRecord[];
  events: EventRecord[];
  workloads: WorkloadRecord[];
  backlog: { group: string; array: string; samples: BacklogSample[] }[];
  checks: CheckRecord[];
  rpoSeconds: number | null;
  rtoSeconds: number | null;
}
