// A secondary protected during a resync, against real processes: alpha (its own process, run
// from dist/) mirrors disk0 synchronously to bravo; the dependent-write workload of
// src/check/prefix writes through NBD; the mirror is fractured while the writes go on, then
// synchronized (slowly), and alpha is SIGKILLed in the middle of the resync. bravo's image then
// mixes regions of different times: `sanbox mirror promote` refuses it, naming the snapshot its
// array cut before the resync began; `--from-snapshot` rolls it back to that snapshot (a prefix
// of the acknowledged writes, older than the primary's last write) and promotes it; `--force`
// promotes the mixed image as it is. bin/sanbox.js and the child run dist/: build first.
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startArray, startChassisArray, type RunningArray } from '../../src/control/service.js';
import { DEFAULT_SPS } from '../../src/array/chassis/index.js';
import type { BlockDevice } from '../../src/block/index.js';
import { BIN } from '../support/paths.js';
import { freePort, linkBetween, until, SECRET } from '../support/mirror-lab.js';
import { BLOCK, DependentWriters, kill, startChild } from '../support/workload.js';
import { captureCli } from '../support/cli.js';
import { requireBuild } from '../support/paths.js';
import { seededRandom } from '../support/random.js';
import { LabError, parseLab } from '../../src/cli/lab.js';

const MiB = 1024 * 1024;
const LUN_SIZE = 64 * MiB;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Setup {
  alpha: { proc: ChildProcess; nbdPort: number; apiUrl: string };
  bravo: RunningArray;
  bravoApi: string;
  writers: DependentWriters;
  events: Array<Record<string, unknown>>;
}

async function api(url: string, method: string, path: string, body?: unknown): Promise<any> {
  const r = await fetch(url + path, { method, headers: { 'Content-Type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const j = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

/**
 * alpha (child) and bravo (here) mirrored, the workload running, then: fractured for a while,
 * synchronized at 8 MiB/s, and alpha killed once the resync has rewritten part of bravo.
 */
/** bravo's LUN as its hosts see it: the image, or on a two-SP array the owner SP's cache. */
function lunOf(bravo: RunningArray): BlockDevice {
  return bravo.chassis ? bravo.chassis.lunDevice(0)! : bravo.array.device('disk0')!;
}

async function disasterMidResync(seed: number, bravoSps = false): Promise<Setup> {
  requireBuild('control/service.js', 'run `npx tsc -p tsconfig.json`');
  const root = await mkdtemp(join(tmpdir(), 'sanbox-protect-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const [aLink, bLink] = [await freePort(), await freePort()];
  const { emu, toA, toB } = await linkBetween(aLink, bLink);
  cleanups.push(() => emu.stop());
  const luns = [{ name: 'disk0', size: LUN_SIZE }];
  const timers = { reconnectInitialMs: 50, reconnectMaxMs: 200 };
  const bravoCfg = {
    name: 'bravo',
    dir: join(root, 'bravo'),
    nbd: { bind: '127.0.0.1', port: 0 },
    api: { bind: '127.0.0.1', port: 0 },
    luns,
    sync: false,
    remoteLink: { bind: '127.0.0.1', port: bLink, peers: [{ array: 'alpha', host: '127.0.0.1', port: toA, secret: SECRET }], timers },
  };
  const bravo = bravoSps
    ? await startChassisArray({ ...bravoCfg, sps: { ...structuredClone(DEFAULT_SPS), cacheBytes: 16 * MiB } }, { exec: process.execPath, args: [BIN] })
    : await startArray(bravoCfg);
  cleanups.push(() => bravo.close(100));
  const events: Array<Record<string, unknown>> = [];
  bravo.array.on('event', (e: Record<string, unknown>) => events.push(e));
  const cfg = join(root, 'alpha.json');
  const setup = join(root, 'setup.json');
  await writeFile(cfg, JSON.stringify({ name: 'alpha', dir: join(root, 'alpha'), nbd: { bind: '127.0.0.1', port: 0 }, api: { bind: '127.0.0.1', port: 0 }, luns, remoteLink: { bind: '127.0.0.1', port: aLink, peers: [{ array: 'bravo', host: '127.0.0.1', port: toB, secret: SECRET }], timers } }));
  await writeFile(setup, JSON.stringify({ mirrors: [{ name: 'm0', lun: 'disk0', to: { array: 'bravo', lun: 'disk0' } }] }));
  const child = await startChild(cfg, setup);
  cleanups.push(() => kill(child.proc));
  const alpha = { proc: child.proc, nbdPort: child.nbdPort, apiUrl: child.apiUrl! };
  await api(alpha.apiUrl, 'PATCH', '/v1/mirrors/m0', { syncRate: 8 * MiB });

  const writers = new DependentWriters(seed, LUN_SIZE / BLOCK, seededRandom(seed), 1, 2);
  await writers.start(alpha.nbdPort);
  cleanups.push(() => writers.stop());
  // Some writes in sync first (on both sides), however slow the machine is.
  await until(() => writers.ackOrder.length >= 50, 20_000, 'writes acknowledged before the fracture');
  await api(alpha.apiUrl, 'POST', '/v1/mirrors/m0/fracture', {});
  await sleep(1000); // writes go on: only alpha has them, its fracture log marks them
  const sync = await api(alpha.apiUrl, 'POST', '/v1/mirrors/m0/synchronize', {});
  expect(sync.images[1].state).toBe('SYNCHRONIZING');
  await until(() => events.some((e) => e.type === 'snapshot.resync-protected'), 10_000, 'the protection on bravo');
  await until(async () => ((await api(alpha.apiUrl, 'GET', '/v1/mirrors/m0')).images[1].resync?.bytesDone ?? 0) > 2 * MiB, 10_000, 'the resync under way');
  await kill(alpha.proc); // the primary is lost in the middle of the resync
  await writers.stop();
  return { alpha, bravo, bravoApi: bravo.apiUrl!, writers, events };
}

describe('a secondary protected during a resync (real processes)', () => {
  it.each([
    ['a single-process secondary', false],
    ['a two-SP secondary (the snapshot in its chassis, the image in its SPs\' caches)', true],
  ])('%s: promote refuses the mixed image; --from-snapshot rolls it back to a consistent, older point and promotes it', async (_what, bravoSps) => {
    const s = await disasterMidResync(20261202, bravoSps);
    const { bravo, writers } = s;
    const name = s.events.find((e) => e.type === 'snapshot.resync-protected')!.snapshot as string;
    const mixed = await lunOf(bravo).read(0, LUN_SIZE);
    expect(() => writers.check([mixed], 'bravo mid-resync'), 'the image mid-resync is not a prefix').toThrow();

    const status = await captureCli(['mirror', 'status', 'm0', '--api', s.bravoApi]);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(new RegExp(`fallback: snapshot ${name} \\(disk0@${name}\\), [0-9.]+ s old, cut when the resync began`));

    const refused = await captureCli(['mirror', 'promote', 'm0', '--api', s.bravoApi, '--json']);
    expect(refused.code).toBe(1);
    expect(refused.json.error.code).toBe('inconsistent');
    expect(refused.json.error.message).toMatch(new RegExp(`SYNCHRONIZING.*promotion refused.*snapshot ${name}.*taken [0-9.]+ s ago.*--from-snapshot.*--force`));
    expect(bravo.mirrors!.get('m0').local.role).toBe('secondary');

    const usage = await captureCli(['mirror', 'promote', 'm0', '--api', s.bravoApi, '--force', '--from-snapshot', '--json']);
    expect(usage.code).toBe(2);

    const snap = await bravo.snapshots!.device(`disk0@${name}`)!.device.read(0, LUN_SIZE);
    const inSnapshot = writers.check([snap], 'the protection snapshot');
    expect(inSnapshot.size).toBeGreaterThanOrEqual(50); // every write acknowledged before the fracture
    expect(inSnapshot.size).toBeLessThan(writers.ackOrder.length); // older than the primary's last write

    const promoted = await captureCli(['mirror', 'promote', 'm0', '--api', s.bravoApi, '--from-snapshot', '--json']);
    expect(promoted.code, promoted.err + promoted.out).toBe(0);
    expect(promoted.json.local.role).toBe('primary');
    const image = await lunOf(bravo).read(0, LUN_SIZE);
    expect(image.equals(snap)).toBe(true);
    expect(writers.check([image], 'bravo promoted from its snapshot').size).toBe(inSnapshot.size);
    expect(s.events.filter((e) => e.type === 'mirror.promoted-from-snapshot')).toHaveLength(1);
    await until(() => bravo.snapshots!.list().length === 0, 5000, 'the fallback released');
    // the old primary must take every region the rollback rewrote from the new primary
    const fracture = bravo.mirrors!.get('m0').images.find((i) => i.array === 'alpha')!.fractureLog!;
    expect(fracture.regions).toBeGreaterThan(0);
  }, 60_000);

  it('--force promotes the mixed image as it is, and keeps the snapshot for the operator', async () => {
    const s = await disasterMidResync(20261203);
    const { bravo, writers } = s;
    const name = s.events.find((e) => e.type === 'snapshot.resync-protected')!.snapshot as string;
    const mixed = await bravo.array.device('disk0')!.read(0, LUN_SIZE);
    const forced = await captureCli(['mirror', 'promote', 'm0', '--api', s.bravoApi, '--force', '--json']);
    expect(forced.code, forced.err + forced.out).toBe(0);
    expect(forced.json.local.role).toBe('primary');
    const image = await bravo.array.device('disk0')!.read(0, LUN_SIZE);
    expect(image.equals(mixed)).toBe(true);
    expect(() => writers.check([image], 'bravo forced'), 'a forced promote keeps the mixed image').toThrow();
    expect(bravo.snapshots!.list().map((v) => v.name)).toEqual([name]);
  }, 60_000);

  it('a group through the CLI: snapshot on the secondary names its journal record; promote refuses mid-resync, --from-snapshot rolls every member back', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sanbox-protect-group-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const [aLink, bLink] = [await freePort(), await freePort()];
    const { emu, toA, toB } = await linkBetween(aLink, bLink);
    cleanups.push(() => emu.stop());
    const luns = [
      { name: 'disk0', size: 16 * MiB },
      { name: 'disk1', size: 16 * MiB },
    ];
    const timers = { reconnectInitialMs: 50, reconnectMaxMs: 200 };
    const start = (name: string, port: number, peer: string, to: number) =>
      startArray({ name, dir: join(root, name), nbd: { bind: '127.0.0.1', port: 0 }, api: { bind: '127.0.0.1', port: 0 }, luns, sync: false, remoteLink: { bind: '127.0.0.1', port, peers: [{ array: peer, host: '127.0.0.1', port: to, secret: SECRET }], timers } });
    const bravo = await start('bravo', bLink, 'alpha', toA);
    cleanups.push(() => bravo.close(100));
    const alpha = await start('alpha', aLink, 'bravo', toB);
    let alphaUp = true;
    cleanups.push(() => (alphaUp ? alpha.close(100) : undefined));
    const events: Array<Record<string, unknown>> = [];
    bravo.array.on('event', (e: Record<string, unknown>) => events.push(e));
    const a = alpha.mirrors!;
    for (const lun of ['disk0', 'disk1']) {
      await a.create({ lun, name: `m-${lun}` });
      await a.addSecondary(`m-${lun}`, { array: 'bravo', lun, synchronized: true });
    }
    await until(() => a.list().every((m) => m.images[1]!.link === 'connected'), 10_000, 'links');
    await a.groups.create({ name: 'g0', members: ['m-disk0', 'm-disk1'], attributes: { mode: 'asynchronous' } });
    await until(() => !a.groups.get('g0').record.bypass.on && a.groups.get('g0').senders.every((x) => x.state === 'running'), 10_000, 'journaling');
    const d = ['disk0', 'disk1'].map((l) => alpha.array.catalog().lookup(l)!.device);
    for (let i = 0; i < 40; i++) await d[i % 2]!.write(i * 65536, Buffer.alloc(65536, i + 1));
    await until(() => a.groups.get('g0').metrics!.entriesWaiting === 0, 10_000, 'drained');
    const bApi = bravo.apiUrl!;

    const snap = await captureCli(['group', 'snapshot', 'g0', 'pit1', '--api', bApi, '--json']);
    expect(snap.code, snap.err + snap.out).toBe(0);
    expect(snap.json).toMatchObject({ group: 'g0', role: 'secondary', groupSeq: 40 });
    expect(snap.json.snapshots.map((x: { export: string }) => x.export)).toEqual(['disk0@pit1', 'disk1@pit1']);
    const text = await captureCli(['group', 'snapshot', 'g0', 'pit2', '--api', bApi]);
    expect(text.out).toMatch(/between two applied batches: the group through journal record 40/);
    const point = [await bravo.array.device('disk0')!.read(0, 16 * MiB), await bravo.array.device('disk1')!.read(0, 16 * MiB)];

    await a.groups.bypass('g0', true);
    for (let i = 0; i < 200; i++) await d[i % 2]!.write(i * 65536, Buffer.alloc(65536, 100 + (i % 100)));
    for (const m of ['m-disk0', 'm-disk1']) await a.setAttributes(m, { syncRate: MiB });
    await a.groups.bypass('g0', false);
    await until(() => events.some((e) => e.type === 'snapshot.resync-protected'), 10_000, 'the group protection');
    await until(() => (a.get('m-disk0').images[1]!.resync?.bytesDone ?? 0) > 0, 10_000, 'the resync under way');
    await sleep(200);
    alphaUp = false;
    await alpha.close(100); // the primary site is lost
    const fb = events.find((e) => e.type === 'snapshot.resync-protected')!;
    expect(fb).toMatchObject({ group: 'g0', groupSeq: 40 });

    const status = await captureCli(['group', 'status', 'g0', '--api', bApi]);
    expect(status.out).toMatch(new RegExp(`fallback +snapshot ${fb.snapshot as string} of m-disk0, m-disk1, [0-9.]+ s old \\(cut when the resync began, through journal record 40\\)`));
    const refused = await captureCli(['group', 'promote', 'g0', '--api', bApi, '--json']);
    expect(refused.code).toBe(1);
    expect(refused.json.error).toMatchObject({ code: 'inconsistent', message: expect.stringMatching(/NOT a consistent copy on bravo.*--from-snapshot/) });
    const promoted = await captureCli(['group', 'promote', 'g0', '--api', bApi, '--from-snapshot']);
    expect(promoted.code, promoted.err + promoted.out).toBe(0);
    expect(promoted.out).toMatch(new RegExp(`rolled back to snapshot ${fb.snapshot as string} first: .*through journal record 40.*a consistent copy`));
    expect((await bravo.array.device('disk0')!.read(0, 16 * MiB)).equals(point[0]!)).toBe(true);
    expect((await bravo.array.device('disk1')!.read(0, 16 * MiB)).equals(point[1]!)).toBe(true);
  }, 60_000);
});

describe('protectResync in lab files', () => {
  const yaml = (mirror: string, group: string) => `
lab: t
arrays:
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 10870 }, luns: [{ name: disk0, size: 64M }, { name: disk1, size: 64M }] }
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 10880 }, luns: [{ name: disk0, size: 64M }, { name: disk1, size: 64M }] }
links:
  - { name: ab, between: [alpha, bravo], listen: { toB: 10871, toA: 10872 }, secret: a-secret-of-16-chars }
mirrors:
  - { name: m0, primary: alpha:disk0, secondaries: [bravo:disk0]${mirror} }
  - { name: m1, primary: alpha:disk1, secondaries: [bravo:disk1] }
groups:
  - { name: g0, members: [m1]${group} }
`;
  it('takes it on mirrors and groups (default: on, the driver decides), and refuses anything but true or false', () => {
    const lab = parseLab(yaml(', protectResync: false', ', protectResync: true'), '/labs/t.yaml');
    expect(lab.mirrors.find((m) => m.name === 'm0')!.protectResync).toBe(false);
    expect(lab.mirrors.find((m) => m.name === 'm1')!.protectResync).toBeUndefined();
    expect(lab.groups[0]!.attributes.protectResync).toBe(true);
    let problems: string[] = [];
    try {
      parseLab(yaml(', protectResync: maybe', ', protectResync: 1'), '/labs/t.yaml');
    } catch (e) {
      expect(e).toBeInstanceOf(LabError);
      problems = (e as LabError).problems;
    }
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(/mirror m0\.protectResync must be true or false/), expect.stringMatching(/group g0\.protectResync must be true or false/)]));
  });
});
