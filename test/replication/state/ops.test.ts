import { describe, expect, it } from 'vitest';
import { applyOp, MirrorOpError, mayActAsPrimary, parseMirrorDb, primaryOf, requirements, compareRecords, type MirrorDbRecord, type MirrorOp, type MirrorImage } from '../../../src/replication/state/index.js';

const GiB = 1 << 30;
const spec = (array: string, size = GiB) => ({ imageId: `${array}:0`, array, lun: 0, size });

function run(db: MirrorDbRecord | null, ...ops: MirrorOp[]): MirrorDbRecord {
  let d = db;
  for (const op of ops) d = applyOp(d, op).db;
  return d!;
}
function created(attributes?: Record<string, unknown>): MirrorDbRecord {
  return run(null, { op: 'create', mirrorId: 'm1', name: 'db-lun', primary: spec('alpha'), attributes });
}
function img(d: MirrorDbRecord, array: string): MirrorImage {
  return d.images.find((i) => i.array === array)!;
}
function refused(db: MirrorDbRecord | null, op: MirrorOp, code: string): void {
  const before = JSON.stringify(db);
  let err: unknown;
  try {
    applyOp(db, op);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(MirrorOpError);
  expect((err as MirrorOpError).code).toBe(code);
  expect(JSON.stringify(db)).toBe(before); // nothing changed
}
/** alpha primary, bravo SYNCHRONIZED */
function pair(attributes?: Record<string, unknown>): MirrorDbRecord {
  return run(created(attributes), { op: 'add-secondary', image: spec('bravo'), initialState: 'SYNCHRONIZED' });
}

describe('create', () => {
  it('creates an ACTIVE mirror with one primary at epoch 1', () => {
    const r = applyOp(null, { op: 'create', mirrorId: 'm1', name: 'x', primary: spec('alpha') });
    expect(r.db).toMatchObject({ format: 'sanbox.mirror-db', version: 1, state: 'ACTIVE', epoch: 1, generation: 1, activationPolicy: 'automatic' });
    expect(primaryOf(r.db!)).toMatchObject({ imageId: 'alpha:0', role: 'primary', state: null, epoch: 1 });
    expect(r.events).toEqual([{ type: 'mirror-created', mirrorId: 'm1' }]);
    expect(parseMirrorDb(JSON.parse(JSON.stringify(r.db)))).toEqual(r.db);
  });
  it('refuses a second create, bad arguments, bad attributes', () => {
    refused(created(), { op: 'create', mirrorId: 'm1', name: 'x', primary: spec('alpha') }, 'exists');
    refused(null, { op: 'create', mirrorId: '', name: 'x', primary: spec('alpha') }, 'invalid');
    refused(null, { op: 'create', mirrorId: 'm', name: 'x', primary: { ...spec('alpha'), size: 0 } }, 'invalid');
    refused(null, { op: 'create', mirrorId: 'm', name: 'x', primary: spec('alpha'), regionSize: 1000 }, 'invalid');
    refused(null, { op: 'create', mirrorId: 'm', name: 'x', primary: spec('alpha'), attributes: { minImagesRequired: 2 } }, 'invalid');
  });
  it('every other op needs a mirror', () => refused(null, { op: 'activate' }, 'not-found'));
});

describe('add secondary', () => {
  it('as SYNCHRONIZED: no synchronization', () => {
    const d = pair();
    expect(img(d, 'bravo')).toMatchObject({ role: 'secondary', state: 'SYNCHRONIZED', epoch: 0, reachability: 'REACHABLE', fractured: false });
    expect(d.generation).toBe(2);
  });
  it('as UNSYNCHRONIZED in an ACTIVE mirror: starts SYNCHRONIZING', () => {
    const r = applyOp(created(), { op: 'add-secondary', image: spec('bravo'), initialState: 'UNSYNCHRONIZED' });
    expect(img(r.db!, 'bravo').state).toBe('SYNCHRONIZING');
    expect(r.events.map((e) => e.type)).toEqual(['image-added', 'image-state']);
  });
  it('as UNSYNCHRONIZED in an INACTIVE mirror: stays until activated', () => {
    const d = run(created(), { op: 'deactivate' }, { op: 'add-secondary', image: spec('bravo'), initialState: 'UNSYNCHRONIZED' });
    expect(img(d, 'bravo').state).toBe('UNSYNCHRONIZED');
    expect(img(run(d, { op: 'activate' }), 'bravo').state).toBe('SYNCHRONIZING');
  });
  it('refuses duplicates, a second image on one array, a smaller secondary, bad state', () => {
    const d = pair();
    refused(d, { op: 'add-secondary', image: spec('bravo'), initialState: 'SYNCHRONIZED' }, 'exists');
    refused(d, { op: 'add-secondary', image: { ...spec('bravo'), imageId: 'bravo:1', lun: 1 }, initialState: 'SYNCHRONIZED' }, 'exists');
    refused(d, { op: 'add-secondary', image: spec('charlie', GiB - 512), initialState: 'SYNCHRONIZED' }, 'size-mismatch');
    refused(d, { op: 'add-secondary', image: spec('charlie'), initialState: 'CONSISTENT' as 'SYNCHRONIZED' }, 'invalid');
    expect(img(run(d, { op: 'add-secondary', image: spec('charlie', 2 * GiB), initialState: 'SYNCHRONIZED' }), 'charlie').size).toBe(2 * GiB);
  });
});

describe('remove secondary', () => {
  it('graceful and forced remove the image; the primary cannot be removed', () => {
    const d = pair();
    expect(run(d, { op: 'remove-secondary', imageId: 'bravo:0', mode: 'graceful' }).images).toHaveLength(1);
    expect(applyOp(d, { op: 'remove-secondary', imageId: 'bravo:0', mode: 'forced' }).events).toEqual([{ type: 'image-removed', mirrorId: 'm1', imageId: 'bravo:0', mode: 'forced' }]);
    refused(d, { op: 'remove-secondary', imageId: 'alpha:0', mode: 'forced' }, 'not-secondary');
    refused(d, { op: 'remove-secondary', imageId: 'zulu:0', mode: 'forced' }, 'not-found');
  });
  it('graceful needs the image reachable; forced does not', () => {
    const d = run(pair(), { op: 'image-unreachable', imageId: 'bravo:0' });
    refused(d, { op: 'remove-secondary', imageId: 'bravo:0', mode: 'graceful' }, 'unreachable');
    expect(run(d, { op: 'remove-secondary', imageId: 'bravo:0', mode: 'forced' }).images).toHaveLength(1);
  });
});

describe('promote', () => {
  it('a SYNCHRONIZED secondary: new epoch, old primary becomes a SYNCHRONIZED secondary', () => {
    const r = applyOp(pair(), { op: 'promote', imageId: 'bravo:0' });
    const d = r.db!;
    expect(primaryOf(d)).toMatchObject({ imageId: 'bravo:0', epoch: 2, state: null });
    expect(img(d, 'alpha')).toMatchObject({ role: 'secondary', state: 'SYNCHRONIZED', epoch: 1, fractured: false });
    expect(d.epoch).toBe(2);
    expect(mayActAsPrimary(d, 'bravo:0', 2)).toBe(true);
    expect(mayActAsPrimary(d, 'alpha:0', 1)).toBe(false);
    expect(r.events).toContainEqual({ type: 'promoted', mirrorId: 'm1', imageId: 'bravo:0', oldPrimary: 'alpha:0', epoch: 2, forced: false });
  });
  it('a CONSISTENT secondary: the old primary must resync (UNSYNCHRONIZED, fractured by promote), after a split-brain check', () => {
    const d = run(pair(), { op: 'primary-write' }, { op: 'promote', imageId: 'bravo:0' });
    expect(img(d, 'alpha')).toMatchObject({ state: 'UNSYNCHRONIZED', fractured: true, fractureReason: 'promote' });
    const gone = run(d, { op: 'image-unreachable', imageId: 'alpha:0' });
    const back = applyOp(gone, { op: 'image-reachable', imageId: 'alpha:0' });
    expect(img(back.db!, 'alpha')).toMatchObject({ fractured: true, state: 'UNSYNCHRONIZED' });
    expect(back.events.some((e) => e.type === 'awaiting-operator')).toBe(true);
    expect(img(run(back.db, { op: 'synchronize', imageId: 'alpha:0' }), 'alpha')).toMatchObject({ fractured: false, state: 'SYNCHRONIZING' });
  });
  it('refused for SYNCHRONIZING and UNSYNCHRONIZED unless forced', () => {
    const syncing = run(created(), { op: 'add-secondary', image: spec('bravo'), initialState: 'UNSYNCHRONIZED' });
    refused(syncing, { op: 'promote', imageId: 'bravo:0' }, 'state');
    const unsync = run(syncing, { op: 'sync-failed', imageId: 'bravo:0' });
    expect(img(unsync, 'bravo').state).toBe('UNSYNCHRONIZED');
    refused(unsync, { op: 'promote', imageId: 'bravo:0' }, 'state');
    const forced = run(unsync, { op: 'promote', imageId: 'bravo:0', force: true });
    expect(primaryOf(forced).imageId).toBe('bravo:0');
    refused(pair(), { op: 'promote', imageId: 'alpha:0' }, 'not-secondary');
  });
  it('the old primary can never act as primary again, even promoted back (new higher epoch)', () => {
    const d = run(pair(), { op: 'promote', imageId: 'bravo:0' }, { op: 'promote', imageId: 'alpha:0' });
    expect(primaryOf(d)).toMatchObject({ imageId: 'alpha:0', epoch: 3 });
    expect(mayActAsPrimary(d, 'alpha:0', 1)).toBe(false); // its old epoch is stale
    expect(mayActAsPrimary(d, 'alpha:0', 3)).toBe(true);
  });
  it('with other secondaries: after a non-clean promote they become UNSYNCHRONIZED', () => {
    const d = run(pair(), { op: 'add-secondary', image: spec('charlie'), initialState: 'SYNCHRONIZED' }, { op: 'primary-write' }, { op: 'promote', imageId: 'bravo:0' });
    expect(img(d, 'charlie').state).toBe('SYNCHRONIZING'); // UNSYNCHRONIZED, then synced at once (ACTIVE, reachable)
  });
});

describe('synchronize, fracture, reachability', () => {
  it('fracture then synchronize: CONSISTENT -> SYNCHRONIZING -> CONSISTENT -> SYNCHRONIZED', () => {
    let d = run(pair(), { op: 'fracture', imageId: 'bravo:0' });
    expect(img(d, 'bravo')).toMatchObject({ fractured: true, fractureReason: 'admin' });
    refused(d, { op: 'fracture', imageId: 'bravo:0' }, 'state');
    d = run(d, { op: 'primary-write' });
    expect(img(d, 'bravo').state).toBe('CONSISTENT');
    refused(d, { op: 'quiesced', imageId: 'bravo:0' }, 'state'); // fractured: cannot be SYNCHRONIZED
    d = run(d, { op: 'synchronize', imageId: 'bravo:0' });
    expect(img(d, 'bravo')).toMatchObject({ fractured: false, state: 'SYNCHRONIZING' });
    refused(d, { op: 'synchronize', imageId: 'bravo:0' }, 'state');
    d = run(d, { op: 'sync-progress', imageId: 'bravo:0', bytesDone: 10, bytesTotal: 20 });
    expect(img(d, 'bravo').syncProgress).toEqual({ bytesDone: 10, bytesTotal: 20 });
    d = run(d, { op: 'sync-done', imageId: 'bravo:0' }, { op: 'quiesced', imageId: 'bravo:0' });
    expect(img(d, 'bravo')).toMatchObject({ state: 'SYNCHRONIZED', syncProgress: null });
  });
  it('synchronize is refused for a SYNCHRONIZED unfractured image, an unreachable one, an INACTIVE mirror (unless forced CONSISTENT)', () => {
    refused(pair(), { op: 'synchronize', imageId: 'bravo:0' }, 'state');
    refused(run(pair(), { op: 'image-unreachable', imageId: 'bravo:0' }), { op: 'synchronize', imageId: 'bravo:0' }, 'unreachable');
    const inactive = run(pair(), { op: 'primary-write' }, { op: 'deactivate' });
    refused(inactive, { op: 'synchronize', imageId: 'bravo:0' }, 'state');
    expect(img(run(inactive, { op: 'synchronize', imageId: 'bravo:0', force: true }), 'bravo').state).toBe('SYNCHRONIZING');
  });
  it('a fractured SYNCHRONIZED image with no writes just unfractures', () => {
    const d = run(pair(), { op: 'fracture', imageId: 'bravo:0' }, { op: 'synchronize', imageId: 'bravo:0' });
    expect(img(d, 'bravo')).toMatchObject({ state: 'SYNCHRONIZED', fractured: false });
  });
  it('unreachable fractures (link); reachable again resyncs under the auto recovery policy', () => {
    let d = run(pair(), { op: 'primary-write' }, { op: 'image-unreachable', imageId: 'bravo:0' });
    expect(img(d, 'bravo')).toMatchObject({ reachability: 'UNREACHABLE', fractured: true, fractureReason: 'link', state: 'CONSISTENT' });
    refused(d, { op: 'image-unreachable', imageId: 'bravo:0' }, 'state');
    d = run(d, { op: 'image-reachable', imageId: 'bravo:0' });
    expect(img(d, 'bravo')).toMatchObject({ reachability: 'REACHABLE', fractured: false, state: 'SYNCHRONIZING' });
  });
  it('manual recovery policy waits for the operator', () => {
    const r = applyOp(
      run(pair(), { op: 'change-attributes', image: { imageId: 'bravo:0', recoveryPolicy: 'manual' } }, { op: 'primary-write' }, { op: 'image-unreachable', imageId: 'bravo:0' }),
      { op: 'image-reachable', imageId: 'bravo:0' },
    );
    expect(img(r.db!, 'bravo')).toMatchObject({ fractured: true, state: 'CONSISTENT' });
    expect(r.events.some((e) => e.type === 'awaiting-operator')).toBe(true);
    expect(img(run(r.db, { op: 'synchronize', imageId: 'bravo:0' }), 'bravo').state).toBe('SYNCHRONIZING');
  });
  it('a sync interrupted by unreachability fails (UNSYNCHRONIZED) but keeps its progress', () => {
    const d = run(created(), { op: 'add-secondary', image: spec('bravo'), initialState: 'UNSYNCHRONIZED' }, { op: 'sync-progress', imageId: 'bravo:0', bytesDone: 5, bytesTotal: 9 }, { op: 'image-unreachable', imageId: 'bravo:0' });
    expect(img(d, 'bravo')).toMatchObject({ state: 'UNSYNCHRONIZED', syncProgress: { bytesDone: 5, bytesTotal: 9 } });
    expect(img(run(d, { op: 'image-reachable', imageId: 'bravo:0' }), 'bravo').state).toBe('SYNCHRONIZING');
  });
  it('history-lost and updates-lost', () => {
    const c = run(pair(), { op: 'primary-write' });
    expect(img(run(c, { op: 'history-lost', imageId: 'bravo:0' }), 'bravo').state).toBe('SYNCHRONIZING'); // UNSYNCHRONIZED, resynced at once
    expect(img(run(c, { op: 'updates-lost', imageId: 'bravo:0' }), 'bravo').state).toBe('SYNCHRONIZING');
    refused(pair(), { op: 'updates-lost', imageId: 'bravo:0' }, 'state');
  });
});

describe('activate, deactivate, destroy', () => {
  it('activate from INACTIVE; refused otherwise', () => {
    refused(pair(), { op: 'activate' }, 'state');
    const d = run(pair(), { op: 'deactivate' });
    expect(d.state).toBe('INACTIVE');
    refused(d, { op: 'deactivate' }, 'state');
    refused(d, { op: 'primary-write' }, 'state');
    expect(run(d, { op: 'activate' }).state).toBe('ACTIVE');
  });
  it('activate with the minimum conditions unmet goes to ATTENTION', () => {
    const d = run(pair({ maxMissingImages: 0 }), { op: 'deactivate' }, { op: 'image-unreachable', imageId: 'bravo:0' }, { op: 'activate' });
    expect(d.state).toBe('ATTENTION');
    refused(d, { op: 'activate' }, 'state');
    expect(run(d, { op: 'image-reachable', imageId: 'bravo:0' }).state).toBe('ACTIVE');
  });
  it('deactivate refuses while SYNCHRONIZING unless forced (the sync fails)', () => {
    const d = run(created(), { op: 'add-secondary', image: spec('bravo'), initialState: 'UNSYNCHRONIZED' });
    refused(d, { op: 'deactivate' }, 'state');
    const f = run(d, { op: 'deactivate', force: true });
    expect(f.state).toBe('INACTIVE');
    expect(img(f, 'bravo').state).toBe('UNSYNCHRONIZED');
  });
  it('destroy only when INACTIVE with no secondaries', () => {
    refused(pair(), { op: 'destroy' }, 'has-secondaries');
    refused(created(), { op: 'destroy' }, 'state');
    const r = applyOp(run(created(), { op: 'deactivate' }), { op: 'destroy' });
    expect(r).toEqual({ db: null, events: [{ type: 'mirror-destroyed', mirrorId: 'm1' }] });
  });
});

describe('minimum images, activation policy, attributes', () => {
  it('ACTIVE -> ATTENTION when too many images are missing; back under the automatic policy', () => {
    let d = run(pair({ maxMissingImages: 0 }), { op: 'image-unreachable', imageId: 'bravo:0' });
    expect(d.state).toBe('ATTENTION');
    expect(requirements(d)).toMatchObject({ met: false, missing: 1 });
    d = run(d, { op: 'image-reachable', imageId: 'bravo:0' });
    expect(d.state).toBe('ACTIVE');
  });
  it('manual policy: ATTENTION -> INACTIVE when the problem is gone', () => {
    const d = run(pair({ activationPolicy: 'manual' }), { op: 'change-attributes', attributes: { minImagesRequired: 2 } }, { op: 'image-unreachable', imageId: 'bravo:0' });
    expect(d.state).toBe('ATTENTION');
    refused(d, { op: 'synchronize', imageId: 'bravo:0' }, 'unreachable');
    expect(run(d, { op: 'change-attributes', attributes: { minImagesRequired: 1 } }).state).toBe('INACTIVE');
    const back = applyOp(d, { op: 'image-reachable', imageId: 'bravo:0' });
    expect(back.db!.state).toBe('INACTIVE');
    expect(img(back.db!, 'bravo')).toMatchObject({ fractured: true, fractureReason: 'link' });
    expect(back.events.some((e) => e.type === 'awaiting-operator')).toBe(true);
    // activating resumes it (auto recovery policy)
    expect(img(run(back.db, { op: 'activate' }), 'bravo')).toMatchObject({ fractured: false, state: 'SYNCHRONIZED' });
  });
  it('changing attributes re-evaluates the rule and validates', () => {
    const d = pair();
    const r = applyOp(d, { op: 'change-attributes', attributes: { minImagesRequired: 2, syncRate: 1000 } });
    expect(r.db).toMatchObject({ minImagesRequired: 2, syncRate: 1000, state: 'ACTIVE' });
    expect(r.events).toContainEqual({ type: 'attributes-changed', mirrorId: 'm1', changed: ['minImagesRequired', 'syncRate'] });
    refused(d, { op: 'change-attributes', attributes: { minImagesRequired: 3 } }, 'invalid');
    refused(d, { op: 'change-attributes', attributes: { regionSize: 4096 } as never }, 'invalid');
    refused(d, { op: 'change-attributes', attributes: { syncPriority: 'urgent' as 'high' } }, 'invalid');
    refused(d, { op: 'change-attributes', image: { imageId: 'bravo:0', syncRate: 0 } }, 'invalid');
    expect(img(run(d, { op: 'change-attributes', image: { imageId: 'bravo:0', syncRate: 5 } }), 'bravo').syncRate).toBe(5);
  });
});

describe('record', () => {
  it('parseMirrorDb rejects other formats and versions, and malformed records', () => {
    const d = pair();
    expect(() => parseMirrorDb({ ...d, version: 2 })).toThrow(/version/);
    expect(() => parseMirrorDb({ ...d, format: 'x' })).toThrow(/format/);
    expect(() => parseMirrorDb({ ...d, images: d.images.map((i) => ({ ...i, role: 'primary', state: null })) })).toThrow(/primary/);
    expect(() => parseMirrorDb(null)).toThrow();
  });
  it('compareRecords: higher epoch, then generation', () => {
    const a = pair();
    const b = run(a, { op: 'primary-write' });
    const c = run(a, { op: 'promote', imageId: 'bravo:0' });
    expect(compareRecords(b, a)).toBe(1);
    expect(compareRecords(a, a)).toBe(0);
    expect(compareRecords(c, run(b, { op: 'quiesced', imageId: 'bravo:0' }, { op: 'primary-write' }, { op: 'quiesced', imageId: 'bravo:0' }))).toBe(1);
  });
  it('never mutates its input', () => {
    const d = pair();
    const s = JSON.stringify(d);
    applyOp(d, { op: 'promote', imageId: 'bravo:0' });
    applyOp(d, { op: 'image-unreachable', imageId: 'bravo:0' });
    expect(JSON.stringify(d)).toBe(s);
  });
});
