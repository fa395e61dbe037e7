/**
 * Scalar values of a scenario file (names, numbers, durations, ranges, sizes, rates) and the
 * reading of its mappings. Every problem is kept with its path in the document
 * (`workloads[0].depth: must be an integer from 1 to 256, not 0`), so one pass over the file
 * reports them all instead of stopping at the first.
 */
import { parseDocument } from 'yaml';
import { isPlainName, parseSize } from '../../array/index.js';
import { parseDuration, parseRate } from '../../cli/lab/index.js';
import { EVENT_TYPES } from '../../events/index.js';
import { ERR } from '../../nbd/index.js';
import type { LinkDirectionSpec, Range } from './types.js';

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A value as a message shows it: JSON (strings quoted), `nothing` for a missing one. */
export const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));

/** The problems found so far, each `PATH: MESSAGE`. */
export class Problems {
  readonly list: string[] = [];
  /** Records a problem; returns undefined so that a reader can `return p.add(...)`. */
  add(at: string, message: string): undefined {
    this.list.push(at ? `${at}: ${message}` : message);
    return undefined;
  }
}

/**
 * Reads one value at a path: the value, or undefined after recording a problem. `fallback` is a
 * stand-in of the right type for a missing or bad value; it never reaches a caller of the parser,
 * because the parse fails when any problem was recorded.
 */
export interface Read<T> {
  (v: unknown, at: string, p: Problems): T | undefined;
  fallback: T;
}

export function reader<T>(fallback: T, read: (v: unknown, at: string, p: Problems) => T | undefined): Read<T> {
  return Object.assign(read, { fallback });
}

/**
 * A mapping of the document. `req` and `opt` read one field each; a null field counts as absent
 * (so `sps: null` means the default). A field whose value was bad is remembered, so that checks
 * across fields (`from` before `until`) run only on good values and add no noise.
 */
export class Fields {
  private readonly bad = new Set<string>();
  constructor(
    readonly p: Problems,
    readonly o: Obj,
    readonly at: string,
    /** false for a stand-in of something that was not a mapping: missing fields are not reported again */
    readonly live = true,
  ) {}

  path(key: string): string {
    return this.at ? `${this.at}.${key}` : key;
  }

  has(key: string): boolean {
    return this.o[key] !== undefined && this.o[key] !== null;
  }

  /** Every one of `keys` is absent or was read without a problem. */
  valid(...keys: string[]): boolean {
    return this.live && keys.every((k) => !this.bad.has(k));
  }

  req<T>(key: string, read: Read<T>): T {
    if (this.has(key)) return this.read(key, read);
    this.bad.add(key);
    if (this.live) this.p.add(this.path(key), 'missing (required)');
    return read.fallback;
  }

  opt<T, D extends T | null>(key: string, read: Read<T>, dflt: D): T | D {
    return this.has(key) ? this.read(key, read) : dflt;
  }

  private read<T>(key: string, read: Read<T>): T {
    const v = read(this.o[key], this.path(key), this.p);
    if (v !== undefined) return v;
    this.bad.add(key);
    return read.fallback;
  }
}

/** The mapping at `at` with only `keys` allowed (each unknown key is a problem: typos never pass). */
export function fields(v: unknown, at: string, p: Problems, keys: readonly string[]): Fields {
  if (v === undefined || v === null) return new Fields(p, {}, at);
  if (!isObj(v)) {
    p.add(at, `must be a mapping${keys.length ? ` (keys: ${keys.join(', ')})` : ''}, not ${show(v)}`);
    return new Fields(p, {}, at, false);
  }
  const f = new Fields(p, v, at);
  for (const k of Object.keys(v)) if (!keys.includes(k)) p.add(f.path(k), `unknown key (known: ${keys.join(', ') || 'none'})`);
  return f;
}

/**
 * The one-key form of actions, conditions, checks and nemesis faults, `KIND: BODY`: exactly one
 * key of `kinds` in the mapping, beside its `extra` keys (a step's name, at, expectError).
 */
export function pickKind<K extends string>(
  v: unknown,
  at: string,
  p: Problems,
  kinds: readonly K[],
  extra: readonly string[],
  what: string,
): { kind: K; body: unknown; at: string } | undefined {
  const choices = `${extra.length ? `${extra.join(', ')}, and ` : ''}one ${what}: ${kinds.join(', ')}`;
  if (!isObj(v)) return p.add(at, `must be a mapping (${choices}), not ${show(v)}`);
  const isKind = (k: string): k is K => (kinds as readonly string[]).includes(k);
  const unknown = Object.keys(v).filter((k) => !isKind(k) && !extra.includes(k));
  for (const k of unknown) p.add(`${at}.${k}`, `unknown key (known: ${choices})`);
  const found = Object.keys(v).filter(isKind);
  if (found.length > 1) return p.add(at, `${found.length} ${what}s (${found.join(', ')}): give exactly one`);
  // A misspelt kind is already reported as an unknown key.
  if (found.length === 0) return unknown.length ? undefined : p.add(at, `no ${what} (one of: ${kinds.join(', ')})`);
  return { kind: found[0]!, body: v[found[0]!], at: `${at}.${found[0]}` };
}

/** The YAML document as plain data; malformed YAML is a problem with its line (nothing else is read then). */
export function readYaml(content: string, p: Problems): unknown {
  const doc = parseDocument(content, { uniqueKeys: true, prettyErrors: true });
  for (const e of doc.errors) {
    const pos = e.linePos?.[0];
    // prettyErrors puts the position and a snippet into the message: keep its first line, without the position.
    const message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    p.add(pos ? `line ${pos.line}, column ${pos.col}` : '', `malformed YAML: ${message}`);
  }
  if (doc.errors.length) return undefined;
  try {
    return doc.toJS();
  } catch (e) {
    return p.add('', `malformed YAML: ${(e as Error).message}`); // e.g. too many alias expansions
  }
}

// ---- scalars ----

/** Any string, the empty one included. */
export const text = reader('', (v, at, p) => (typeof v === 'string' ? v : p.add(at, `must be a string, not ${show(v)}`)));
export const str = reader('', (v, at, p) => (typeof v === 'string' && v !== '' ? v : p.add(at, `must be a non-empty string, not ${show(v)}`)));

export { isPlainName };
export const name = reader('', (v, at, p) =>
  isPlainName(v) ? v : p.add(at, `must be a name of 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..), not ${show(v)}`),
);

export const bool = reader(false, (v, at, p) => (typeof v === 'boolean' ? v : p.add(at, `must be true or false, not ${show(v)}`)));

const between = (min: number, max: number) => (max === Infinity ? `>= ${min}` : `from ${min} to ${max}`);

export function int(min: number, max = Infinity): Read<number> {
  return reader(min, (v, at, p) =>
    typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max ? v : p.add(at, `must be an integer ${between(min, max)}, not ${show(v)}`),
  );
}

export function num(min: number, max = Infinity): Read<number> {
  return reader(min, (v, at, p) =>
    typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? v : p.add(at, `must be a number ${between(min, max)}, not ${show(v)}`),
  );
}

export const positive = reader(1, (v, at, p) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : p.add(at, `must be a number above 0, not ${show(v)}`)));

export function oneOf<T extends string>(choices: readonly T[]): Read<T> {
  return reader(choices[0]!, (v, at, p) =>
    (choices as readonly unknown[]).includes(v) ? (v as T) : p.add(at, `must be one of ${choices.join(', ')}, not ${show(v)}`),
  );
}

/** A list of `item`s; names and numbers may not repeat unless `unique` is false. */
export function list<T>(item: Read<T>, { nonEmpty = false, unique = true } = {}): Read<T[]> {
  return reader<T[]>([], (v, at, p) => {
    if (!Array.isArray(v)) return p.add(at, `must be a list, not ${show(v)}`);
    if (nonEmpty && v.length === 0) return p.add(at, 'must not be empty');
    const out = v.map((x, i) => item(x, `${at}[${i}]`, p));
    if (out.some((x) => x === undefined)) return undefined;
    const twice = unique ? out.find((x, i) => typeof x !== 'object' && out.indexOf(x) !== i) : undefined;
    return twice === undefined ? (out as T[]) : p.add(at, `lists ${show(twice)} twice`);
  });
}

// ---- durations, ranges, sizes ----

const DURATION = 'a duration (2s, 500ms, 1m, or a number of seconds)';

/** Milliseconds; `2s`, `500ms`, `1m`, `1h`, or a bare number of seconds. */
export const duration = reader(0, (v, at, p) => parseDuration(v) ?? p.add(at, `must be ${DURATION}, not ${show(v)}`));

/** A duration above 0 (a timeout, a workload's run time). */
export const positiveDuration = reader(1, (v, at, p) => {
  const ms = duration(v, at, p);
  return ms === undefined || ms > 0 ? ms : p.add(at, `must be longer than 0, not ${show(v)}`);
});

/** A duration given in seconds in the spec (a check's bound): `30s`, `1m`, `2.5`. */
export const seconds = reader(0, (v, at, p) => {
  const ms = duration(v, at, p);
  return ms === undefined ? undefined : ms / 1000;
});

/** `[MIN, MAX]` of two durations (MIN <= MAX), or one duration (MIN == MAX). */
export const range = reader<Range>({ min: 0, max: 0 }, (v, at, p) => {
  if (!Array.isArray(v)) {
    const ms = parseDuration(v);
    return ms !== undefined ? { min: ms, max: ms } : p.add(at, `must be ${DURATION} or a range [MIN, MAX] of two, not ${show(v)}`);
  }
  if (v.length !== 2) return p.add(at, `a range must be [MIN, MAX], two durations, not ${show(v)}`);
  const min = duration(v[0], `${at}[0]`, p);
  const max = duration(v[1], `${at}[1]`, p);
  if (min === undefined || max === undefined) return undefined;
  return min <= max ? { min, max } : p.add(at, `the minimum ${show(v[0])} is above the maximum ${show(v[1])}`);
});

/** Bytes: `1M`, `4K`, `4096`. */
export const size = reader(0, (v, at, p) =>
  (typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined) ?? p.add(at, `must be a size in bytes (4096, 64K, 1M), not ${show(v)}`),
);

/** `{ offset, length }` of a disk fault: sizes, the length above 0. */
export const byteRange = reader({ offset: 0, length: 1 }, (v, at, p) => {
  const f = fields(v, at, p, ['offset', 'length']);
  const length = f.req('length', size);
  if (f.valid('length') && length === 0) p.add(f.path('length'), 'must be above 0');
  return f.live ? { offset: f.opt('offset', size, 0), length } : undefined;
});

/** Bytes per second: `100M`, `10M/s`, `1048576`; `unlimited` (or 0, off): no cap, 0. */
export const rate = reader(0, (v, at, p) => parseRate(v) ?? p.add(at, `must be a rate in bytes per second (100M, 10M/s) or unlimited, not ${show(v)}`));

// ---- scalars of particular fields ----

export const SEED = int(0, 2 ** 32 - 1);
export const EXIT_CODE = int(0, 255);
export const DIRECTION = oneOf<LinkDirectionSpec>(['both', 'a-to-b', 'b-to-a']);
export const BLOCK_SIZE = reader(4096, (v, at, p) => {
  const n = int(512, 1 << 20)(v, at, p);
  return n === undefined || n % 512 === 0 ? n : p.add(at, `must be a multiple of 512, not ${n}`);
});
/** The errnos an NBD client can see. */
export const HOST_ERRNOS = Object.keys(ERR);
/** A type of the event catalog; a near miss names the likely ones (a family has up to ~40 types). */
export const EVENT_TYPE = reader('', (v, at, p) => {
  const t = str(v, at, p);
  if (t === undefined || (EVENT_TYPES as readonly string[]).includes(t)) return t;
  const [family, rest = ''] = t.split('.');
  const same = [...new Set(EVENT_TYPES)].filter((e) => e.startsWith(`${family}.`));
  const near = rest.length >= 3 ? same.filter((e) => e.includes(rest.slice(0, 4))) : [];
  const hint = near.length ? `did you mean ${near.join(', ')}?` : same.length && same.length <= 12 ? `${family} events: ${same.join(', ')}` : 'the types: docs/events.md';
  return p.add(at, `unknown event type ${show(t)} (${hint})`);
});
