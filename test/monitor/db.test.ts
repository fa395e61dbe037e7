import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm, readFile, truncate, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetadataStore, MetadataError, decodeCopy, COPY_NAMES } from '../../src/metadata/index.js';
import { ResourceDatabase, decodeResourceFile, encodeResourceFile, recordHistory, specOf, DB_BASENAME, type DbDocument } from '../../src/monitor/db.js';
import { ProtocolError, MAX_LOAD_RESOURCES } from '../../src/monitor/protocol.js';
import { HISTORY_LENGTH, type ResourceSpec } from '../../src/monitor/types.js';

let dir: string;
let clock: Date;
const now = (): Date => clock;
const tick = (seconds = 1): void => void (clock = new Date(clock.getTime() + seconds * 1000));

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-mondb-'));
  clock = new Date('2025-01-02T03:04:05.000Z');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const spec = (appName: string, deviceGroup = 'dg1', more: Partial<ResourceSpec> = {}): ResourceSpec => ({
  appName,
  deviceGroup,
  instance: 'array-a',
  intervalSeconds: 30,
  autorecover: false,
  resyncAdminFractures: false,
  ...more,
});

const open = (d = dir): Promise<ResourceDatabase> => ResourceDatabase.open(d, { noSync: true, now });

/** Reopens the directory, so a skipped save shows. */
async function reopen(db: ResourceDatabase): Promise<ResourceDatabase> {
  await db.close();
  return open();
}

/** The generation of each copy on disk (0: missing or invalid). */
async function generations(): Promise<number[]> {
  const out: number[] = [];
  for (const c of COPY_NAMES) {
    try {
      out.push(decodeCopy(await readFile(join(dir, `${DB_BASENAME}.${c}`))).generation);
    } catch {
      out.push(0);
    }
  }
  return out;
}
const newestGeneration = async (): Promise<number> => Math.max(...(await generations()));

/** Writes a document of any shape as a valid store copy, as a newer monitor or a bug might. */
async function writeRaw(doc: unknown): Promise<void> {
  const store = new MetadataStore<unknown>(dir, { basename: DB_BASENAME, noSync: true });
  await store.load();
  await store.save(doc);
}

describe('ResourceDatabase', () => {
  it('creates the state directory with mode 0700 and starts empty', async () => {
    const sub = join(dir, 'state');
    const db = await open(sub);
    expect((await stat(sub)).mode & 0o777).toBe(0o700);
    expect(db.showAll()).toEqual([]);
    expect(db.loadProblems).toEqual([]);
    expect(db.getPid()).toBe(process.pid);
    expect(db.getTimeMark()).toBe(clock.toISOString());
  });

  it('adds, shows, changes and removes, saving each change', async () => {
    let db = await open();
    const { entry, added } = await db.addOne(spec('app1'));
    expect(added).toBe(true);
    expect(entry).toMatchObject({
      ...spec('app1'),
      startTime: clock.toISOString(),
      addedAt: clock.toISOString(),
      pair: 'unknown',
      reason: 'not-polled',
      detail: 'not polled yet',
      pvol: '-',
      svol: '-',
      kind: null,
      phase: 'watching',
      direction: null,
      lastPoll: null,
      lastError: null,
      lastAutoResync: null,
      failures: [],
      retryAt: null,
    });
    expect(entry.history).toEqual([{ time: clock.toISOString(), what: 'added', text: expect.stringContaining('array-a') }]);
    await db.addOne(spec('app2', 'dg2'));
    expect(db.showAll().map((e) => e.appName)).toEqual(['app1', 'app2']);
    expect(db.showOne('app1', 'dg1')).toEqual(entry);
    expect(db.showOne('app1', 'nope')).toBeUndefined();

    tick();
    const changed = await db.changeOneInterval('app1', 'dg1', 60);
    expect(changed?.intervalSeconds).toBe(60);
    expect(changed?.history.at(-1)).toEqual({ time: clock.toISOString(), what: 'changed', text: 'interval 30 -> 60 s' });
    expect(db.getTimeMark()).toBe(clock.toISOString());
    expect(await db.changeOneInterval('x', 'y', 60)).toBeUndefined();
    await expect(db.changeOneInterval('app1', 'dg1', 0)).rejects.toThrow(ProtocolError);

    db = await reopen(db);
    expect(db.showOne('app1', 'dg1')?.intervalSeconds).toBe(60);
    expect(db.getTimeMark()).toBe(clock.toISOString());

    tick();
    const all = await db.changeAllInterval(120);
    expect(all.map((e) => e.intervalSeconds)).toEqual([120, 120]);
    db = await reopen(db);
    expect(db.showAll().map((e) => e.intervalSeconds)).toEqual([120, 120]);

    const removed = await db.removeOne('app1', 'dg1');
    expect(removed?.appName).toBe('app1');
    expect(await db.removeOne('app1', 'dg1')).toBeUndefined();
    db = await reopen(db);
    expect(db.showAll().map((e) => e.appName)).toEqual(['app2']);

    expect((await db.removeAll()).map((e) => e.appName)).toEqual(['app2']);
    db = await reopen(db);
    expect(db.showAll()).toEqual([]);
    await db.close();
  });

  it('adding a known resource updates its operator fields; an identical ADD saves nothing', async () => {
    let db = await open();
    await db.addOne(spec('app1'));
    const gen = await newestGeneration();
    const same = await db.addOne(spec('app1'));
    expect(same.added).toBe(false);
    expect(await newestGeneration()).toBe(gen);
    tick();
    const { entry, added } = await db.addOne(spec('app1', 'dg1', { instance: 'http://:secret@127.0.0.1:8080', intervalSeconds: 5, resyncAdminFractures: true }));
    expect(added).toBe(false);
    expect(entry).toMatchObject({ instance: 'http://:secret@127.0.0.1:8080', intervalSeconds: 5, resyncAdminFractures: true, addedAt: '2025-01-02T03:04:05.000Z' });
    expect(entry.history.at(-1)?.what).toBe('changed');
    expect(entry.history.at(-1)?.text).toContain('interval 30 -> 5 s');
    expect(entry.history.at(-1)?.text).not.toContain('secret'); // the token stays out of the history
    db = await reopen(db);
    expect(db.showOne('app1', 'dg1')).toEqual(entry);
    await db.close();
  });

  it('addList applies a whole list with one save, and nothing of a list with a bad resource', async () => {
    let db = await open();
    await db.addOne(spec('app1'));
    const gen = await newestGeneration();
    expect(await db.addList([spec('app1', 'dg1', { intervalSeconds: 9 }), spec('app2'), spec('app3')])).toEqual({ added: 2, updated: 1 });
    expect(await newestGeneration()).toBe(gen + 1);
    await expect(db.addList([spec('app4'), spec('app4')])).rejects.toThrow(/repeats appName app4/);
    await expect(db.addList([spec('app5'), { ...spec('app6'), intervalSeconds: -1 }])).rejects.toThrow(ProtocolError);
    expect(db.showOne('app4', 'dg1')).toBeUndefined();
    expect(db.showOne('app5', 'dg1')).toBeUndefined();
    db = await reopen(db);
    expect(db.showAll().map((e) => [e.appName, e.intervalSeconds])).toEqual([['app1', 9], ['app2', 30], ['app3', 30]]);
    await db.close();
  });

  it('persists across reopen with fsync on', async () => {
    const db = await ResourceDatabase.open(dir, { now });
    await db.addOne(spec('app1'));
    await db.addOne(spec('app2', 'dgX', { autorecover: true }));
    await db.update('app2', 'dgX', (e) => {
      e.pair = 'connected';
      e.direction = { primaryArray: 'array-a', epoch: 3 };
    });
    const before = db.showAll();
    await db.close();
    const again = await ResourceDatabase.open(dir, { now });
    expect(again.showAll()).toEqual(before);
    expect(again.getTimeMark()).toBe(db.getTimeMark());
    expect((await readdir(dir)).sort()).toEqual(['resources.A', 'resources.B']);
    await again.close();
  });

  it('detects a torn newest copy, reports it and uses the previous copy', async () => {
    const db = await open();
    await db.addOne(spec('app1'));
    await db.addOne(spec('app2'));
    const previous = db.showAll();
    await db.addOne(spec('app3'));
    await db.close();
    const gens = await generations();
    const newest = COPY_NAMES[gens.indexOf(Math.max(...gens))]!;
    const path = join(dir, `${DB_BASENAME}.${newest}`);
    await truncate(path, (await stat(path)).size - 20);

    const db2 = await open();
    expect(db2.loadProblems).toHaveLength(1);
    expect(db2.loadProblems[0]).toContain(path);
    expect(db2.loadProblems[0]).toMatch(/torn write/);
    expect(db2.showAll()).toEqual(previous);
    await db2.close();
    // The bad copy was rewritten at open (and kept aside): the next open finds no problem.
    expect((await readdir(dir)).sort()).toContain(`${DB_BASENAME}.${newest}.corrupt`);
    const db3 = await open();
    expect(db3.loadProblems).toEqual([]);
    expect(db3.showAll()).toEqual(previous);
    await db3.close();
  });

  it('refuses to open when both copies are corrupt', async () => {
    const db = await open();
    await db.addOne(spec('app1'));
    await db.addOne(spec('app2'));
    await db.close();
    for (const c of COPY_NAMES) await writeFile(join(dir, `${DB_BASENAME}.${c}`), 'garbage\n');
    await expect(open()).rejects.toThrow(MetadataError);
    await expect(open()).rejects.toThrow(/no valid metadata copy/);
  });

  it('refuses a valid copy holding the wrong document shape, naming the problem', async () => {
    const good = async (): Promise<DbDocument> => {
      const db = await open();
      await db.addOne(spec('app1'));
      await db.close();
      return (await new MetadataStore<DbDocument>(dir, { basename: DB_BASENAME }).load()).data!;
    };
    const doc = await good();
    const cases: [unknown, RegExp][] = [
      [[1, 2], /must be a JSON object/],
      [{ ...doc, format: 'other' }, /not a monitor resource database/],
      [{ ...doc, version: 2 }, /version 2 is not supported/],
      [{ ...doc, entries: {} }, /entries must be an array/],
      [{ ...doc, extra: 1 }, /unknown field "extra"/],
      [{ ...doc, entries: [{ ...doc.entries[0], pair: 'sideways' }] }, /entries\[0\]: field pair/],
      [{ ...doc, entries: [{ ...doc.entries[0], history: 'none' }] }, /entries\[0\]: field history/],
      [{ ...doc, entries: [{ ...doc.entries[0], intervalSeconds: '30' }] }, /entries\[0\]: monitor interval/],
      [{ ...doc, entries: [{ ...doc.entries[0], appName: '..' }] }, /entries\[0\]: appName/],
      [{ ...doc, entries: [{ ...doc.entries[0], bogus: true }] }, /entries\[0\]: unknown field "bogus"/],
      [{ ...doc, entries: [doc.entries[0], doc.entries[0]] }, /repeat/],
    ];
    for (const [bad, message] of cases) {
      await writeRaw(bad);
      await expect(open(), JSON.stringify(bad).slice(0, 60)).rejects.toThrow(message);
    }
    // A refused open writes nothing (no silent reset): the generations on disk stay as they were.
    const gens = await generations();
    await expect(open()).rejects.toThrow();
    expect(await generations()).toEqual(gens);
    await writeRaw(doc);
    expect((await open()).showAll()).toEqual(doc.entries);
  });

  it('loses none of 50 concurrent adds', async () => {
    let db = await open();
    const names = Array.from({ length: 50 }, (_, i) => `app${i}`);
    const results = await Promise.all(names.map((n) => db.addOne(spec(n))));
    expect(results.every((r) => r.added)).toBe(true);
    db = await reopen(db);
    expect(db.showAll().map((e) => e.appName)).toEqual(names);
    await db.close();
  });

  it('keeps concurrent updates of different fields of one entry', async () => {
    let db = await open();
    await db.addOne(spec('app1'));
    await Promise.all([
      db.update('app1', 'dg1', (e) => void (e.pvol = 'PAIR')),
      db.update('app1', 'dg1', (e) => void (e.svol = 'PAIR')),
      db.setAutorecover('app1', 'dg1', true),
      db.changeOneInterval('app1', 'dg1', 7),
    ]);
    db = await reopen(db);
    expect(db.showOne('app1', 'dg1')).toMatchObject({ pvol: 'PAIR', svol: 'PAIR', autorecover: true, intervalSeconds: 7 });
    await db.close();
  });

  it('autorecover on re-arms a held or backed-off resource; off leaves the state', async () => {
    let db = await open();
    await db.addOne(spec('app1', 'dg1', { autorecover: true }));
    const hold = (phase: 'held' | 'backoff') => (e: Parameters<Parameters<ResourceDatabase['update']>[2]>[0]): void => {
      e.phase = phase;
      e.failures = [clock.toISOString(), clock.toISOString()];
      e.retryAt = phase === 'backoff' ? clock.toISOString() : null;
      e.direction = { primaryArray: 'array-a', epoch: 2 };
    };
    await db.update('app1', 'dg1', hold('held'));
    const off = await db.setAutorecover('app1', 'dg1', false);
    expect(off).toMatchObject({ autorecover: false, phase: 'held', failures: [expect.any(String), expect.any(String)] });
    expect(off?.history.at(-1)).toMatchObject({ what: 'autorecover', text: 'autorecover off' });

    const on = await db.setAutorecover('app1', 'dg1', true);
    expect(on).toMatchObject({ autorecover: true, phase: 'watching', failures: [], retryAt: null, direction: null });
    expect(on?.history.at(-1)?.what).toBe('autorecover');
    expect(on?.history.at(-1)?.text).toMatch(/^autorecover on \(re-armed: phase held -> watching/);
    db = await reopen(db);
    expect(db.showOne('app1', 'dg1')).toEqual(on);

    // Already on: START re-arms again; SET with autorecover does the same.
    await db.update('app1', 'dg1', hold('backoff'));
    expect(await db.setAutorecover('app1', 'dg1', true)).toMatchObject({ phase: 'watching', failures: [], retryAt: null, direction: null });
    await db.update('app1', 'dg1', hold('held'));
    expect(await db.set('app1', 'dg1', { autorecover: true })).toMatchObject({ phase: 'watching', failures: [], direction: null });
    // A repeated ADD (already on) does not undo a hold.
    await db.update('app1', 'dg1', hold('held'));
    expect((await db.addOne(spec('app1', 'dg1', { autorecover: true }))).entry.phase).toBe('held');
    // Nothing to re-arm: no change, no save.
    await db.setAutorecover('app1', 'dg1', false);
    const gen = await newestGeneration();
    await db.setAutorecover('app1', 'dg1', false);
    expect(await newestGeneration()).toBe(gen);
    expect(await db.setAutorecover('nope', 'dg1', true)).toBeUndefined();
    await db.close();
  });

  it('set changes several fields and refuses the names or bad values', async () => {
    let db = await open();
    await db.addOne(spec('app1'));
    const e = await db.set('app1', 'dg1', { instance: 'array-b', intervalSeconds: 10, resyncAdminFractures: true });
    expect(e).toMatchObject({ instance: 'array-b', intervalSeconds: 10, resyncAdminFractures: true });
    expect(e?.history.at(-1)?.text).toBe('instance array-a -> array-b, interval 30 -> 10 s, resyncAdminFractures on');
    await expect(db.set('app1', 'dg1', { appName: 'other' } as never)).rejects.toThrow(/appName cannot be changed/);
    await expect(db.set('app1', 'dg1', { intervalSeconds: 1.5 })).rejects.toThrow(ProtocolError);
    await expect(db.set('app1', 'dg1', { instance: 'ftp://x' })).rejects.toThrow(ProtocolError);
    expect(await db.set('nope', 'dg1', { intervalSeconds: 10 })).toBeUndefined();
    db = await reopen(db);
    expect(db.showOne('app1', 'dg1')).toEqual(e);
    await db.close();
  });

  it('update saves only a changed entry and asserts its invariants', async () => {
    let db = await open();
    await db.addOne(spec('app1'));
    const gen = await newestGeneration();
    const same = await db.update('app1', 'dg1', (e) => void (e.pair = 'unknown'));
    expect(await newestGeneration()).toBe(gen);
    expect(same?.pair).toBe('unknown');
    await db.update('app1', 'dg1', (e) => {
      e.pair = 'connected';
      e.lastPoll = clock.toISOString();
    });
    expect(await newestGeneration()).toBe(gen + 1);
    expect(await db.update('nope', 'dg1', () => undefined)).toBeUndefined();

    await expect(db.update('app1', 'dg1', (e) => void (e.appName = 'app2'))).rejects.toThrow(/stored under another key/);
    await expect(db.update('app1', 'dg1', (e) => void (e.phase = 'lost' as never))).rejects.toThrow(/field phase/);
    await expect(db.update('app1', 'dg1', (e) => void Object.assign(e, { extra: 1 }))).rejects.toThrow(/unknown field "extra"/);
    await expect(db.update('app1', 'dg1', (async (e: { pair: string }) => void (e.pair = 'deleted')) as never)).rejects.toThrow(/synchronous/);
    // A failed mutate left the entry as it was.
    expect(db.showOne('app1', 'dg1')).toMatchObject({ appName: 'app1', phase: 'watching', pair: 'connected' });
    db = await reopen(db);
    expect(db.showOne('app1', 'dg1')?.pair).toBe('connected');
    await db.close();
  });

  it('returns copies, never its own entries', async () => {
    const db = await open();
    const { entry } = await db.addOne(spec('app1'));
    entry.pair = 'deleted';
    entry.history.push({ time: 'x', what: 'y', text: 'z' });
    db.showOne('app1', 'dg1')!.intervalSeconds = 999;
    db.showAll()[0]!.failures.push('x');
    (await db.update('app1', 'dg1', () => undefined))!.phase = 'held';
    expect(db.showOne('app1', 'dg1')).toMatchObject({ pair: 'unknown', intervalSeconds: 30, failures: [], phase: 'watching' });
    expect(db.showOne('app1', 'dg1')?.history).toHaveLength(1);
    await db.close();
  });

  it('trims the history to HISTORY_LENGTH, oldest first', async () => {
    let db = await open();
    await db.addOne(spec('app1'));
    for (let i = 0; i < HISTORY_LENGTH + 5; i++) await db.update('app1', 'dg1', (e) => recordHistory(e, 'pair-state', `step ${i}`));
    const h = db.showOne('app1', 'dg1')!.history;
    expect(h).toHaveLength(HISTORY_LENGTH);
    expect(h[0]!.text).toBe('step 5');
    expect(h.at(-1)!.text).toBe(`step ${HISTORY_LENGTH + 4}`);
    expect(ResourceDatabase.record).toBe(recordHistory);
    db = await reopen(db);
    expect(db.showOne('app1', 'dg1')!.history).toEqual(h);
    await db.close();
  });

  it('refuses changes after close', async () => {
    const db = await open();
    await db.close();
    await expect(db.addOne(spec('app1'))).rejects.toThrow(/after close/);
  });
});

describe('resource files (prmd -d / -u)', () => {
  const path = '/tmp/resources.json';
  const specs = [spec('app1'), spec('app2', 'cg:1', { instance: 'http://:tok@127.0.0.1:9000', intervalSeconds: 86_400, autorecover: true, resyncAdminFractures: true })];

  it('round-trips specs through a pretty-printed file', async () => {
    const text = encodeResourceFile(specs);
    expect(text).toContain('\n  "format": "sanbox.monitor.resources",\n');
    expect(JSON.parse(text)).toMatchObject({ format: 'sanbox.monitor.resources', version: 1 });
    expect(decodeResourceFile(text, path)).toEqual(specs);
    // From entries: only the spec fields are written.
    const db = await open();
    await db.addList(specs);
    const fromDb = encodeResourceFile(db.showAll().map(specOf));
    expect(fromDb).toBe(text);
    expect(Object.keys(JSON.parse(fromDb).resources[0]).sort()).toEqual(['appName', 'autorecover', 'deviceGroup', 'instance', 'intervalSeconds', 'resyncAdminFractures']);
    // A missing resyncAdminFractures means false.
    const { resyncAdminFractures: _, ...short } = spec('app3');
    expect(decodeResourceFile(JSON.stringify({ format: 'sanbox.monitor.resources', version: 1, resources: [short] }), path)).toEqual([spec('app3')]);
    await db.close();
  });

  const file = (resources: unknown, extra: object = {}): string => JSON.stringify({ format: 'sanbox.monitor.resources', version: 1, resources, ...extra });
  const cases: [string, string, RegExp][] = [
    ['not JSON', '{"format": ', /not JSON/],
    ['not an object', '[]', /must be a JSON object/],
    ['wrong format', JSON.stringify({ format: 'sanbox.monitor.db', version: 1, resources: [] }), /not a monitor resource file/],
    ['wrong version', JSON.stringify({ format: 'sanbox.monitor.resources', version: 2, resources: [] }), /version 2 is not supported/],
    ['unknown top field', file([], { more: 1 }), /unknown field "more"/],
    ['resources not an array', file({}), /resources must be an array/],
    ['bad interval', file([{ ...spec('a'), intervalSeconds: 0 }]), /resources\[0\]: monitor interval/],
    ['bad instance', file([{ ...spec('a'), instance: 'https://x:1' }]), /resources\[0\]: instance/],
    ['unknown field', file([spec('a'), { ...spec('b'), colour: 'red' }]), /resources\[1\]: unknown field "colour"/],
    ['duplicate', file([spec('a'), spec('b'), spec('a')]), /resources\[2\] repeats appName a deviceGroup dg1 \(first at .*resources\[0\]\)/],
    ['.. as a name', file([spec('..')]), /resources\[0\]: appName "\.\."/],
    ['.. as a group', file([spec('a', '..')]), /resources\[0\]: deviceGroup "\.\."/],
    ['autorecover not boolean', file([{ ...spec('a'), autorecover: 'yes' }]), /resources\[0\]: autorecover must be true or false/],
    ['too many', file(Array.from({ length: MAX_LOAD_RESOURCES + 1 }, (_, i) => spec(`a${i}`))), new RegExp(`more than ${MAX_LOAD_RESOURCES}`)],
  ];
  for (const [name, text, message] of cases) {
    it(`decode refuses ${name} with a ProtocolError naming the file`, () => {
      let caught: unknown;
      try {
        decodeResourceFile(text, path);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(ProtocolError);
      expect((caught as Error).message.startsWith(`${path}: `)).toBe(true);
      expect((caught as Error).message).toMatch(message);
    });
  }

  it('encode refuses specs it could not read back', () => {
    expect(() => encodeResourceFile([spec('a'), spec('a')])).toThrow(ProtocolError);
    expect(() => encodeResourceFile([spec('a', 'dg1', { intervalSeconds: 0 })])).toThrow(ProtocolError);
  });
});
