/**
 * Throttles of a consistency group (003_aa2ee289f275629d.txt, "Throttles"; types in ./types.ts).
 *
 * What the source says. Throttles are user-defined tests and actions that the primary mirror
 * daemon evaluates periodically (every ten seconds by default). They keep the system inside a
 * range: limit network and CPU use, deal with pending writelog overflow or underflow, notify the
 * administrators and run external programs. A group may have any number of throttles, each with
 * up to sixteen actions run when the throttle evaluates true. A throttle may be limited to a time
 * of day ("From"/"To" in HH:MM:SS, "--" in both when it is not time dependent). Its test is one of
 * three run-time measurements — `netkbps` (KB/s sent to the secondary), `pctcpu` (percent of CPU
 * the group's daemon uses), `pctwl` (percent of the writelog in use) — a relational or
 * transitional operator and an integer value. Actions: set/increment/decrement the sleep before
 * each data-entry transmission, set/increment/decrement the wait before a host update is
 * acknowledged, chain in a writelog extension (up to fifteen), release one to the pool, log to
 * syslog, write to the console, send mail, run a shell command. Its example (Figure 10, described
 * in the text only): the sleep grows by 15,000 µs when usage exceeds 200 KB/s, by another 5,000 µs
 * every evaluation while it exceeds 300 KB/s, and when usage declines the sleep is decremented
 * continuously until it reaches zero.
 *
 * What sanbox does.
 *  - Times are milliseconds, not microseconds (fractions allowed: 0.5 ms = 500 µs); sleep and
 *    delay are clamped to [0, MAX_SLEEP_MS]. Syslog and console become `log` (the array's log)
 *    and `event` (the array's event stream); mail is left to `command`.
 *  - `parseThrottles` validates a lab-file / API value and lists every problem with its path
 *    (like src/cli/lab.ts); `"--"` in both from and to is the same as leaving both out.
 *  - Window: `from` is included and `to` excluded, to the second, in local time. from > to wraps
 *    midnight (22:00:00 to 06:00:00 is the night); from == to is refused (empty or whole day?).
 *  - Relational operators compare the measurement of this evaluation with the value (`eq` and
 *    `ne` compare the measurement rounded to a whole number, and need an integer value: rates
 *    are never exactly an integer).
 *  - Transitional operators compare this evaluation with the previous one (the previous
 *    `evaluate` call, whether or not the throttle was inside its window then):
 *        rises-above V:  previous <= V  and  current > V
 *        falls-below V:  previous >= V  and  current < V
 *    so each fires once per crossing. The first evaluation (and the first after `reset()`, or
 *    after a measurement that was not a finite number) only records the baseline: nothing that
 *    was already above or below V at start counts as a crossing. A crossing that happens while
 *    the throttle is outside its window is not remembered for later.
 *  - Placeholders %netkbps% %pctcpu% %pctwl% in messages and commands are replaced by the
 *    measurements (numbers only, so a command stays what the operator wrote).
 *  - `runThrottleCommand` runs a command through /bin/sh in its own process group, kills the
 *    group at the timeout, keeps a bounded amount of output and never throws.
 */
import type { ThrottleAction, ThrottleSpec } from './types.js';

// Running a throttle's command: ./throttle-command.ts.
export { runThrottleCommand, throttleCommandEnv, THROTTLE_COMMAND_TIMEOUT_MS, type ThrottleCommandResult } from './throttle-command.js';

export const MAX_THROTTLE_ACTIONS = 16;
/** upper bound of the sender sleep and of the host-ack delay */
export const MAX_SLEEP_MS = 10_000;

export const THROTTLE_MEASURES = ['netkbps', 'pctcpu', 'pctwl'] as const;
export const THROTTLE_OPS = ['lt', 'le', 'eq', 'ne', 'ge', 'gt', 'rises-above', 'falls-below'] as const;
export const THROTTLE_ACTIONS = [
  'sleep-set',
  'sleep-incr',
  'sleep-decr',
  'delay-set',
  'delay-incr',
  'delay-decr',
  'extension-chain',
  'extension-release',
  'log',
  'event',
  'command',
] as const;

/** What throttles test: the three run-time measurements of the source. */
export interface ThrottleMeasurements {
  netkbps: number;
  pctcpu: number;
  pctwl: number;
}

export type FiredAction = { throttle: number; action: ThrottleAction };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const THROTTLE_KEYS = ['from', 'to', 'measure', 'op', 'value', 'actions'];

// ---------------------------------------------------------------------------------------------
// Parsing

/** Seconds since midnight of 'HH:MM:SS' (hours may have one digit), or undefined. */
export function parseTimeOfDay(v: string): number | undefined {
  const m = /^(\d{1,2}):(\d{2}):(\d{2})$/.exec(v);
  if (!m) return undefined;
  const [h, mi, s] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (h > 23 || mi > 59 || s > 59) return undefined;
  return h * 3600 + mi * 60 + s;
}

const hhmmss = (sec: number) => [Math.floor(sec / 3600), Math.floor(sec / 60) % 60, sec % 60].map((n) => String(n).padStart(2, '0')).join(':');

/**
 * Validates a list of throttles (lab file or API). `where` names the value in problems, e.g.
 * `group g0.throttles`. `undefined` and `null` are an empty list. Throttles with a problem are left
 * out of `throttles`; a caller refuses the whole value when `problems` is not empty. Times come
 * back as 'HH:MM:SS'.
 */
export function parseThrottles(value: unknown, where: string): { throttles: ThrottleSpec[]; problems: string[] } {
  const problems: string[] = [];
  const throttles: ThrottleSpec[] = [];
  if (value === undefined || value === null) return { throttles, problems };
  if (!Array.isArray(value)) {
    problems.push(`${where} must be a list of throttles like [{ measure: netkbps, op: gt, value: 200, actions: [{ do: sleep-incr, ms: 15 }] }]`);
    return { throttles, problems };
  }
  value.forEach((t, i) => {
    const at = `${where}[${i}]`;
    const before = problems.length;
    if (!isObj(t)) return void problems.push(`${at} must be a mapping (${THROTTLE_KEYS.join(', ')})`);
    for (const k of Object.keys(t)) if (!THROTTLE_KEYS.includes(k)) problems.push(`${at}: unknown key "${k}" (expected ${THROTTLE_KEYS.join(', ')})`);

    // window
    let from: number | undefined;
    let to: number | undefined;
    const none = (v: unknown) => v === undefined || v === null || v === '--';
    if (none(t.from) !== none(t.to)) problems.push(`${at}: give both from and to (a time window), or neither`);
    else if (!none(t.from)) {
      for (const k of ['from', 'to'] as const) {
        const v = t[k];
        const sec = typeof v === 'string' ? parseTimeOfDay(v) : undefined;
        if (sec === undefined) problems.push(`${at}.${k} must be a local time HH:MM:SS (00:00:00-23:59:59), or "--", not ${JSON.stringify(v)}`);
        else if (k === 'from') from = sec;
        else to = sec;
      }
      if (from !== undefined && from === to) problems.push(`${at}: from and to are the same time; leave both out for a throttle that is always active`);
    }

    // test
    const measure = t.measure;
    if (!THROTTLE_MEASURES.includes(measure as 'netkbps')) problems.push(`${at}.measure must be one of ${THROTTLE_MEASURES.join(', ')}, not ${JSON.stringify(measure)}`);
    const op = t.op;
    if (!THROTTLE_OPS.includes(op as 'lt')) problems.push(`${at}.op must be one of ${THROTTLE_OPS.join(', ')}, not ${JSON.stringify(op)}`);
    const v = t.value;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) problems.push(`${at}.value must be a number >= 0, not ${JSON.stringify(v)}`);
    else {
      if (measure === 'pctwl' && v > 100) problems.push(`${at}.value: pctwl is a percentage (0-100), not ${v}`);
      if ((op === 'eq' || op === 'ne') && !Number.isInteger(v)) problems.push(`${at}.value: ${op} compares whole numbers; give an integer, not ${v}`);
    }

    // actions
    const actions: ThrottleAction[] = [];
    if (!Array.isArray(t.actions) || t.actions.length < 1 || t.actions.length > MAX_THROTTLE_ACTIONS) {
      problems.push(`${at}.actions must be a list of 1 to ${MAX_THROTTLE_ACTIONS} actions like [{ do: sleep-incr, ms: 15 }]${Array.isArray(t.actions) ? ` (has ${t.actions.length})` : ''}`);
    }
    if (Array.isArray(t.actions)) {
      t.actions.forEach((a, j) => {
        const action = parseAction(a, `${at}.actions[${j}]`, problems);
        if (action) actions.push(action);
      });
    }

    if (problems.length === before) {
      const spec: ThrottleSpec = { measure: measure as ThrottleSpec['measure'], op: op as ThrottleSpec['op'], value: v as number, actions };
      if (from !== undefined && to !== undefined) {
        spec.from = hhmmss(from);
        spec.to = hhmmss(to);
      }
      throttles.push(spec);
    }
  });
  return { throttles, problems };
}

function parseAction(a: unknown, at: string, problems: string[]): ThrottleAction | undefined {
  if (!isObj(a)) return void problems.push(`${at} must be a mapping like { do: sleep-incr, ms: 15 } (do: ${THROTTLE_ACTIONS.join(', ')})`);
  const kind = a.do;
  if (!THROTTLE_ACTIONS.includes(kind as 'log')) {
    problems.push(`${at}.do must be one of ${THROTTLE_ACTIONS.join(', ')}, not ${JSON.stringify(kind)}`);
    return undefined;
  }
  const k = kind as (typeof THROTTLE_ACTIONS)[number];
  const arg = k.startsWith('sleep-') || k.startsWith('delay-') ? 'ms' : k === 'log' || k === 'event' ? 'message' : k === 'command' ? 'command' : null;
  const keys = arg ? ['do', arg] : ['do'];
  const before = problems.length;
  for (const key of Object.keys(a)) if (!keys.includes(key)) problems.push(`${at}: unknown key "${key}" for ${k} (expected ${keys.join(', ')})`);
  if (arg === 'ms') {
    const ms = a.ms;
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > MAX_SLEEP_MS) problems.push(`${at}.ms must be a number of milliseconds 0-${MAX_SLEEP_MS}, not ${JSON.stringify(ms)}`);
  } else if (arg) {
    const s = a[arg];
    if (typeof s !== 'string' || s.trim() === '') problems.push(`${at}.${arg} must be a non-empty string, not ${JSON.stringify(s)}`);
  }
  if (problems.length !== before) return undefined;
  if (arg === 'ms') return { do: k as 'sleep-set', ms: a.ms as number };
  if (arg === 'message') return { do: k as 'log', message: a.message as string };
  if (arg === 'command') return { do: 'command', command: a.command as string };
  return { do: k as 'extension-chain' };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/** Whether `date` (its local time of day, to the second) is inside the throttle's window. */
export function inWindow(spec: Pick<ThrottleSpec, 'from' | 'to'>, date: Date): boolean {
  if (spec.from === undefined || spec.to === undefined) return true;
  const from = parseTimeOfDay(spec.from);
  const to = parseTimeOfDay(spec.to);
  if (from === undefined || to === undefined) return false;
  const t = date.getHours() * 3600 + date.getMinutes() * 60 + date.getSeconds();
  return from < to ? t >= from && t < to : t >= from || t < to;
}

/** The relational test of one measurement (transitional operators: see ThrottleEngine). */
export function relationHolds(op: ThrottleSpec['op'], current: number, value: number): boolean {
  switch (op) {
    case 'lt':
      return current < value;
    case 'le':
      return current <= value;
    case 'eq':
      return Math.round(current) === value;
    case 'ne':
      return Math.round(current) !== value;
    case 'ge':
      return current >= value;
    case 'gt':
      return current > value;
    default:
      return false;
  }
}

/**
 * Evaluates a group's throttles against its measurements (the driver calls `evaluate` every
 * `throttleEveryMs`). Returns the actions of every throttle that fired, in throttle order and
 * then action order; nothing is applied here (ThrottleState does that).
 */
export class ThrottleEngine {
  private readonly specs: ThrottleSpec[];
  private readonly now: () => Date;
  private previous: ThrottleMeasurements | null = null;
  /** evaluations each throttle fired in (for status) */
  readonly fired: number[];

  constructor(specs: ThrottleSpec[], opts: { now?: () => Date } = {}) {
    this.specs = specs.map((s) => ({ ...s, actions: [...s.actions] }));
    this.now = opts.now ?? (() => new Date());
    this.fired = specs.map(() => 0);
  }

  get throttles(): readonly ThrottleSpec[] {
    return this.specs;
  }

  /** Forgets the previous measurements: the next evaluation is a new baseline for transitional tests. */
  reset(): void {
    this.previous = null;
  }

  /** Whether throttle `i` holds for `m` (its window is not looked at). */
  private holds(spec: ThrottleSpec, m: ThrottleMeasurements): boolean {
    const current = m[spec.measure];
    if (typeof current !== 'number' || !Number.isFinite(current)) return false;
    if (spec.op === 'rises-above' || spec.op === 'falls-below') {
      const prev = this.previous?.[spec.measure];
      if (typeof prev !== 'number' || !Number.isFinite(prev)) return false;
      return spec.op === 'rises-above' ? prev <= spec.value && current > spec.value : prev >= spec.value && current < spec.value;
    }
    return relationHolds(spec.op, current, spec.value);
  }

  evaluate(m: ThrottleMeasurements): FiredAction[] {
    const date = this.now();
    const out: FiredAction[] = [];
    this.specs.forEach((spec, i) => {
      if (!inWindow(spec, date) || !this.holds(spec, m)) return;
      this.fired[i]!++;
      for (const action of spec.actions) out.push({ throttle: i, action });
    });
    this.previous = { netkbps: m.netkbps, pctcpu: m.pctcpu, pctwl: m.pctwl };
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Applying actions

export interface ThrottleEventDetails {
  /** index of the throttle whose action this is (null: the action was applied on its own) */
  throttle: number | null;
  measurements: ThrottleMeasurements | null;
}

export interface ThrottleHooks {
  /** chain a writelog extension in; false: none available (pool empty, or the chain is full) */
  chainExtension(): boolean;
  /** give the last chained extension back to the pool; false: none chained, or it is still in use */
  releaseExtension(): boolean;
  log(msg: string): void;
  event(msg: string, details: ThrottleEventDetails): void;
  /** start the command (the driver uses runThrottleCommand with a timeout); must not block */
  command(cmd: string): void;
}

export interface AppliedAction {
  throttle: number | null;
  action: ThrottleAction;
  /** false: the hook refused (returned false) or threw; `error` says why */
  ok: boolean;
  error?: string;
}

/** Replaces %netkbps% %pctcpu% %pctwl% (whole numbers, or one decimal below 10). */
export function expandPlaceholders(text: string, m: ThrottleMeasurements | null | undefined): string {
  if (!m) return text;
  return text.replace(/%(netkbps|pctcpu|pctwl)%/g, (all, k: keyof ThrottleMeasurements) => {
    const v = m[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) return all;
    return Math.abs(v) < 10 && !Number.isInteger(v) ? v.toFixed(1) : String(Math.round(v));
  });
}

const clampMs = (v: number) => (Number.isFinite(v) ? Math.min(MAX_SLEEP_MS, Math.max(0, v)) : 0);

/**
 * The throttle-controlled knobs of a group: `senderSleepMs` (slept by the sender before each
 * transmission) and `ackDelayMs` (waited before a host write is acknowledged). `apply` runs
 * actions in order; a hook that throws or refuses is reported in the result, never thrown, and
 * the next action still runs.
 */
export class ThrottleState {
  senderSleepMs: number;
  ackDelayMs: number;
  /**
   * The throttle whose action last set or increased `senderSleepMs` (for status: why the
   * sender sleeps); null once the sleep is back to 0, or when an action applied on its own set it.
   */
  sleepRaisedBy: number | null;

  constructor(init: { senderSleepMs?: number; ackDelayMs?: number; sleepRaisedBy?: number | null } = {}) {
    this.senderSleepMs = clampMs(init.senderSleepMs ?? 0);
    this.ackDelayMs = clampMs(init.ackDelayMs ?? 0);
    this.sleepRaisedBy = this.senderSleepMs > 0 ? (init.sleepRaisedBy ?? null) : null;
  }

  apply(actions: ReadonlyArray<FiredAction | ThrottleAction>, hooks: ThrottleHooks, m?: ThrottleMeasurements | null): AppliedAction[] {
    const results: AppliedAction[] = [];
    for (const item of actions) {
      const { throttle, action } = 'action' in item ? item : { throttle: null, action: item };
      const r: AppliedAction = { throttle, action, ok: true };
      try {
        switch (action.do) {
          case 'sleep-set':
            this.senderSleepMs = clampMs(action.ms);
            this.sleepRaisedBy = throttle;
            break;
          case 'sleep-incr':
            this.senderSleepMs = clampMs(this.senderSleepMs + action.ms);
            if (action.ms > 0) this.sleepRaisedBy = throttle;
            break;
          case 'sleep-decr':
            this.senderSleepMs = clampMs(this.senderSleepMs - action.ms);
            break;
          case 'delay-set':
            this.ackDelayMs = clampMs(action.ms);
            break;
          case 'delay-incr':
            this.ackDelayMs = clampMs(this.ackDelayMs + action.ms);
            break;
          case 'delay-decr':
            this.ackDelayMs = clampMs(this.ackDelayMs - action.ms);
            break;
          case 'extension-chain':
            if (!hooks.chainExtension()) (r.ok = false), (r.error = 'no writelog extension could be chained in');
            break;
          case 'extension-release':
            if (!hooks.releaseExtension()) (r.ok = false), (r.error = 'no writelog extension could be released');
            break;
          case 'log':
            hooks.log(expandPlaceholders(action.message, m));
            break;
          case 'event':
            hooks.event(expandPlaceholders(action.message, m), { throttle, measurements: m ?? null });
            break;
          case 'command':
            hooks.command(expandPlaceholders(action.command, m));
            break;
          default:
            r.ok = false;
            r.error = `unknown action ${JSON.stringify((action as { do: unknown }).do)}`;
        }
      } catch (e) {
        r.ok = false;
        r.error = e instanceof Error ? e.message : String(e);
      }
      results.push(r);
    }
    if (this.senderSleepMs === 0) this.sleepRaisedBy = null;
    return results;
  }
}
