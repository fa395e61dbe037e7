// The pair resync monitor against a real lab (`sanbox up` with `monitor:`): two arrays, a link
// emulator, a synchronous mirror m0 (manual recovery: only the monitor brings it back), a mirror
// m3 with autorecover off, and a group g0. Host writes go through qemu-io over NBD. Covers the
// return codes SHOW 0 and 1 of chkmon's table (the other cells: test/cli/monitor).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, REPO, requireBuild } from '../support/paths.js';
import { freePort, until } from '../support/net.js';

let tmp: string;
let labFile: string;
const PRMD = join(REPO, 'bin', 'prmd.js');
const CHKMON = join(REPO, 'bin', 'chkmon.js');

function run(bin: string, args: string[], timeout = 60_000): { code: number; out: string; err: string; json: any } {
  const r = spawnSync(process.execPath, [bin, ...args], { env: { ...process.env, SANBOX_IMAGES: tmp, SANBOX_LAB: '', SANBOX_API: '', SANBOX_MONITOR_STATE: '' }, encoding: 'utf8', timeout });
  let json: any;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr, json };
}
const sanbox = (args: string[], timeout?: number) => run(BIN, args, timeout);
const chkmon = (args: string[]) => run(CHKMON, args);
const show = (group: string) => chkmon(['-n', 'mon', '-g', group, '-show', '--json']);

async function labState(): Promise<any> {
  return JSON.parse(await readFile(join(tmp, '.labs', 'mon.json'), 'utf8'));
}

/** Writes `pattern` over `length` bytes at `offset` of alpha's LUN through NBD (qemu-io). */
async function hostWrite(lun: string, pattern: number, offset: string, length: string): Promise<void> {
  const port = (await labState()).arrays[0].nbd.port as number;
  const r = spawnSync('qemu-io', ['-f', 'raw', '-c', `write -P ${pattern} ${offset} ${length}`, `nbd://127.0.0.1:${port}/${lun}`], { encoding: 'utf8', timeout: 30_000 });
  expect(r.status, r.stderr).toBe(0);
}

function events(since = 0): any[] {
  const r = sanbox(['monitor', 'events', '--since', String(since), '--json']);
  expect(r.code, r.err).toBe(0);
  return r.out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

const lastSeq = () => events().at(-1)?.seq ?? 0;

beforeAll(async () => {
  requireBuild('cli/monitor/index.js');
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-mon-'));
  const [ra, rb] = [await freePort(), await freePort()];
  labFile = join(tmp, 'mon.yaml');
  const luns = '[{ name: disk0, size: 8M }, { name: disk1, size: 8M }, { name: disk2, size: 8M }, { name: disk3, size: 8M }]';
  await writeFile(
    labFile,
    `
lab: mon
arrays:
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${ra} }, luns: ${luns} }
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${rb} }, luns: ${luns} }
links:
  - { name: ab, between: [alpha, bravo], latency: 0, secret: monitor-test-link-secret }
mirrors:
  - { name: m0, primary: alpha:disk0, secondaries: [{ image: bravo:disk0, recovery: manual }], regionSize: 64K }
  - { name: m3, primary: alpha:disk3, secondaries: [{ image: bravo:disk3, recovery: manual }], regionSize: 64K }
  - { name: m1, primary: alpha:disk1, secondaries: [bravo:disk1] }
  - { name: m2, primary: alpha:disk2, secondaries: [bravo:disk2] }
groups:
  - { name: g0, members: [m1, m2], mode: asynchronous, writelog: { capacity: 4M } }
monitor:
  resources:
    - { group: m0, interval: 2 }
    - { group: m3, interval: 2, autorecover: no }
    - { group: g0, interval: 2 }
`,
  );
  const up = sanbox(['up', labFile, '--detach', '--json'], 90_000);
  expect(up.code, up.err).toBe(0);
  expect(up.json.monitor.resources).toBe(3);
}, 120_000);

afterAll(async () => {
  sanbox(['down', 'mon', '--timeout', '20'], 30_000);
  await rm(tmp, { recursive: true, force: true });
});

describe('the pair resync monitor in a lab', () => {
  it('finds the lab\'s pairs connected: chkmon -show returns 0 (SHOW 0), status shows the monitor', async () => {
    for (const g of ['m0', 'm3', 'g0']) await until(() => show(g).code === 0, 60_000, `${g} connected`, 250);
    const r = show('m0');
    expect(r.json.resource).toMatchObject({ pair: 'connected', sourceState: 'PAIR', kind: 'mirror', instance: 'mon:alpha', autorecover: true });
    expect(show('g0').json.resource.kind).toBe('group');
    const st = sanbox(['status', '--lab', 'mon']);
    expect(st.out).toMatch(/monitor .*3 resources/);
  });

  it('a link cut suspends m0 (SHOW 1); after the restore the monitor resynchronizes it, m3 (autorecover off) stays suspended', async () => {
    const since = lastSeq();
    expect(sanbox(['link', 'cut', 'ab', '--lab', 'mon']).code).toBe(0);
    await hostWrite('disk0', 0x5a, '0', '256k');
    await hostWrite('disk3', 0x5a, '0', '256k');
    await until(() => show('m0').json?.resource?.pair === 'suspended', 20_000, 'm0 suspended', 250);
    const suspended = show('m0');
    expect(suspended.code).toBe(1);
    expect(suspended.json.resource.reason).toBe('fractured-link');
    // The link is still down: the monitor waits, it does not resynchronize.
    await new Promise((r) => setTimeout(r, 2500));
    expect(events(since).filter((e) => e.type === 'resource.resync-started')).toEqual([]);

    expect(sanbox(['link', 'restore', 'ab', '--lab', 'mon']).code).toBe(0);
    const wait = sanbox(['monitor', 'wait', 'mon', 'm0', '--for', 'connected', '--timeout', '30']);
    expect(wait.code, wait.out + wait.err).toBe(0);
    const back = show('m0');
    expect(back.code).toBe(0);
    expect(back.json.resource.lastAutoResync).not.toBeNull();
    const verify = sanbox(['mirror', 'verify', 'm0', '--lab', 'mon', '--json']);
    expect(verify.json?.[0]?.identical ?? verify.json?.identical, verify.out).toBe(true);

    await new Promise((r) => setTimeout(r, 4500)); // two of m3's intervals
    const m3 = show('m3');
    expect([m3.code, m3.json.resource.pair]).toEqual([1, 'suspended']);
    const evs = events(since).filter((e) => e.deviceGroup === 'm3');
    expect(evs.some((e) => e.type === 'resource.suspension-noted' && e.decision === 'autorecover-off')).toBe(true);
    expect(evs.some((e) => e.type === 'resource.resync-started')).toBe(false);
    // The operator's resync brings m3 back; the monitor sees it.
    expect(sanbox(['mirror', 'sync', 'm3', '--lab', 'mon']).code).toBe(0);
    await until(() => show('m3').code === 0, 30_000, 'm3 connected', 250);
  }, 120_000);

  it('an operator\'s fracture is left alone until resyncAdminFractures is on', async () => {
    const since = lastSeq();
    expect(sanbox(['mirror', 'fracture', 'm0', '--lab', 'mon']).code).toBe(0);
    await until(() => show('m0').json?.resource?.reason === 'fractured-admin', 10_000, 'admin fracture seen', 250);
    await new Promise((r) => setTimeout(r, 4500));
    expect(show('m0').code).toBe(1);
    expect(events(since).some((e) => e.type === 'resource.resync-started')).toBe(false);
    expect(events(since).some((e) => e.type === 'resource.suspension-noted' && e.decision === 'operator-suspension')).toBe(true);
    expect(sanbox(['monitor', 'set', 'mon', 'm0', '--admin-fractures', 'yes']).code).toBe(0);
    expect(sanbox(['monitor', 'wait', 'mon', 'm0', '--timeout', '30']).code).toBe(0);
    expect(events(since).some((e) => e.type === 'resource.resync-done' && e.deviceGroup === 'm0')).toBe(true);
    expect(sanbox(['monitor', 'set', 'mon', 'm0', '--admin-fractures', 'no']).code).toBe(0);
  }, 60_000);

  it('a paused group is the operator\'s: left alone; resumed by the operator it is connected again', async () => {
    const since = lastSeq();
    expect(sanbox(['group', 'pause', 'g0', '--lab', 'mon']).code).toBe(0);
    await until(() => show('g0').json?.resource?.reason === 'paused', 10_000, 'g0 paused', 250);
    await new Promise((r) => setTimeout(r, 4500));
    expect(show('g0').code).toBe(1);
    expect(events(since).some((e) => e.type === 'resource.resync-started')).toBe(false);
    expect(sanbox(['group', 'resume', 'g0', '--lab', 'mon']).code).toBe(0);
    await until(() => show('g0').code === 0, 30_000, 'g0 connected', 250);
  }, 60_000);

  it('split brain or a promote is never resynchronized automatically', async () => {
    const since = lastSeq();
    expect(sanbox(['link', 'cut', 'ab', '--lab', 'mon']).code).toBe(0);
    await hostWrite('disk0', 0x11, '0', '64k');
    const promote = sanbox(['mirror', 'promote', 'm0', '--array', 'bravo', '--lab', 'mon', '--force', '--json']);
    expect(promote.code, promote.err).toBe(0);
    expect(sanbox(['link', 'restore', 'ab', '--lab', 'mon']).code).toBe(0);
    await until(() => show('m0').json?.resource?.pair === 'error-suspended', 30_000, 'm0 error-suspended', 250);
    await new Promise((r) => setTimeout(r, 4500));
    const r = show('m0');
    expect([r.code, r.json.resource.pair, r.json.resource.sourceState]).toEqual([1, 'error-suspended', 'PSUE']);
    expect(events(since).filter((e) => e.deviceGroup === 'm0' && e.type === 'resource.resync-started')).toEqual([]);
  }, 90_000);
});
