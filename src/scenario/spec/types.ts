/**
 * A scenario file, parsed and validated (src/scenario/spec/parse.ts). Every duration is in
 * milliseconds here; in the file it is `2s`, `500ms`, `1m` or a bare number of seconds. A range
 * `[0.2s, 2s]` (or a single value) is drawn from the seeded random source when the schedule is
 * made. The format is documented in docs/scenario.md.
 *
 *     scenario: link-flap-async             # name (default: the file name without extension)
 *     description: ...
 *     lab: ../lab/default.yaml              # relative to this file; started fresh for every run
 *     seed: 1                               # default seed (--seed overrides)
 *     timeout: 120s                         # bound of the whole run (default 300s)
 *     workloads: [...]                      # host I/O, each a child process
 *     steps: [...]                          # the timeline, run in order
 *     nemesis: [...]                        # random fault schedules drawn from the seed
 *     checks: [...]                         # what must hold at the end
 */

/** A range to draw from (min == max: a fixed value). */
export interface Range {
  min: number;
  max: number;
}

export interface ScenarioSpec {
  name: string;
  description: string;
  /** absolute path of the scenario file */
  file: string;
  /** absolute path of the lab file */
  labFile: string;
  seed: number;
  timeoutMs: number;
  workloads: WorkloadSpec[];
  steps: StepSpec[];
  nemesis: NemesisSpec[];
  checks: CheckSpec[];
}

// ---- workloads ----

interface WorkloadBase {
  /** unique among the workloads; steps and checks name it */
  name: string;
  /** scenario time at which it starts (default 0) */
  startMs: number;
  /** how long it runs (default: until a workload-stop step, or the end of the steps) */
  durationMs: number | null;
}

/** `sanbox check ledger write` against one LUN, its connections spread over the array's SP ports. */
export interface LedgerWorkloadSpec extends WorkloadBase {
  kind: 'ledger';
  array: string;
  lun: string;
  /** SP ports to spread over (default: every SP of the array, or its one port) */
  sps: string[] | null;
  blocks: number;
  connections: number;
  depth: number;
  blockSize: number;
  /** share of writes with FUA */
  fua: number;
}

/** `sanbox check prefix write` across the LUNs of a consistency group, in member order. */
export interface PrefixWorkloadSpec extends WorkloadBase {
  kind: 'prefix';
  array: string;
  luns: string[];
  depth: number;
  /** blocks per LUN (default: all of the smallest LUN) */
  blocks: number | null;
}

/** fio with its nbd engine against one LUN; `args` are fio's own options (`--rw=randwrite` ...). */
export interface FioWorkloadSpec extends WorkloadBase {
  kind: 'fio';
  array: string;
  lun: string;
  sp: string | null;
  args: string[];
}

/**
 * A shell command (`sh -c`). It gets SANBOX_LAB, SANBOX_IMAGES, SANBOX_SEED and the lab's URIs as
 * SANBOX_URI_<ARRAY>_<LUN> (upper case, `-` and `.` as `_`) in its environment.
 */
export interface CommandWorkloadSpec extends WorkloadBase {
  kind: 'command';
  run: string;
}

export type WorkloadSpec = LedgerWorkloadSpec | PrefixWorkloadSpec | FioWorkloadSpec | CommandWorkloadSpec;

// ---- actions (timeline steps and the nemesis's faults) ----

export type LinkDirectionSpec = 'both' | 'a-to-b' | 'b-to-a';

export type ActionSpec =
  | { kind: 'link-cut'; link: string; direction: LinkDirectionSpec; reset: boolean }
  | { kind: 'link-restore'; link: string }
  /** latency, jitter and bandwidth of both directions back to what they were when the run began */
  | { kind: 'link-settings-restore'; link: string }
  | { kind: 'link-set'; link: string; direction: LinkDirectionSpec; latencyMs: number | null; jitterMs: number | null; bandwidth: number | null }
  | { kind: 'sp-crash' | 'sp-restart'; array: string; sp: string }
  | { kind: 'power-fail' | 'power-restore' | 'battery-fail' | 'battery-repair'; array: string }
  | { kind: 'array-crash' | 'array-restart'; array: string }
  | { kind: 'site-fail' | 'site-restore'; site: string }
  | {
      kind: 'disk-fault';
      array: string;
      lun: string;
      /** operations that fail: read, write, flush, trim, zero (empty: none, e.g. delay only) */
      errors: string[];
      rate: number;
      range: { offset: number; length: number } | null;
      errno: 'EIO' | 'ENOSPC';
      delayMs: number;
      jitterMs: number;
      loseUnflushed: boolean;
      seed: number | null;
    }
  | { kind: 'disk-clear'; array: string; lun: string }
  | { kind: 'mirror-promote'; mirror: string; array: string; force: boolean; fromSnapshot: boolean }
  | { kind: 'group-promote'; group: string; array: string; force: boolean; fromSnapshot: boolean }
  | { kind: 'mirror-resolve'; mirror: string; array: string; survivor: string }
  | { kind: 'mirror-synchronize'; mirror: string; array: string | null }
  | { kind: 'mirror-fracture'; mirror: string; array: string | null }
  | { kind: 'group-pause' | 'group-resume'; group: string; array: string | null }
  | { kind: 'workload-stop'; workload: string }
  | { kind: 'workload-wait'; workload: string; timeoutMs: number }
  | { kind: 'wait'; condition: ConditionSpec; timeoutMs: number }
  | { kind: 'sleep'; ms: number }
  | { kind: 'command'; run: string; expectExit: number };

export type ActionKind = ActionSpec['kind'];

/** Image states a `mirror-state` condition may name ('in-sync': every secondary SYNCHRONIZED or CONSISTENT, none fractured). */
export const MIRROR_CONDITION_STATES = ['in-sync', 'SYNCHRONIZED', 'CONSISTENT', 'SYNCHRONIZING', 'OUT_OF_SYNC', 'UNSYNCHRONIZED', 'fractured'] as const;
export type MirrorConditionState = (typeof MIRROR_CONDITION_STATES)[number];

export type ConditionSpec =
  /** every secondary image of the mirror (seen from `array`, default the lab's first array that has it) is in `state` */
  | { kind: 'mirror-state'; mirror: string; array: string | null; state: MirrorConditionState }
  /** the group's secondaries hold a point-in-time copy and nothing is held (GroupView coherent) */
  | { kind: 'group-coherent'; group: string; array: string | null }
  /** the group's backlog is empty (every entry acknowledged by the secondary) */
  | { kind: 'group-drained'; group: string; array: string | null }
  /** an event of this type (from `source`: an array name, a link name, `hb:HOST`, `automation:SITE` or `lab`) seen since the run began */
  | { kind: 'event'; type: string; source: string | null }
  | { kind: 'workload-done'; workload: string }
  | { kind: 'array-state'; array: string; state: 'running' | 'crashed' };

/**
 * One step of the timeline. Steps run one after another; `at` makes a step wait until that
 * scenario time (a step already late runs at once, and its lateness is reported).
 */
export interface StepSpec {
  /** for checks (rto) and the report; unique among steps when given */
  name: string | null;
  atMs: number | null;
  action: ActionSpec;
  /** the step must fail with this error code (e.g. `split-brain`); any other outcome fails the run */
  expectError: string | null;
}

// ---- the nemesis: random faults drawn from the seed ----

/** A fault the nemesis may choose; `forMs` is how long it lasts before it is undone. */
export type NemesisFaultSpec =
  | { kind: 'link-cut'; link: string; directions: LinkDirectionSpec[]; forMs: Range; weight: number }
  | { kind: 'link-latency'; link: string; latencyMs: Range; forMs: Range; weight: number }
  /** crash one of `sps`, restart it after `forMs` */
  | { kind: 'sp-crash'; array: string; sps: string[]; forMs: Range; weight: number }
  /** power failure (the battery holds), power restored after `forMs` */
  | { kind: 'power-fail'; array: string; forMs: Range; weight: number }
  | { kind: 'disk-errors'; array: string; lun: string; errors: string[]; errno: 'EIO' | 'ENOSPC'; rate: number; forMs: Range; weight: number }
  /** the whole array SIGKILLed, restarted after `forMs` */
  | { kind: 'array-crash'; array: string; forMs: Range; weight: number }
  /** every array of the site SIGKILLed and its links cut; restored after `forMs` */
  | { kind: 'site-fail'; site: string; forMs: Range; weight: number };

export interface NemesisSpec {
  name: string;
  /** scenario time of the first draw, and after which nothing new is injected */
  fromMs: number;
  untilMs: number;
  /** pause between the undo of one fault and the next */
  everyMs: Range;
  faults: NemesisFaultSpec[];
}

// ---- checks ----

export type CheckSpec =
  /** every block holds its newest acknowledged version (read through `array`, default the workload's) */
  | { kind: 'ledger'; workload: string; array: string | null; sps: string[] | null; allowReadErrors: boolean }
  /** the group's LUNs on `array` hold a prefix of the acknowledged order; RPO bounds */
  | { kind: 'prefix'; workload: string; array: string; maxLagSeconds: number | null; maxMissingAcked: number | null }
  /** the mirror's secondaries compare equal to the primary (the array's verify) */
  | { kind: 'mirror-verify'; mirror: string; array: string | null }
  /** two LUNs read back byte for byte equal through NBD (`ARRAY:LUN`) */
  | { kind: 'images-equal'; a: string; b: string }
  /** recovery time: from the start of step `from` to the end of step `to` */
  | { kind: 'rto'; from: string; to: string; maxSeconds: number }
  /** no mirror of a running array reports a split brain */
  | { kind: 'no-split-brain' }
  /** e2fsck -fn of the LUN's file system (needs FUSE and loop devices; else the check is skipped, and says so) */
  | { kind: 'fs'; array: string; lun: string }
  /** a workload's writes failed with `errno` between min and max times */
  | { kind: 'host-errors'; workload: string; errno: string; min: number; max: number | null }
  /** events of `type` (from `source`) seen between min and max times during the run */
  | { kind: 'event'; type: string; source: string | null; min: number; max: number | null }
  /**
   * the numeric `field` of the events of `type` (from `source`, null: any) summed, between min and
   * max; only the events from the start of step `after` on, when given (e.g. mirror.resync-done
   * bytesSent after a failback)
   */
  | { kind: 'event-sum'; type: string; field: string; source: string | null; after: string | null; min: number; max: number | null }
  /** a condition (as in `wait`) holds at the end */
  | { kind: 'condition'; condition: ConditionSpec }
  /** a workload's process ended with this exit code (default 0) */
  | { kind: 'workload-exit'; workload: string; exitCode: number };

export type CheckKind = CheckSpec['kind'];
