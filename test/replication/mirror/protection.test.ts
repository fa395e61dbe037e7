// Resync protection between real arrays (in this process, joined by a link emulator): before a
// resync rewrites a secondary, the secondary's array snapshots it, and the snapshot holds exactly
// the image as it was before any resync write (or any host write let through by the resync)
// landed, even when the cut is slow; it is released once the image is consistent again. A
// consistency group's members are protected together (one cut between two applied batches) and a
// group promote refuses the mixed copy, or rolls every member back to that point.
import { describe, it, expect, afterEach } from 'vitest';
import { makeLab, groupLab, until, type Lab } from '../../support/mirror-lab.js';
import type { SnapshotManager } from '../../../src/snapshot/index.js';
import { seededBytes } from '../../support/random.js';

const MiB = 1024 * 1024;
const REGION = 64 * 1024;
let lab: Lab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function snapshotsOf(l: Lab, array: string): SnapshotManager {
  return l.sites[array]!.running!.snapshots!;
}

/** Reads a snapshot export (LUN@NAME) of `array`. */
async function readSnapshot(l: Lab, array: string, exp: string, size: number): Promise<Buffer> {
  const d = snapshotsOf(l, array).device(exp);
  if (!d) throw new Error(`no snapshot export ${exp} on ${array}`);
  return d.device.read(0, size);
}

describe('resync protection of a mirror', () => {
  it('the snapshot is cut before any resync or host write reaches the image, however slow the cut; released when consistent', async () => {
    const SIZE = 8 * MiB;
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: SIZE }], { timers: { reconnectMaxMs: 300, quiesceMs: 200 } });
    const a = lab.node('alpha');
    await a.create({ lun: 'disk0', name: 'm0', attributes: { syncRate: 256 * MiB } });
    await a.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(() => a.get('m0').images[1]!.link === 'connected', 10_000, 'link');
    const host = lab.hostDevice('alpha');
    for (let i = 0; i < 64; i++) await host.write(i * REGION, seededBytes(i, REGION));
    const bravoImage = lab.sites.bravo!.running!.array.device('disk0')!;
    const before = await bravoImage.read(0, SIZE);
    expect(before.equals(await lab.sites.alpha!.running!.array.device('disk0')!.read(0, SIZE))).toBe(true);

    await a.fracture('m0');
    for (let i = 0; i < 96; i++) await host.write(i * REGION, seededBytes(1000 + i, REGION));
    expect((await bravoImage.read(0, SIZE)).equals(before)).toBe(true); // fractured: nothing went there

    // The cut is slow (every snapshot of bravo waits 400 ms first), and the release is recorded
    // but not done, so the snapshot can be read after the resync.
    const snaps = snapshotsOf(lab, 'bravo');
    const create = snaps.create.bind(snaps);
    snaps.create = async (...args: Parameters<SnapshotManager['create']>) => {
      await sleep(400);
      return create(...args);
    };
    const released: string[] = [];
    snaps.delete = (async (_lun: number | string, name: string) => {
      released.push(name);
      return undefined;
    }) as SnapshotManager['delete'];

    await a.synchronize('m0');
    // Host writes while the secondary cuts its protection: to regions its fracture log does not
    // mark. They must not reach it before the cut (they only mark the fracture log meanwhile).
    for (let i = 100; i < 110; i++) await host.write(i * REGION, seededBytes(2000 + i, REGION));
    await until(() => {
      const im = a.get('m0').images[1]!;
      return !im.resync && (im.state === 'CONSISTENT' || im.state === 'SYNCHRONIZED') && im.fractureLog!.regions === 0;
    }, 20_000, 'resync done');

    await until(() => lab!.events('bravo', 'snapshot.resync-protected').length > 0, 5000, 'the protection cut');
    const protectedEv = lab.events('bravo', 'snapshot.resync-protected');
    expect(protectedEv).toHaveLength(1);
    const name = protectedEv[0]!.snapshot as string;
    expect(name).toMatch(/^resync-m0-/);
    // the point in time it keeps: the image before the resync, not one byte of the resync or of the host writes
    expect((await readSnapshot(lab, 'bravo', `disk0@${name}`, SIZE)).equals(before)).toBe(true);
    // the secondary is whole again, and the protection was released after the resync
    expect((await bravoImage.read(0, SIZE)).equals(await lab.sites.alpha!.running!.array.device('disk0')!.read(0, SIZE))).toBe(true);
    await until(() => released.includes(name), 5000, 'release');
    const types = lab.events('bravo').map((e) => e.type);
    expect(types.indexOf('snapshot.resync-protection-released')).toBeGreaterThan(types.indexOf('snapshot.resync-protected'));
    expect(lab.node('bravo').get('m0').protection).toMatchObject({ enabled: true, state: 'consistent', fallback: null });
  }, 45_000);

  it('protectResync off: the resync runs bare, and the view says there is nothing to fall back to', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 4 * MiB }], { timers: { reconnectMaxMs: 300, quiesceMs: 200 } });
    const a = lab.node('alpha');
    await a.create({ lun: 'disk0', name: 'm0', attributes: { protectResync: false } });
    await a.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(() => a.get('m0').images[1]!.link === 'connected', 10_000, 'link');
    await a.fracture('m0');
    await lab.hostDevice('alpha').write(0, seededBytes(1, REGION));
    await a.synchronize('m0');
    await until(() => !a.get('m0').images[1]!.resync && a.get('m0').images[1]!.state !== 'SYNCHRONIZING', 10_000, 'resync');
    expect(lab.events('bravo', 'snapshot.resync-protected')).toHaveLength(0);
    expect(lab.events('bravo', 'snapshot.resync-unprotected')[0]).toMatchObject({ mirror: 'm0', reason: expect.stringMatching(/protectResync is off/) });
    expect(snapshotsOf(lab, 'bravo').list()).toHaveLength(0);
  }, 30_000);
});

describe('resync protection on failback', () => {
  it('the old primary, back as a secondary, is snapshotted before the new primary resyncs it', async () => {
    const SIZE = 4 * MiB;
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: SIZE }], { timers: { reconnectMaxMs: 300, quiesceMs: 200 } });
    const a = lab.node('alpha');
    await a.create({ lun: 'disk0', name: 'm0' });
    await a.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(() => a.get('m0').images[1]!.link === 'connected', 10_000, 'link');
    for (let i = 0; i < 16; i++) await lab.hostDevice('alpha').write(i * REGION, seededBytes(i, REGION));
    const alphaBefore = await lab.sites.alpha!.running!.array.device('disk0')!.read(0, SIZE);
    await lab.stop('alpha');
    await lab.node('bravo').promote('m0', { force: true });
    for (let i = 8; i < 24; i++) await lab.hostDevice('bravo').write(i * REGION, seededBytes(900 + i, REGION));
    await lab.start('alpha'); // it learns it was superseded, and the new primary resyncs it
    await until(() => {
      const im = lab!.node('bravo').get('m0').images.find((i) => i.array === 'alpha')!;
      return !im.resync && (im.state === 'CONSISTENT' || im.state === 'SYNCHRONIZED') && !im.fractured;
    }, 20_000, 'failback resync');
    const ev = lab.events('alpha', 'snapshot.resync-protected');
    expect(ev).toHaveLength(1);
    await until(() => lab!.events('alpha', 'snapshot.resync-protection-released').length > 0, 5000, 'release');
    expect(lab.events('alpha', 'snapshot.resync-protection-released')[0]).toMatchObject({ snapshot: ev[0]!.snapshot });
    // alpha's image is the new primary's now; before the resync it was its own last point (kept until the release)
    expect((await lab.sites.alpha!.running!.array.device('disk0')!.read(0, SIZE)).equals(await lab.sites.bravo!.running!.array.device('disk0')!.read(0, SIZE))).toBe(true);
    expect(alphaBefore.equals(await lab.sites.alpha!.running!.array.device('disk0')!.read(0, SIZE))).toBe(false);
  }, 45_000);
});

describe('resync protection of a consistency group', () => {
  it('protects every member at one point; promote refuses the mixed copy and --from-snapshot rolls every member back to it', async () => {
    lab = await groupLab();
    const a = lab.node('alpha');
    const b = lab.node('bravo');
    const d0 = lab.hostDevice('alpha', 'disk0');
    const d1 = lab.hostDevice('alpha', 'disk1');
    for (let i = 0; i < 32; i++) await (i % 2 ? d1 : d0).write(i * REGION, seededBytes(i, REGION));
    await until(() => a.groups.get('g0').metrics!.entriesWaiting === 0, 10_000, 'drained');
    const read = (arr: string, lun: string) => lab!.sites[arr]!.running!.array.device(lun)!.read(0, 16 * MiB);
    const pointA = [await read('alpha', 'disk0'), await read('alpha', 'disk1')];
    expect(pointA[0]!.equals(await read('bravo', 'disk0'))).toBe(true);

    await a.groups.bypass('g0', true);
    for (let i = 0; i < 160; i++) await (i % 2 ? d1 : d0).write(i * REGION, seededBytes(5000 + i, REGION));
    for (const m of ['m-disk0', 'm-disk1']) await a.setAttributes(m, { syncRate: 1 * MiB });
    await a.groups.bypass('g0', false); // the resync from the fracture logs starts; journaling resumes after it
    await until(() => lab!.events('bravo', 'snapshot.resync-protected').length > 0, 10_000, 'protection');
    const ev = lab.events('bravo', 'snapshot.resync-protected')[0]!;
    expect(ev).toMatchObject({ group: 'g0', mirrors: ['m-disk0', 'm-disk1'] });
    expect(typeof ev.groupSeq).toBe('number');
    // let the resync rewrite part of the members, then lose the primary
    await until(() => a.get('m-disk0').images[1]!.resync !== null && a.get('m-disk0').images[1]!.resync!.bytesDone > 0, 10_000, 'resync under way');
    await sleep(300);
    await lab.stop('alpha');

    const view = b.groups.get('g0');
    expect(view.protection?.fallback).toMatchObject({ snapshot: ev.snapshot, valid: true, members: ['m-disk0', 'm-disk1'], groupSeq: ev.groupSeq });
    await expect(b.groups.promote('g0')).rejects.toMatchObject({ code: 'inconsistent', message: expect.stringMatching(new RegExp(`NOT a consistent copy.*snapshot ${ev.snapshot as string}.*--from-snapshot`)) });
    expect(b.groups.get('g0').role).toBe('secondary'); // refused: nothing changed
    const promoted = await b.groups.promote('g0', { fromSnapshot: true });
    expect(promoted.role).toBe('primary');
    expect(promoted.promotion).toMatchObject({ consistent: true, fromSnapshot: { snapshot: ev.snapshot, groupSeq: ev.groupSeq } });
    expect((await read('bravo', 'disk0')).equals(pointA[0]!)).toBe(true);
    expect((await read('bravo', 'disk1')).equals(pointA[1]!)).toBe(true);
    expect(lab.events('bravo', 'group.promoted-from-snapshot')).toHaveLength(1);
    await until(() => snapshotsOf(lab!, 'bravo').list().length === 0, 5000, 'fallback released');
    // the ranges the rollback rewrote are for the old primary to take from here
    expect(b.get('m-disk0').images.find((i) => i.array === 'alpha')!.fractureLog!.regions).toBeGreaterThan(0);
  }, 60_000);

  it('a group snapshot on the secondary is cut between two applied batches and names the journal record', async () => {
    lab = await groupLab();
    const a = lab.node('alpha');
    const b = lab.node('bravo');
    const d0 = lab.hostDevice('alpha', 'disk0');
    for (let i = 0; i < 20; i++) await d0.write(i * 4096, seededBytes(i, 4096));
    await until(() => a.groups.get('g0').metrics!.entriesWaiting === 0, 10_000, 'drained');
    const r = await b.groups.snapshot('g0', 'pit1');
    expect(r).toMatchObject({ group: 'g0', role: 'secondary', groupSeq: b.groups.get('g0').receiver!.nextExpected - 1 });
    expect(r.snapshots.map((s) => s.name)).toEqual(['pit1', 'pit1']);
    const p = await a.groups.snapshot('g0', 'pit1');
    expect(p).toMatchObject({ role: 'primary', groupSeq: null });
    expect(p.pauseMs).toBeLessThan(50);
  }, 30_000);
});
