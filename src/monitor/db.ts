/**
 * The monitor's resource database (seed 000's "resource database" and its API routines): the
 * resources being watched, in the order they were added, with each one's last pair state,
 * recovery phase and a short history. Every change is saved before the routine resolves, through
 * a MetadataStore (two alternating copies with CRC and generation), so a crash mid-save leaves the
 * previous copy valid and a torn copy is reported, never silently reset.
 *
 * On disk (in the monitor's state directory, mode 0700): `resources.A` and `resources.B`, each a
 * MetadataStore copy (header line `sanbox-meta v1 gen=... len=... crc32=...`, then the payload):
 *
 *     { "format": "sanbox.monitor.db", "version": 1, "timeMark": "<ISO time of the last change>",
 *       "entries": [ <ResourceEntry>, ... ] }            (insertion order)
 *
 * Concurrency: many clients call in at once. Each routine changes the in-memory map synchronously
 * (copy-on-write: an entry in the map is never mutated, only replaced) and then saves a snapshot
 * of the whole document; the store serializes saves, so the last save always holds every change.
 * When a save fails, the caller's promise rejects and memory stays ahead of disk; the next save
 * writes everything again.
 *
 * `prmd -d FILE` / `prmd -u FILE` files hold only the specs: see encodeResourceFile.
 */
import { mkdir } from 'node:fs/promises';
import { MetadataStore } from '../metadata/index.js';
import { ProtocolError, MAX_LOAD_RESOURCES, checkInstance, checkInterval, checkSpec } from './protocol.js';
import { redactInstance } from './access.js';
import { HISTORY_LENGTH, PAIR_STATES, keyOf, type RecoveryPhase, type ResourceEntry, type ResourceSpec } from './types.js';

export const DB_FORMAT = 'sanbox.monitor.db';
export const DB_VERSION = 1;
export const DB_BASENAME = 'resources';
export const RESOURCE_FILE_FORMAT = 'sanbox.monitor.resources';
export const RESOURCE_FILE_VERSION = 1;

export type DbDocument = { format: typeof DB_FORMAT; version: typeof DB_VERSION; timeMark: string; entries: ResourceEntry[] };

/** The fields an operator may change on an existing resource (SET, ADD of a known resource). */
export type SettableFields = Partial<Pick<ResourceSpec, 'instance' | 'intervalSeconds' | 'autorecover' | 'resyncAdminFractures'>>;
const SETTABLE = new Set(['instance', 'intervalSeconds', 'autorecover', 'resyncAdminFractures']);

type Check = (v: unknown) => boolean;
const isStr: Check = (v) => typeof v === 'string';
const isTime: Check = (v) => typeof v === 'string' && !Number.isNaN(Date.parse(v));
const isNum: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const orNull = (c: Check): Check => (v) => v === null || c(v);
const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** An object with exactly these fields, each passing its check. */
const isShape = (fields: Record<string, Check>): Check => (v) =>
  isPlain(v) && Object.keys(v).every((k) => k in fields) && Object.entries(fields).every(([k, c]) => c(v[k]));

// A Record over the type's members: adding a phase to RecoveryPhase fails to compile until it is listed.
const PHASES: Record<RecoveryPhase, true> = { watching: true, resyncing: true, backoff: true, held: true };
const SPEC_KEYS = ['appName', 'deviceGroup', 'instance', 'intervalSeconds', 'autorecover', 'resyncAdminFractures'] as const;

/** The checks of an entry's non-spec fields; the mapped type makes a new ResourceEntry field a compile error here. */
const STATUS_CHECKS: { [K in Exclude<keyof ResourceEntry, keyof ResourceSpec>]-?: Check } = {
  startTime: isTime, addedAt: isTime,
  pair: (v) => (PAIR_STATES as readonly unknown[]).includes(v),
  reason: isStr, detail: isStr, pvol: isStr, svol: isStr,
  kind: (v) => v === null || v === 'mirror' || v === 'group',
  phase: (v) => typeof v === 'string' && Object.hasOwn(PHASES, v),
  direction: orNull(isShape({ primaryArray: isStr, epoch: (v) => Number.isSafeInteger(v) })),
  lastPoll: orNull(isTime), lastError: orNull(isStr),
  lastAutoResync: orNull(isShape({ time: isTime, seconds: isNum })),
  failures: (v) => Array.isArray(v) && v.every(isTime),
  retryAt: orNull(isTime),
  history: (v) => Array.isArray(v) && v.every(isShape({ time: isTime, what: isStr, text: isStr })),
};

/** Checks one entry field by field; throws an Error starting with `where`. Returns a normalized copy. */
export function checkEntry(v: unknown, where: string): ResourceEntry {
  if (!isPlain(v)) throw new Error(`${where} must be an object`);
  const known = (k: string): boolean => (SPEC_KEYS as readonly string[]).includes(k) || k in STATUS_CHECKS;
  for (const k of Object.keys(v)) if (!known(k)) throw new Error(`${where}: unknown field ${JSON.stringify(k)}`);
  let spec: ResourceSpec;
  try {
    spec = checkSpec(Object.fromEntries(SPEC_KEYS.filter((k) => k in v).map((k) => [k, v[k]])), where);
  } catch (e) {
    throw new Error(prefixed(where, (e as Error).message));
  }
  const entry: Record<string, unknown> = { ...spec };
  for (const [k, check] of Object.entries(STATUS_CHECKS)) {
    if (!check(v[k])) throw new Error(`${where}: field ${k} is missing or has the wrong type (${JSON.stringify(v[k])?.slice(0, 80)})`);
    entry[k] = structuredClone(v[k]);
  }
  // Bounded, not refused: a database written with a larger HISTORY_LENGTH still opens.
  (entry.history as unknown[]).splice(0, Math.max(0, (entry.history as unknown[]).length - HISTORY_LENGTH));
  return entry as unknown as ResourceEntry;
}

const prefixed = (where: string, message: string): string => (message.startsWith(where) ? message : `${where}: ${message}`);

/** Checks a loaded document; a wrong shape is an Error naming the copy, never a reset. */
function checkDocument(v: unknown, where: string): DbDocument {
  if (!isPlain(v)) throw new Error(`${where}: the resource database must be a JSON object`);
  if (v.format !== DB_FORMAT) throw new Error(`${where}: not a monitor resource database (format ${JSON.stringify(v.format)}, expected "${DB_FORMAT}")`);
  if (v.version !== DB_VERSION) throw new Error(`${where}: resource database version ${JSON.stringify(v.version)} is not supported (this monitor reads ${DB_VERSION})`);
  for (const k of Object.keys(v)) if (!['format', 'version', 'timeMark', 'entries'].includes(k)) throw new Error(`${where}: unknown field ${JSON.stringify(k)}`);
  if (!isTime(v.timeMark)) throw new Error(`${where}: timeMark must be an ISO time`);
  if (!Array.isArray(v.entries)) throw new Error(`${where}: entries must be an array`);
  const entries = v.entries.map((x, i) => checkEntry(x, `${where}: entries[${i}]`));
  const keys = new Set(entries.map((e) => keyOf(e.appName, e.deviceGroup)));
  if (keys.size !== entries.length) throw new Error(`${where}: entries repeat an appName and deviceGroup`);
  return { format: DB_FORMAT, version: DB_VERSION, timeMark: v.timeMark as string, entries };
}

/** Appends a history item, dropping the oldest beyond HISTORY_LENGTH. */
export function recordHistory(e: ResourceEntry, what: string, text: string, time: string = new Date().toISOString()): void {
  e.history.push({ time, what, text });
  if (e.history.length > HISTORY_LENGTH) e.history.splice(0, e.history.length - HISTORY_LENGTH);
}

/** The spec of an entry (what a resource file or ADD carries). */
export function specOf(e: ResourceSpec): ResourceSpec {
  const { appName, deviceGroup, instance, intervalSeconds, autorecover } = e;
  return { appName, deviceGroup, instance, intervalSeconds, autorecover, resyncAdminFractures: e.resyncAdminFractures ?? false };
}

const onOff = (b: boolean): string => (b ? 'on' : 'off');
const clone = (e: ResourceEntry): ResourceEntry => structuredClone(e);

function newEntry(s: ResourceSpec, time: string): ResourceEntry {
  const e: ResourceEntry = {
    ...(specOf(s) as Required<ResourceSpec>),
    startTime: time, addedAt: time,
    pair: 'unknown', reason: 'not-polled', detail: 'not polled yet', pvol: '-', svol: '-', kind: null,
    phase: 'watching', direction: null,
    lastPoll: null, lastError: null, lastAutoResync: null, failures: [], retryAt: null, history: [],
  };
  recordHistory(e, 'added', `instance ${redactInstance(s.instance)}, every ${s.intervalSeconds} s, autorecover ${onOff(s.autorecover)}`, time);
  return e;
}

/**
 * The operator re-arms automatic recovery: failures forgotten, a held or backed-off resource
 * watched again, and the direction forgotten so the next connected poll records it afresh (the
 * operator may have reversed the mirror meanwhile). Returns what it changed, for the history.
 */
function rearm(e: ResourceEntry): string[] {
  const said: string[] = [];
  if (e.phase === 'held' || e.phase === 'backoff') said.push(`phase ${e.phase} -> watching`);
  if (e.failures.length > 0 || e.retryAt !== null) said.push(`${e.failures.length} failure(s) forgotten`);
  if (e.direction !== null) said.push('direction forgotten');
  Object.assign(e, { phase: e.phase === 'held' || e.phase === 'backoff' ? 'watching' : e.phase, failures: [], retryAt: null, direction: null });
  return said;
}

/**
 * Applies operator fields to an entry and says what changed. `alwaysRearm`: an explicit
 * autorecover on (START, SET) re-arms even when it was on already; ADD re-arms only off -> on, so
 * a script repeating its ADDs does not undo a hold.
 */
function applyFields(e: ResourceEntry, f: SettableFields, alwaysRearm: boolean): string[] {
  for (const k of Object.keys(f)) if (!SETTABLE.has(k)) throw new Error(`ResourceDatabase: field ${k} cannot be changed`);
  const said: string[] = [];
  if (f.instance !== undefined && f.instance !== e.instance) {
    said.push(`instance ${redactInstance(e.instance)} -> ${redactInstance(checkInstance(f.instance))}`);
    e.instance = f.instance;
  }
  if (f.intervalSeconds !== undefined && f.intervalSeconds !== e.intervalSeconds) {
    said.push(`interval ${e.intervalSeconds} -> ${checkInterval(f.intervalSeconds)} s`);
    e.intervalSeconds = f.intervalSeconds;
  }
  if (f.resyncAdminFractures !== undefined && f.resyncAdminFractures !== e.resyncAdminFractures) {
    said.push(`resyncAdminFractures ${onOff(assertBool(f.resyncAdminFractures))}`);
    e.resyncAdminFractures = f.resyncAdminFractures;
  }
  if (f.autorecover !== undefined) {
    const was = e.autorecover;
    e.autorecover = assertBool(f.autorecover);
    const rearmed = f.autorecover && (alwaysRearm || !was) ? rearm(e) : [];
    const how = rearmed.length > 0 ? ` (re-armed: ${rearmed.join(', ')})` : '';
    if (f.autorecover !== was || how) said.push(`autorecover ${onOff(f.autorecover)}${how}`);
  }
  return said;
}

function fail(message: string): never {
  throw new Error(message);
}
const assertBool = (v: unknown): boolean => (typeof v === 'boolean' ? v : fail(`ResourceDatabase: expected true or false, got ${JSON.stringify(v)}`));

export class ResourceDatabase {
  /** The history helper, also as a static for callers holding only the class. */
  static readonly record = recordHistory;
  private readonly entries = new Map<string, ResourceEntry>();
  private timeMark: string;
  private lastSave: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly store: MetadataStore<DbDocument>,
    private readonly now: () => Date,
    doc: DbDocument | undefined,
    /** Corrupt copies the store found at open (the daemon logs them); empty when all was well. */
    readonly loadProblems: string[],
  ) {
    this.timeMark = doc?.timeMark ?? now().toISOString();
    for (const e of doc?.entries ?? []) this.entries.set(keyOf(e.appName, e.deviceGroup), e);
  }

  static async open(stateDir: string, opts: { noSync?: boolean; now?: () => Date } = {}): Promise<ResourceDatabase> {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const store = new MetadataStore<DbDocument>(stateDir, { basename: DB_BASENAME, noSync: opts.noSync });
    const loaded = await store.load(); // both copies corrupt: MetadataError, the daemon does not start
    const where = loaded.source ? store.pathOf(loaded.source) : stateDir;
    const doc = loaded.data === undefined ? undefined : checkDocument(loaded.data, where);
    const db = new ResourceDatabase(store, opts.now ?? (() => new Date()), doc, loaded.problems);
    // Rewrite the bad copy now (the store keeps it as .corrupt) so one more crash cannot leave none.
    if (doc && loaded.problems.length > 0) await db.persist();
    return db;
  }

  /** Waits for the saves under way; the database refuses changes afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    await this.lastSave;
  }

  getPid = (): number => process.pid;
  getTimeMark = (): string => this.timeMark;

  showOne(appName: string, deviceGroup: string): ResourceEntry | undefined {
    const e = this.entries.get(keyOf(appName, deviceGroup));
    return e && clone(e);
  }

  showAll(): ResourceEntry[] {
    return [...this.entries.values()].map(clone);
  }

  async addOne(spec: ResourceSpec): Promise<{ entry: ResourceEntry; added: boolean }> {
    const s = checkSpec(spec, 'resource');
    const result = this.applySpec(s);
    const entry = clone(this.entries.get(keyOf(s.appName, s.deviceGroup))!);
    if (result !== 'unchanged') await this.persist();
    return { entry, added: result === 'added' };
  }

  /** LOAD: every spec is checked before any is applied, then one save for the whole list. */
  async addList(specs: ResourceSpec[]): Promise<{ added: number; updated: number }> {
    const counts = { added: 0, updated: 0, unchanged: 0 };
    for (const s of checkSpecList(specs, 'resources')) counts[this.applySpec(s)]++;
    if (counts.added + counts.updated > 0) await this.persist();
    return { added: counts.added, updated: counts.updated };
  }

  async changeOneInterval(appName: string, deviceGroup: string, seconds: number): Promise<ResourceEntry | undefined> {
    return this.set(appName, deviceGroup, { intervalSeconds: checkInterval(seconds) });
  }

  async changeAllInterval(seconds: number): Promise<ResourceEntry[]> {
    const intervalSeconds = checkInterval(seconds); // before any change, even with no resources
    const set = (e: ResourceEntry): void => this.applyAndRecord(e, { intervalSeconds }, 'changed');
    const changed = [...this.entries.keys()].filter((key) => this.modify(key, set)).length > 0;
    const all = this.showAll();
    if (changed) await this.persist();
    return all;
  }

  /** START / STOP: turning autorecover on re-arms a held or backed-off resource (see rearm). */
  setAutorecover(appName: string, deviceGroup: string, on: boolean): Promise<ResourceEntry | undefined> {
    return this.update(appName, deviceGroup, (e) => this.applyAndRecord(e, { autorecover: assertBool(on) }, 'autorecover', true));
  }

  /** SET: several fields of one resource; autorecover on re-arms as in setAutorecover. */
  set(appName: string, deviceGroup: string, fields: SettableFields): Promise<ResourceEntry | undefined> {
    return this.update(appName, deviceGroup, (e) => this.applyAndRecord(e, fields, 'changed', true));
  }

  async removeOne(appName: string, deviceGroup: string): Promise<ResourceEntry | undefined> {
    const e = this.showOne(appName, deviceGroup);
    if (e) await this.remove([e]);
    return e;
  }

  /** REMOVEALL (the daemon then stops). */
  async removeAll(): Promise<ResourceEntry[]> {
    const all = this.showAll();
    if (all.length > 0) await this.remove(all);
    return all;
  }

  /**
   * The daemon stores poll results: `mutate` changes a copy of the entry synchronously; the copy
   * is checked, swapped in and saved only if its JSON changed. Returns the entry as changed.
   */
  async update(appName: string, deviceGroup: string, mutate: (e: ResourceEntry) => void): Promise<ResourceEntry | undefined> {
    const key = keyOf(appName, deviceGroup);
    if (!this.entries.has(key)) return undefined;
    const changed = this.modify(key, mutate);
    // Snapshot before awaiting: later changes by other clients belong to their replies, not this one.
    const entry = clone(this.entries.get(key)!);
    if (changed) await this.persist();
    return entry;
  }

  private remove(gone: ResourceEntry[]): Promise<void> {
    this.assertOpen();
    for (const e of gone) this.entries.delete(keyOf(e.appName, e.deviceGroup));
    this.touch();
    return this.persist();
  }

  /** Copy-on-write change of one entry; true when its JSON changed. Throws on a broken invariant. */
  private modify(key: string, fn: (e: ResourceEntry) => void): boolean {
    this.assertOpen();
    const old = this.entries.get(key);
    if (!old) throw new Error('ResourceDatabase.modify: no such entry (a caller skipped the lookup)');
    const next = clone(old);
    const returned: unknown = fn(next);
    if (returned instanceof Promise) throw new Error('ResourceDatabase.update: mutate must be synchronous (it returned a Promise)');
    if (JSON.stringify(next) === JSON.stringify(old)) return false;
    this.entries.set(key, checkInvariant(next, key));
    this.touch();
    return true;
  }

  private applyAndRecord(e: ResourceEntry, fields: SettableFields, what: string, alwaysRearm = false): void {
    const said = applyFields(e, fields, alwaysRearm);
    if (said.length > 0) recordHistory(e, what, said.join(', '), this.now().toISOString());
  }

  /** ADD of one checked spec: a new entry, or the operator fields of the existing one. */
  private applySpec(s: ResourceSpec): 'added' | 'updated' | 'unchanged' {
    this.assertOpen();
    const key = keyOf(s.appName, s.deviceGroup);
    if (!this.entries.has(key)) {
      this.entries.set(key, checkInvariant(newEntry(s, this.now().toISOString()), key));
      this.touch();
      return 'added';
    }
    const { appName: _a, deviceGroup: _g, ...fields } = s;
    return this.modify(key, (e) => this.applyAndRecord(e, fields, 'changed')) ? 'updated' : 'unchanged';
  }

  private touch = (): void => void (this.timeMark = this.now().toISOString());
  private assertOpen = (): void => void (this.closed && fail('ResourceDatabase: changed after close()'));

  /** Saves a deep snapshot of the whole document (taken now, so it holds every change so far). */
  private persist(): Promise<void> {
    const doc: DbDocument = { format: DB_FORMAT, version: DB_VERSION, timeMark: this.timeMark, entries: this.showAll() };
    const saving = this.store.save(doc).then(() => undefined);
    this.lastSave = saving.catch(() => undefined); // close() waits; the caller sees the error
    return saving;
  }
}

/** An entry about to enter the map must have the right shape and sit under its own key. */
function checkInvariant(e: ResourceEntry, key: string): ResourceEntry {
  const checked = checkEntry(e, `resource entry ${JSON.stringify(key.replace('\u0000', '/'))}`);
  if (keyOf(e.appName, e.deviceGroup) !== key) throw new Error(`ResourceDatabase: entry ${e.appName}/${e.deviceGroup} stored under another key (names changed?)`);
  return checked;
}

/** Checks a list of specs: each one, no duplicates, at most MAX_LOAD_RESOURCES. */
function checkSpecList(list: unknown[], where: string): ResourceSpec[] {
  if (list.length > MAX_LOAD_RESOURCES) throw new ProtocolError(`${where}: more than ${MAX_LOAD_RESOURCES} resources (${list.length})`);
  const first = new Map<string, number>();
  return list.map((x, i) => {
    const at = `${where}[${i}]`;
    let s: ResourceSpec;
    try {
      s = checkSpec(x, at);
    } catch (e) {
      // checkInstance and checkInterval do not know where they are; say it for them
      throw e instanceof ProtocolError ? new ProtocolError(prefixed(at, e.message)) : e;
    }
    const key = keyOf(s.appName, s.deviceGroup);
    const j = first.get(key);
    if (j !== undefined) throw new ProtocolError(`${at} repeats appName ${s.appName} deviceGroup ${s.deviceGroup} (first at ${where}[${j}])`);
    first.set(key, i);
    return s;
  });
}

// ---------------------------------------------------------------- prmd -d / -u files

/** `prmd -d FILE`: the specs as a pretty-printed JSON resource file. */
export function encodeResourceFile(entries: ResourceSpec[]): string {
  const resources = checkSpecList(entries.map(specOf), 'resources'); // never write a file we would refuse to read
  return JSON.stringify({ format: RESOURCE_FILE_FORMAT, version: RESOURCE_FILE_VERSION, resources }, null, 2) + '\n';
}

/** `prmd -u FILE`: the specs of a resource file; a ProtocolError naming `path` and the problem. */
export function decodeResourceFile(text: string, path: string): ResourceSpec[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ProtocolError(`${path}: not JSON: ${(e as Error).message}`);
  }
  if (!isPlain(v)) throw new ProtocolError(`${path}: a resource file must be a JSON object`);
  if (v.format !== RESOURCE_FILE_FORMAT) throw new ProtocolError(`${path}: not a monitor resource file (format ${JSON.stringify(v.format)}, expected "${RESOURCE_FILE_FORMAT}")`);
  if (v.version !== RESOURCE_FILE_VERSION) throw new ProtocolError(`${path}: resource file version ${JSON.stringify(v.version)} is not supported (${RESOURCE_FILE_VERSION})`);
  for (const k of Object.keys(v)) if (!['format', 'version', 'resources'].includes(k)) throw new ProtocolError(`${path}: unknown field ${JSON.stringify(k)}`);
  if (!Array.isArray(v.resources)) throw new ProtocolError(`${path}: resources must be an array`);
  return checkSpecList(v.resources, `${path}: resources`);
}
