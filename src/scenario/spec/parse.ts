/**
 * Reading a scenario file (the result: ./types.ts). The whole file is checked before anything
 * runs: every problem is listed at once, each with its path in the document
 * (`steps[3].link-cut.link: unknown link ...`), and every name the file uses must exist: its own
 * workloads and steps always, and, when the lab is known, the lab's arrays, LUNs, SPs, links,
 * sites, mirrors and groups. Scalars and the reading of mappings: ./values.ts; the checks: ./checks.ts.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { LabError, heartbeatLinkNames, loadLab, type Lab } from '../../cli/lab/index.js';
import { DISK_ERRNOS, DISK_OPS, MAX_DELAY_MS } from '../../fault/index.js';
import { readCheck, type CheckNames } from './checks.js';
import { MIRROR_CONDITION_STATES, type ActionKind, type ActionSpec, type CheckSpec, type ConditionSpec } from './types.js';
import type { NemesisFaultSpec, NemesisSpec, ScenarioSpec, StepSpec, WorkloadSpec } from './types.js';
import { bool, byteRange, duration, Fields, fields, int, isObj, isPlainName, list, name, num, oneOf, pickKind, positive, positiveDuration, Problems } from './values.js';
import { range, rate, reader, readYaml, show, str, text, type Read } from './values.js';
import { BLOCK_SIZE, DIRECTION, EVENT_TYPE, EXIT_CODE, SEED } from './values.js';

/** Every problem of a scenario file, one per line in the message. */
export class ScenarioSpecError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ScenarioSpecError';
  }
}

/** The names a scenario may use from its lab. */
export interface LabNames {
  /** each array's SP names ([] for a single-process array) and LUN names */
  arrays: Map<string, { sps: string[]; luns: string[] }>;
  links: string[];
  /** the declared sites, and one per array in none (named after it) */
  sites: string[];
  mirrors: string[];
  groups: string[];
  /** heartbeat hosts: their agents' event streams are sources `hb:HOST` */
  heartbeatHosts: string[];
  /** sites with an automation controller: their event streams are sources `automation:SITE` */
  automationSites: string[];
}

export function labNamesOf(lab: Lab): LabNames {
  return {
    // An array has the two SPs A and B exactly when its lab entry has `sps:`.
    arrays: new Map(lab.arrays.map((a) => [a.name, { sps: a.sps ? ['A', 'B'] : [], luns: a.luns.map((l) => l.name) }])),
    links: [...lab.links.map((l) => l.name), ...(lab.heartbeat ? heartbeatLinkNames(lab.heartbeat) : [])],
    sites: lab.sites.map((s) => s.name),
    mirrors: lab.mirrors.map((m) => m.name),
    groups: lab.groups.map((g) => g.name),
    heartbeatHosts: lab.heartbeat?.hosts.map((h) => h.name) ?? [],
    automationSites: lab.automation?.controllers.map((c) => c.site) ?? [],
  };
}

/** Parses and checks a scenario; `labNames` (when given) checks the names it takes from the lab. */
export function parseScenario(text: string, file: string, opts: { labNames?: LabNames } = {}): ScenarioSpec {
  const p = new Problems();
  const root = readYaml(text, p);
  const spec = p.list.length ? undefined : new ScenarioParser(p, opts.labNames).scenario(root, resolve(file));
  if (!spec || p.list.length) throw new ScenarioSpecError(p.list);
  return spec;
}

/** Reads a scenario file and the lab file it names (relative to the scenario's directory), and checks both. */
export function loadScenario(file: string): ScenarioSpec {
  const path = resolve(file);
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ScenarioSpecError([`cannot read the scenario file ${path}: ${(e as Error).message}`]);
  }
  const p = new Problems();
  const root = readYaml(content, p);
  if (p.list.length) throw new ScenarioSpecError(p.list);
  const lab = isObj(root) && typeof root.lab === 'string' && root.lab !== '' ? readLabNames(resolve(dirname(path), root.lab), p) : undefined;
  const spec = new ScenarioParser(p, lab).scenario(root, path);
  if (!spec || p.list.length) throw new ScenarioSpecError(p.list);
  return spec;
}

/** The names of the lab file at `path`; its problems count as the scenario's, under `lab`. */
function readLabNames(path: string, p: Problems): LabNames | undefined {
  try {
    return labNamesOf(loadLab(path));
  } catch (e) {
    if (e instanceof LabError) for (const q of e.problems) p.add('lab', `invalid lab file ${path}: ${q}`);
    else p.add('lab', (e as Error).message);
    return undefined;
  }
}

// ---- the keys of each kind ----

const TOP_KEYS = ['scenario', 'description', 'lab', 'seed', 'timeout', 'workloads', 'steps', 'nemesis', 'checks'];
const DEFAULT_TIMEOUT_MS = 300_000;
const DEFAULT_WAIT_MS = 60_000;

const WORKLOAD_KEYS: Record<WorkloadSpec['kind'], readonly string[]> = {
  ledger: ['array', 'lun', 'sps', 'blocks', 'connections', 'depth', 'blockSize', 'fua'], prefix: ['array', 'luns', 'depth', 'blocks'],
  fio: ['array', 'lun', 'sp', 'args'], command: ['run'],
};
const WORKLOAD_KINDS = Object.keys(WORKLOAD_KEYS) as WorkloadSpec['kind'][];
const WORKLOAD_COMMON = ['name', 'kind', 'start', 'duration'];

const STEP_KEYS = ['name', 'at', 'expectError'];
const [LINK, ARRAY, SITE, ARRAY_SP, ARRAY_LUN] = [['link'], ['array'], ['site'], ['array', 'sp'], ['array', 'lun']];
const ACTION_KEYS: Record<ActionKind, readonly string[]> = {
  'link-cut': ['link', 'direction', 'reset'], 'link-restore': LINK, 'link-settings-restore': LINK,
  'link-set': ['link', 'direction', 'latency', 'jitter', 'bandwidth'],
  'sp-crash': ARRAY_SP, 'sp-restart': ARRAY_SP,
  'power-fail': ARRAY, 'power-restore': ARRAY, 'battery-fail': ARRAY, 'battery-repair': ARRAY,
  'array-crash': ARRAY, 'array-restart': ARRAY,
  'site-fail': SITE, 'site-restore': SITE,
  'disk-fault': ['array', 'lun', 'errors', 'rate', 'range', 'errno', 'delay', 'jitter', 'loseUnflushed', 'seed'],
  'disk-clear': ARRAY_LUN,
  'mirror-promote': ['mirror', 'array', 'force', 'fromSnapshot'], 'group-promote': ['group', 'array', 'force', 'fromSnapshot'],
  'mirror-resolve': ['mirror', 'array', 'survivor'],
  'mirror-synchronize': ['mirror', 'array'], 'mirror-fracture': ['mirror', 'array'],
  'group-pause': ['group', 'array'], 'group-resume': ['group', 'array'],
  'workload-stop': ['workload'], 'workload-wait': ['workload', 'timeout'],
  wait: ['condition', 'timeout'], sleep: [], command: ['run', 'expectExit'],
};
const ACTION_KINDS = Object.keys(ACTION_KEYS) as ActionKind[];

const CONDITION_KEYS: Record<ConditionSpec['kind'], readonly string[]> = {
  'mirror-state': ['mirror', 'array', 'state'], 'group-coherent': ['group', 'array'], 'group-drained': ['group', 'array'],
  event: ['type', 'source'], 'workload-done': ['workload'], 'array-state': ['array', 'state'],
};
const CONDITION_KINDS = Object.keys(CONDITION_KEYS) as ConditionSpec['kind'][];

const NEMESIS_KEYS = ['name', 'from', 'until', 'every', 'faults'];
const FAULT_COMMON = ['for', 'weight'];
const FAULT_KEYS: Record<NemesisFaultSpec['kind'], readonly string[]> = {
  'link-cut': ['link', 'directions'], 'link-latency': ['link', 'latency'], 'sp-crash': ['array', 'sps'], 'power-fail': ARRAY,
  'disk-errors': ['array', 'lun', 'errors', 'errno', 'rate'], 'array-crash': ARRAY, 'site-fail': SITE,
};
const FAULT_KINDS = Object.keys(FAULT_KEYS) as NemesisFaultSpec['kind'][];

// ---- the parser ----

type Section = 'workloads' | 'steps' | 'nemesis';

/** One scenario's parse: the problems, the lab's names, and the workloads and steps seen so far. */
class ScenarioParser implements CheckNames {
  /** by name; undefined for a workload too broken to have a kind (a reference to it is still no second problem) */
  private readonly workloads = new Map<string, WorkloadSpec | undefined>();
  /** each section's names, with the index of the first item of that name */
  private readonly seen: Record<Section, Map<string, number>> = { workloads: new Map(), steps: new Map(), nemesis: new Map() };
  private timeoutMs = DEFAULT_TIMEOUT_MS;

  constructor(readonly p: Problems, private readonly lab: LabNames | undefined) {}

  scenario(root: unknown, file: string): ScenarioSpec | undefined {
    if (!isObj(root)) return this.p.add('', `a scenario file must be a mapping (keys: ${TOP_KEYS.join(', ')}), not ${show(root)}`);
    const f = fields(root, '', this.p, TOP_KEYS);
    const fileName = basename(file, extname(file));
    if (!f.has('scenario') && !isPlainName(fileName)) this.p.add('scenario', `missing, and the file name ${show(fileName)} is no valid name (1 to 64 characters from A-Z a-z 0-9 . _ -, not . or ..)`);
    const [scenarioName, description, lab] = [f.opt('scenario', name, fileName), f.opt('description', text, ''), f.req('lab', str)];
    const head = { name: scenarioName, description, file, labFile: resolve(dirname(file), lab), seed: f.opt('seed', SEED, 1) };
    this.timeoutMs = f.opt('timeout', positiveDuration, DEFAULT_TIMEOUT_MS);
    // In this order: steps name workloads; checks name workloads and steps.
    const workloads = this.section(f, 'workloads', (v, at, i) => this.workloadSpec(v, at, i));
    const steps = this.section(f, 'steps', (v, at, i) => this.stepSpec(v, at, i));
    const nemesis = this.section(f, 'nemesis', (v, at, i) => this.nemesisSpec(v, at, i));
    const checks = this.section(f, 'checks', (v, at) => this.checkSpec(v, at));
    return { ...head, timeoutMs: this.timeoutMs, workloads, steps, nemesis, checks };
  }

  /** A top-level list, each item read by `item` (the bad ones left out: they are reported). */
  private section<T>(f: Fields, key: string, item: (v: unknown, at: string, i: number) => T | undefined): T[] {
    const v = f.o[key];
    if (!Array.isArray(v)) return f.has(key) ? (this.p.add(key, `must be a list, not ${show(v)}`) ?? []) : [];
    return v.flatMap((x, i) => item(x, `${key}[${i}]`, i) ?? []);
  }

  /** Names are unique among the workloads, the steps, the nemeses. */
  private claim(section: Section, itemName: string, i: number): void {
    const first = this.seen[section].get(itemName);
    if (first !== undefined) this.p.add(`${section}[${i}].name`, `${show(itemName)} is already the name of ${section}[${first}]`);
    else if (itemName !== '') this.seen[section].set(itemName, i);
  }

  // ---- names: the lab's, and the file's own ----

  /**
   * A name that must be in `known()` (undefined: unknown yet, e.g. no lab given; any name passes);
   * with `prefixes`, a reference may also be one of them and a name (`hb:HOST`, `automation:SITE`).
   */
  private ref(what: string, known: () => readonly string[] | undefined, label: string, prefixes: readonly string[] = []): Read<string> {
    return reader('', (v, at, p) => {
      const prefix = typeof v === 'string' ? prefixes.find((x) => v.startsWith(x)) : undefined;
      const n = prefix ? (name((v as string).slice(prefix.length), at, p) === undefined ? undefined : (v as string)) : name(v, at, p);
      const names = known();
      if (n === undefined || names === undefined || names.includes(n)) return n;
      return p.add(at, `unknown ${what} ${show(n)} (${label}: ${names.join(', ') || 'none'})`);
    });
  }

  private readonly labRef = (what: string, names: (lab: LabNames) => readonly string[]) => this.ref(what, () => this.lab && names(this.lab), `${what}s of the lab`);

  readonly array = this.labRef('array', (lab) => [...lab.arrays.keys()]);
  private readonly link = this.labRef('link', (lab) => lab.links);
  private readonly site = this.labRef('site', (lab) => lab.sites);
  readonly mirror = this.labRef('mirror', (lab) => lab.mirrors);
  private readonly group = this.labRef('group', (lab) => lab.groups);
  /** an array, a link, a heartbeat agent `hb:HOST`, an automation controller `automation:SITE`, or the lab's supervisor */
  readonly source = this.ref('event source', () => this.lab && this.sources(this.lab), 'arrays, links, hb:HOST, automation:SITE and lab', ['hb:', 'automation:']);
  private readonly sources = (lab: LabNames) => ['lab', ...lab.arrays.keys(), ...lab.links, ...lab.heartbeatHosts.map((h) => `hb:${h}`), ...lab.automationSites.map((s) => `automation:${s}`)];
  readonly stepRef = this.ref('step', () => [...this.seen.steps.keys()], 'named steps');

  private readonly lunOf = (array: string) => this.ref('LUN', () => this.lab?.arrays.get(array)?.luns, `LUNs of ${array}`);
  /** The SPs of an array (without the lab: the two of a two-SP array). */
  private readonly spsOf = (array: string) => (this.lab ? (this.lab.arrays.get(array)?.sps ?? []) : ['A', 'B']);
  readonly spOf = (array: string) => this.ref('SP', () => (this.lab && !this.lab.arrays.has(array) ? undefined : this.spsOf(array)), `SPs of ${array}`);

  /** `array` and `lun` of the mapping, the LUN one of the array's. */
  arrayLun(f: Fields): { array: string; lun: string } {
    const array = f.req('array', this.array);
    return { array, lun: f.req('lun', this.lunOf(array)) };
  }

  /** An array with SPs: SP crashes, power and battery faults need one. */
  private readonly spArray = reader('', (v, at, p) => {
    const a = this.array(v, at, p);
    return a === undefined || this.spsOf(a).length > 0 ? a : p.add(at, `array ${a} has no SPs (no sps: in the lab file): this needs a two-SP array`);
  });

  /** `ARRAY:LUN` */
  readonly image = reader('', (v, at, p) => {
    const s = str(v, at, p);
    const m = s === undefined ? undefined : /^([^:]+):([^:]+)$/.exec(s);
    if (!m) return s === undefined ? undefined : p.add(at, `must be ARRAY:LUN (e.g. alpha:disk0), not ${show(s)}`);
    return this.array(m[1], at, p) !== undefined && this.lunOf(m[1]!)(m[2], at, p) !== undefined ? s : undefined;
  });

  /** A workload by name; when `kinds` is given, `user` (a check) accepts only those kinds. */
  workloadRef(kinds?: readonly WorkloadSpec['kind'][], user?: string): Read<string> {
    const known = this.ref('workload', () => [...this.workloads.keys()], 'workloads');
    return reader('', (v, at, p) => {
      const n = known(v, at, p);
      const kind = n === undefined ? undefined : this.workloads.get(n)?.kind;
      if (!kinds || kind === undefined || kinds.includes(kind)) return n;
      const wanted = kinds.length > 1 ? `${kinds.slice(0, -1).join(', ')} or ${kinds.at(-1)}` : kinds[0];
      return p.add(at, `workload ${n} is a ${kind} workload; ${user} needs a ${wanted} workload`);
    });
  }

  // ---- workloads ----

  private workloadSpec(v: unknown, at: string, i: number): WorkloadSpec | undefined {
    if (!isObj(v)) return this.p.add(at, `must be a mapping (${WORKLOAD_COMMON.join(', ')}, ...), not ${show(v)}`);
    const kind = v.kind === undefined ? this.p.add(`${at}.kind`, `missing (required: ${WORKLOAD_KINDS.join(', ')})`) : oneOf(WORKLOAD_KINDS)(v.kind, `${at}.kind`, this.p);
    // Without a kind, every kind's keys pass: one problem (the kind), not one per key.
    const keys = kind ? WORKLOAD_KEYS[kind] : Object.values(WORKLOAD_KEYS).flat();
    const f = fields(v, at, this.p, [...WORKLOAD_COMMON, ...keys]);
    const base = { name: f.req('name', name), startMs: f.opt('start', duration, 0), durationMs: f.opt('duration', positiveDuration, null) };
    this.claim('workloads', base.name, i);
    const spec = kind && this.workloadOf(kind, f, base);
    if (base.name !== '') this.workloads.set(base.name, spec);
    return spec;
  }

  private workloadOf(kind: WorkloadSpec['kind'], f: Fields, base: { name: string; startMs: number; durationMs: number | null }): WorkloadSpec {
    if (kind === 'command') return { ...base, kind, run: f.req('run', str) };
    const array = f.req('array', this.array);
    switch (kind) {
      case 'ledger': {
        const [lun, sps] = [f.req('lun', this.lunOf(array)), f.opt('sps', list(this.spOf(array), { nonEmpty: true }), null)];
        const [blocks, connections, depth] = [f.opt('blocks', int(1), 256), f.opt('connections', int(1, 64), 4), f.opt('depth', int(1, 256), 4)];
        return { ...base, kind, array, lun, sps, blocks, connections, depth, blockSize: f.opt('blockSize', BLOCK_SIZE, 4096), fua: f.opt('fua', num(0, 1), 0) };
      }
      case 'prefix':
        return { ...base, kind, array, luns: f.req('luns', list(this.lunOf(array), { nonEmpty: true })), depth: f.opt('depth', int(1, 256), 4), blocks: f.opt('blocks', int(1), null) };
      case 'fio':
        // fio options may repeat (e.g. one --name per job)
        return { ...base, kind, array, lun: f.req('lun', this.lunOf(array)), sp: f.opt('sp', this.spOf(array), null), args: f.opt('args', list(str, { unique: false }), []) };
    }
  }

  // ---- steps and their actions ----

  private stepSpec(v: unknown, at: string, i: number): StepSpec | undefined {
    const picked = pickKind(v, at, this.p, ACTION_KINDS, STEP_KEYS, 'action');
    if (!isObj(v)) return undefined; // reported by pickKind
    const f = new Fields(this.p, v, at);
    const stepName = f.opt('name', name, null);
    if (stepName !== null) this.claim('steps', stepName, i);
    const step = { name: stepName, atMs: f.opt('at', duration, null), expectError: f.opt('expectError', str, null) };
    return picked && { ...step, action: this.action(picked.kind, picked.body, picked.at) };
  }

  private action(kind: ActionKind, body: unknown, at: string): ActionSpec {
    if (kind === 'sleep') return { kind, ms: duration(body, at, this.p) ?? 0 };
    // `workload-stop: w1` is short for `workload-stop: { workload: w1 }`
    if ((kind === 'workload-stop' || kind === 'workload-wait') && typeof body === 'string') body = { workload: body };
    const f = fields(body, at, this.p, ACTION_KEYS[kind]);
    switch (kind) {
      case 'link-cut':
        return { kind, link: f.req('link', this.link), direction: f.opt('direction', DIRECTION, 'both'), reset: f.opt('reset', bool, false) };
      case 'link-restore':
      case 'link-settings-restore':
        return { kind, link: f.req('link', this.link) };
      case 'link-set':
        return this.linkSet(f);
      case 'sp-crash':
      case 'sp-restart': {
        const array = f.req('array', this.spArray);
        return { kind, array, sp: f.req('sp', this.spOf(array)) };
      }
      case 'power-fail':
      case 'power-restore':
      case 'battery-fail':
      case 'battery-repair':
        return { kind, array: f.req('array', this.spArray) };
      case 'array-crash':
      case 'array-restart':
        return { kind, array: f.req('array', this.array) };
      case 'site-fail':
      case 'site-restore':
        return { kind, site: f.req('site', this.site) };
      case 'disk-fault':
        return this.diskFault(f);
      case 'disk-clear':
        return { kind, ...this.arrayLun(f) };
      case 'mirror-promote':
        return { kind, mirror: f.req('mirror', this.mirror), array: f.req('array', this.array), force: f.opt('force', bool, false), fromSnapshot: f.opt('fromSnapshot', bool, false) };
      case 'group-promote':
        return { kind, group: f.req('group', this.group), array: f.req('array', this.array), force: f.opt('force', bool, false), fromSnapshot: f.opt('fromSnapshot', bool, false) };
      case 'mirror-resolve': {
        // The survivor's side is the natural one to ask, unless told otherwise.
        const mirror = f.req('mirror', this.mirror);
        const survivor = f.req('survivor', this.array);
        return { kind, mirror, survivor, array: f.opt('array', this.array, survivor) };
      }
      case 'mirror-synchronize':
      case 'mirror-fracture':
        return { kind, mirror: f.req('mirror', this.mirror), array: f.opt('array', this.array, null) };
      case 'group-pause':
      case 'group-resume':
        return { kind, group: f.req('group', this.group), array: f.opt('array', this.array, null) };
      case 'workload-stop':
        return { kind, workload: f.req('workload', this.workloadRef()) };
      case 'workload-wait':
        // A workload may rightly run long: the run's own bound is the default.
        return { kind, workload: f.req('workload', this.workloadRef()), timeoutMs: f.opt('timeout', positiveDuration, this.timeoutMs) };
      case 'wait':
        return { kind, condition: f.req('condition', this.condition), timeoutMs: f.opt('timeout', positiveDuration, DEFAULT_WAIT_MS) };
      case 'command':
        return { kind, run: f.req('run', str), expectExit: f.opt('expectExit', EXIT_CODE, 0) };
    }
  }

  private linkSet(f: Fields): ActionSpec {
    if (f.live && !['latency', 'jitter', 'bandwidth'].some((k) => f.has(k))) this.p.add(f.at, 'give at least one of latency, jitter, bandwidth');
    const [link, direction] = [f.req('link', this.link), f.opt('direction', DIRECTION, 'both')];
    const [latencyMs, jitterMs, bandwidth] = [f.opt('latency', duration, null), f.opt('jitter', duration, null), f.opt('bandwidth', rate, null)];
    return { kind: 'link-set', link, direction, latencyMs, jitterMs, bandwidth };
  }

  /** As `sanbox fault disk`: every op fails unless a delay or loseUnflushed is given (then none, unless listed). */
  private diskFault(f: Fields): ActionSpec {
    const { array, lun } = this.arrayLun(f);
    const [delayMs, jitterMs, loseUnflushed] = [f.opt('delay', duration, 0), f.opt('jitter', duration, 0), f.opt('loseUnflushed', bool, false)];
    const slow = delayMs + jitterMs > 0;
    const errors = f.opt('errors', list(oneOf(DISK_OPS)), slow || loseUnflushed ? [] : [...DISK_OPS]);
    const [rate, range, errno] = [f.opt('rate', num(0, 1), 1), f.opt('range', byteRange, null), f.opt('errno', oneOf(DISK_ERRNOS), 'EIO')];
    const good = f.valid('errors', 'delay', 'jitter', 'loseUnflushed', 'range'); // checks across fields: only on good values
    if (good && delayMs + jitterMs > MAX_DELAY_MS) this.p.add(f.path('delay'), `delay ${delayMs} ms + jitter ${jitterMs} ms is over ${MAX_DELAY_MS} ms`);
    if (good && errors.length === 0 && !slow && !loseUnflushed) this.p.add(f.at, 'no errors, no delay and no loseUnflushed: this fault does nothing');
    if (good && range && errors.length === 0 && !slow) this.p.add(f.path('range'), 'limits errors and delays only (loseUnflushed holds writes of the whole LUN): give errors or a delay with it, or leave it out');
    return { kind: 'disk-fault', array, lun, errors, rate, range, errno, delayMs, jitterMs, loseUnflushed, seed: f.opt('seed', SEED, null) };
  }

  // ---- conditions (a step's wait, a check) ----

  readonly condition = reader<ConditionSpec>({ kind: 'workload-done', workload: '' }, (v, at) => this.conditionSpec(v, at));

  private conditionSpec(v: unknown, at: string): ConditionSpec | undefined {
    const picked = pickKind(v, at, this.p, CONDITION_KINDS, [], 'condition');
    if (!picked) return undefined;
    const { kind } = picked;
    const f = fields(picked.body, picked.at, this.p, CONDITION_KEYS[kind]);
    switch (kind) {
      case 'mirror-state':
        return { kind, mirror: f.req('mirror', this.mirror), array: f.opt('array', this.array, null), state: f.req('state', oneOf(MIRROR_CONDITION_STATES)) };
      case 'group-coherent':
      case 'group-drained':
        return { kind, group: f.req('group', this.group), array: f.opt('array', this.array, null) };
      case 'event':
        return { kind, type: f.req('type', EVENT_TYPE), source: f.opt('source', this.source, null) };
      case 'workload-done':
        return { kind, workload: f.req('workload', this.workloadRef()) };
      case 'array-state':
        return { kind, array: f.req('array', this.array), state: f.req('state', oneOf(['running', 'crashed'] as const)) };
    }
  }

  // ---- the nemesis ----

  private nemesisSpec(v: unknown, at: string, i: number): NemesisSpec {
    const f = fields(v, at, this.p, NEMESIS_KEYS);
    const nemesisName = f.opt('name', name, `nemesis${i}`);
    this.claim('nemesis', nemesisName, i);
    const [fromMs, untilMs] = [f.opt('from', duration, 0), f.req('until', duration)];
    if (f.valid('from', 'until') && fromMs >= untilMs) this.p.add(f.path('until'), `must be after from (${show(f.o.from ?? 0)}), not ${show(f.o.until)}`);
    return { name: nemesisName, fromMs, untilMs, everyMs: f.req('every', range), faults: f.req('faults', list(this.fault, { nonEmpty: true })) };
  }

  private readonly fault = reader<NemesisFaultSpec>({ kind: 'array-crash', array: '', forMs: { min: 0, max: 0 }, weight: 1 }, (v, at) => this.faultSpec(v, at));

  private faultSpec(v: unknown, at: string): NemesisFaultSpec | undefined {
    const picked = pickKind(v, at, this.p, FAULT_KINDS, FAULT_COMMON, 'fault');
    if (!picked) return undefined;
    const outer = new Fields(this.p, v as Record<string, unknown>, at); // a mapping: pickKind checked it
    const common = { forMs: outer.req('for', range), weight: outer.opt('weight', positive, 1) };
    const { kind } = picked;
    const f = fields(picked.body, picked.at, this.p, FAULT_KEYS[kind]);
    switch (kind) {
      case 'link-cut':
        return { kind, link: f.req('link', this.link), directions: f.opt('directions', list(DIRECTION, { nonEmpty: true }), ['both']), ...common };
      case 'link-latency':
        return { kind, link: f.req('link', this.link), latencyMs: f.req('latency', range), ...common };
      case 'sp-crash': {
        const array = f.req('array', this.spArray);
        return { kind, array, sps: f.opt('sps', list(this.spOf(array), { nonEmpty: true }), this.spsOf(array)), ...common };
      }
      case 'power-fail':
        return { kind, array: f.req('array', this.spArray), ...common };
      case 'disk-errors': {
        const [where, errors] = [this.arrayLun(f), f.opt('errors', list(oneOf(DISK_OPS), { nonEmpty: true }), [...DISK_OPS])];
        return { kind, ...where, errors, errno: f.opt('errno', oneOf(DISK_ERRNOS), 'EIO'), rate: f.opt('rate', num(0, 1), 1), ...common };
      }
      case 'array-crash':
        return { kind, array: f.req('array', this.array), ...common };
      case 'site-fail':
        return { kind, site: f.req('site', this.site), ...common };
    }
  }

  // ---- checks (./checks.ts) ----

  private checkSpec(v: unknown, at: string): CheckSpec | undefined {
    return readCheck(v, at, this);
  }

  workload(n: string): WorkloadSpec | undefined {
    return this.workloads.get(n);
  }

  stepIndex(n: string): number | undefined {
    return this.seen.steps.get(n);
  }
}
