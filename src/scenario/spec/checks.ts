/**
 * The checks of a scenario file (`checks:`, read for ./parse.ts): each kind's keys, and the
 * reading of one check with the names the parser knows (the lab's, the file's workloads and
 * steps), every problem with its path as elsewhere.
 */
import type { CheckKind, CheckSpec, ConditionSpec, WorkloadSpec } from './types.js';
import { bool, fields, int, list, oneOf, pickKind, reader, seconds, show, size, str, type Fields, type Problems, type Read } from './values.js';
import { EVENT_TYPE, EXIT_CODE, HOST_ERRNOS } from './values.js';

const ARRAY_LUN = ['array', 'lun'];

export const CHECK_KEYS: Record<CheckKind, readonly string[]> = {
  ledger: ['workload', 'array', 'sps', 'allowReadErrors'], prefix: ['workload', 'array', 'maxLag', 'maxMissingAcked'],
  'mirror-verify': ['mirror', 'array'], 'images-equal': ['a', 'b'], rto: ['from', 'to', 'max'], 'no-split-brain': [], fs: ARRAY_LUN,
  'host-errors': ['workload', 'errno', 'min', 'max'], event: ['type', 'source', 'min', 'max'],
  'event-sum': ['type', 'field', 'source', 'after', 'min', 'max'],
  condition: [], // its body is a condition in the one-key form
  'workload-exit': ['workload', 'exitCode'],
};
export const CHECK_KINDS = Object.keys(CHECK_KEYS) as CheckKind[];

/** What a check may name: the parser's readers of the lab's names and of the file's own. */
export interface CheckNames {
  readonly p: Problems;
  readonly array: Read<string>;
  readonly mirror: Read<string>;
  /** `ARRAY:LUN` */
  readonly image: Read<string>;
  /** an event source: an array, a link, `hb:HOST`, `automation:SITE` or `lab` */
  readonly source: Read<string>;
  /** a named step */
  readonly stepRef: Read<string>;
  readonly condition: Read<ConditionSpec>;
  /** a workload of the file; with `kinds`, `user` (a check) takes only those */
  workloadRef(kinds?: readonly WorkloadSpec['kind'][], user?: string): Read<string>;
  spOf(array: string): Read<string>;
  arrayLun(f: Fields): { array: string; lun: string };
  /** a workload of the file (undefined: none, or too broken to have a kind) */
  workload(name: string): WorkloadSpec | undefined;
  /** the index of the named step in `steps` */
  stepIndex(name: string): number | undefined;
}

/** A field of an event's details, as its stream sends it (`bytesSent`); not seq, time or type, the journal's own. */
const EVENT_FIELD = reader('', (v, at, p) => {
  const s = str(v, at, p);
  if (s === undefined) return undefined;
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(s)) return p.add(at, `must be the name of a field of the event (letters, digits and _, e.g. bytesSent), not ${show(s)}`);
  return ['seq', 'time', 'type'].includes(s) ? p.add(at, `${s} is the event journal's own field, not a detail to sum`) : s;
});

export function readCheck(v: unknown, at: string, n: CheckNames): CheckSpec | undefined {
  const picked = pickKind(v, at, n.p, CHECK_KINDS, [], 'check');
  if (!picked) return undefined;
  const { kind } = picked;
  if (kind === 'condition') return { kind, condition: n.condition(picked.body, picked.at, n.p) ?? n.condition.fallback };
  const f = fields(picked.body, picked.at, n.p, CHECK_KEYS[kind]);
  switch (kind) {
    case 'ledger':
      return ledgerCheck(f, n);
    case 'prefix': {
      const [workload, array] = [f.req('workload', n.workloadRef(['prefix'], 'a prefix check')), f.req('array', n.array)];
      return { kind, workload, array, maxLagSeconds: f.opt('maxLag', seconds, null), maxMissingAcked: f.opt('maxMissingAcked', int(0), null) };
    }
    case 'mirror-verify':
      return { kind, mirror: f.req('mirror', n.mirror), array: f.opt('array', n.array, null) };
    case 'images-equal':
      return { kind, a: f.req('a', n.image), b: f.req('b', n.image) };
    case 'rto':
      return rtoCheck(f, n);
    case 'no-split-brain':
      return { kind };
    case 'fs':
      return { kind, ...n.arrayLun(f) };
    case 'host-errors': {
      // a command workload's errors are not counted: it is not a block client sanbox runs
      const workload = f.req('workload', n.workloadRef(['ledger', 'prefix', 'fio'], 'a host-errors check'));
      return { kind, workload, errno: f.opt('errno', oneOf(HOST_ERRNOS), 'EIO'), ...counts(f) };
    }
    case 'event':
      return { kind, type: f.req('type', EVENT_TYPE), source: f.opt('source', n.source, null), ...counts(f) };
    case 'event-sum': {
      const [type, field, source, after] = [f.req('type', EVENT_TYPE), f.req('field', EVENT_FIELD), f.opt('source', n.source, null), f.opt('after', n.stepRef, null)];
      return { kind, type, field, source, after, ...bounds(f, size, () => 0) };
    }
    case 'workload-exit':
      return { kind, workload: f.req('workload', n.workloadRef()), exitCode: f.opt('exitCode', EXIT_CODE, 0) };
  }
}

function ledgerCheck(f: Fields, n: CheckNames): CheckSpec {
  const workload = f.req('workload', n.workloadRef(['ledger'], 'a ledger check'));
  const array = f.opt('array', n.array, null);
  const w = n.workload(workload);
  // The SPs read through are those of the array checked: by default the workload's own.
  const readArray = array ?? (w?.kind === 'ledger' ? w.array : '');
  return { kind: 'ledger', workload, array, sps: f.opt('sps', list(n.spOf(readArray), { nonEmpty: true }), null), allowReadErrors: f.opt('allowReadErrors', bool, false) };
}

function rtoCheck(f: Fields, n: CheckNames): CheckSpec {
  const [from, to] = [f.req('from', n.stepRef), f.req('to', n.stepRef)];
  const [i, j] = [n.stepIndex(from), n.stepIndex(to)];
  if (i !== undefined && j !== undefined && i > j) n.p.add(f.path('to'), `step ${show(to)} (steps[${j}]) comes before step ${show(from)} (steps[${i}])`);
  return { kind: 'rto', from, to, maxSeconds: f.req('max', seconds) };
}

/** `min` and `max` (default none) of a count; min defaults to 1, but `max: 0` alone means never. */
function counts(f: Fields): { min: number; max: number | null } {
  return bounds(f, int(0), (max) => Math.min(1, max ?? 1));
}

/** `min` and `max` (default none), max not below min; `minDefault` may depend on max. */
function bounds(f: Fields, read: Read<number>, minDefault: (max: number | null) => number): { min: number; max: number | null } {
  const max = f.opt('max', read, null);
  const min = f.opt('min', read, minDefault(max));
  if (max !== null && f.valid('min', 'max') && max < min) f.p.add(f.path('max'), `must be at least min (${min}), not ${max}`);
  return { min, max };
}
