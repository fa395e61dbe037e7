// Site automation as processes (issue 14, seed 001): `sanbox up --detach` starts two arrays at two
// sites, a synchronous mirror and one controller per site; a resource group of the mirror and a
// host resource (a background process that first writes to its LUN through qemu-io, so it can only
// start where the mirror is primary). The tests bring it online, refuse what must be refused
// without changing anything, move it, lose a site (automatic recovery, join cleanup, failback),
// and kill a controller in the middle of an operation (it resumes from its step log).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labCli } from '../../support/lab-cli.js';
import { freePort } from '../../support/net.js';
import { BIN } from '../../support/paths.js';

const SECRET = 'automation-test-secret-0123456789';
const qemu = spawnSync('qemu-io', ['--version']).status === 0;

const labYaml = (p: number[]) => `
lab: autotest
sites:
  - { name: east, arrays: [alpha] }
  - { name: west, arrays: [bravo] }
arrays:
  - { name: alpha, nbd: { port: ${p[0]} }, api: { port: ${p[1]} }, remoteLink: { port: ${p[2]} }, luns: [{ name: disk0, size: 8M }] }
  - { name: bravo, nbd: { port: ${p[3]} }, api: { port: ${p[4]} }, remoteLink: { port: ${p[5]} }, luns: [{ name: disk0, size: 8M }] }
links:
  - { name: ab, between: [alpha, bravo], secret: automation-test-link-secret }
mirrors:
  - { name: m0, primary: alpha:disk0, secondaries: [bravo:disk0], writePolicy: synchronous, syncRate: 256M }
dashboard: off
automation:
  secret: ${SECRET}
  declareLostAfter: 2s
  controllers:
    - { site: east }
    - { site: west }
  resourceGroups:
    - name: rg0
      volumeSets: [m0]
      failover: automatic
      failback: automatic
      resources:
        - name: app
          # writable here, or the start fails; then a process that runs until stopped
          start: 'qemu-io -f raw -c "write -P 0x5a 0 64k" "$SANBOX_URI_M0" >/dev/null && sleep 1 && (sleep 600 & echo $! > pid; wait) >/dev/null 2>&1 &'
          stop: 'kill "$(cat pid)"'
          monitor: 'kill -0 "$(cat pid 2>/dev/null)" 2>/dev/null && ! grep -q "^[0-9]* (.*) Z" "/proc/$(cat pid)/stat"'
`;

let dir = '';
const sanbox = labCli(() => dir);
let resumed: ChildProcess | undefined;

async function until<T>(what: string, fn: () => T | undefined | false, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const state = () => JSON.parse(readFileSync(join(dir, '.labs', 'autotest.json'), 'utf8'));
const controller = (site: string) => state().automation.controllers.find((c: { site: string }) => c.site === site);

function holder(): { holder: string | null; epoch: number; forced: boolean } {
  const r = sanbox(['rg', 'status', 'rg0', '--json']);
  expect(r.code, r.err).toBe(0);
  const leases = r.json.controllers.flatMap((c: { groups: { lease: { holder: string | null; epoch: number; forced: boolean } }[] }) => c.groups.map((g) => g.lease));
  return leases.sort((a: { epoch: number }, b: { epoch: number }) => b.epoch - a.epoch)[0];
}

const appRunning = (site: string) => {
  const pidFile = join(dir, '.labs', 'autotest.automation', site, 'resources', 'rg0', 'app', 'pid');
  if (!existsSync(pidFile)) return false;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

async function events(site: string): Promise<{ type: string; [k: string]: unknown }[]> {
  const r = await fetch(`${controller(site).url}/v1/events`, { headers: { Accept: 'application/json', authorization: `Bearer ${SECRET}` } });
  return ((await r.json()) as { events: { type: string }[] }).events;
}

describe.skipIf(!qemu)('site automation in a lab', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sanbox-auto-'));
    const ports = new Set<number>();
    while (ports.size < 6) ports.add(await freePort());
    await writeFile(join(dir, 'lab.yaml'), labYaml([...ports]));
    const r = sanbox(['up', join(dir, 'lab.yaml'), '--detach'], 120_000);
    expect(r.code, r.out + r.err).toBe(0);
    await until('m0 in sync', () => sanbox(['vs', 'state', 'm0', '--json']).json?.sets[0].state === 'InSync');
  }, 150_000);

  afterAll(async () => {
    resumed?.kill('SIGKILL');
    if (dir) sanbox(['down', 'autotest'], 60_000);
    if (dir && !process.env.SANBOX_KEEP) await rm(dir, { recursive: true, force: true });
  }, 90_000);

  it('--plan shows the steps and what storage would do, and changes nothing', () => {
    const r = sanbox(['rg', 'online', 'rg0', '--plan', '--json']);
    expect(r.code, r.err).toBe(0);
    expect(r.json.plan.steps.map((s: { kind: string }) => s.kind)).toEqual(['lease', 'storage', 'start']);
    expect(r.json.plan.storage[0]).toMatchObject({ set: 'm0', action: 'ready', state: 'InSync' });
    expect(holder()).toMatchObject({ holder: null, epoch: 0 });
  });

  it('online: the lease, the storage, then the host resource at the preferred site', () => {
    const r = sanbox(['rg', 'online', 'rg0', '--json'], 60_000);
    expect(r.code, r.err).toBe(0);
    expect(r.json.operations[0]).toMatchObject({ kind: 'online', site: 'east', status: 'succeeded' });
    expect(holder()).toMatchObject({ holder: 'east', epoch: 1 });
    expect(appRunning('east')).toBe(true);
  });

  it('refuses, changing nothing: online where production is not, unknown names, bad requests, no token', async () => {
    const wrong = sanbox(['rg', 'online', 'rg0', '--site', 'west']);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/production-elsewhere|production is at site east/);
    expect(holder()).toMatchObject({ holder: 'east', epoch: 1 });
    expect(appRunning('east')).toBe(true);
    expect(sanbox(['rg', 'online', 'nope']).code).toBe(1);
    expect(sanbox(['rg', 'move', 'rg0', '--to', 'mars']).code).toBe(1);
    expect(sanbox(['rg', 'online', 'bad name!']).code).toBe(2);
    expect(sanbox(['rg', 'offline', 'rg0', '--timeout', 'x']).code).toBe(2);
    const url = controller('east').url;
    expect((await fetch(`${url}/v1/status`)).status).toBe(401);
    expect((await fetch(`${url}/v1/status`, { headers: { authorization: 'Bearer wrong-secret-wrong-secret' } })).status).toBe(401);
    const post = (body: string) => fetch(`${url}/v1/rg/online`, { method: 'POST', headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' }, body });
    expect((await post('{not json')).status).toBe(400);
    expect((await post('{"rg":"rg0","plan":"yes"}')).status).toBe(400);
    const lease = await fetch(`${url}/v1/peer/lease`, { method: 'POST', headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' }, body: JSON.stringify({ rg: 'rg0', to: 'west', epoch: 1 }) });
    expect(lease.status).toBe(409); // a stale epoch: the lease stays
    expect(holder()).toMatchObject({ holder: 'east', epoch: 1 });
    expect(appRunning('east')).toBe(true);
  });

  it('planned move: stopped at east, promoted without a copy, started at west', () => {
    const r = sanbox(['rg', 'move', 'rg0', '--to', 'west', '--json'], 60_000);
    expect(r.code, r.err).toBe(0);
    expect(r.json.operations[0]).toMatchObject({ kind: 'move', status: 'succeeded' });
    expect(holder()).toMatchObject({ holder: 'west', epoch: 2, forced: false });
    expect(appRunning('west')).toBe(true);
    expect(appRunning('east')).toBe(false);
    expect(sanbox(['vs', 'state', 'm0', '--json']).json.sets[0]).toMatchObject({ state: 'RecoverySite', productionSite: 'west' });
    // an operator's move is not a failback case: it stays at west
  });

  it('offline and online again at west', () => {
    expect(sanbox(['rg', 'offline', 'rg0'], 60_000).code).toBe(0);
    expect(appRunning('west')).toBe(false);
    expect(sanbox(['rg', 'online', 'rg0', '--site', 'west'], 60_000).code).toBe(0);
    expect(appRunning('west')).toBe(true);
  });

  it('a host resource that stops by itself is seen by the monitor (automation.resource-failed), not restarted', async () => {
    const pid = Number(readFileSync(join(dir, '.labs', 'autotest.automation', 'west', 'resources', 'rg0', 'app', 'pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    const end = Date.now() + 15_000;
    let seen: { type: string; [k: string]: unknown } | undefined;
    while (!seen && Date.now() < end) {
      seen = (await events('west')).find((e) => e.type === 'automation.resource-failed' && e.resource === 'app');
      if (!seen) await new Promise((r) => setTimeout(r, 300));
    }
    expect(seen).toMatchObject({ rg: 'rg0', site: 'west' });
    expect(sanbox(['rg', 'status', 'rg0']).out).toMatch(/app DOWN/);
    expect(appRunning('west')).toBe(false);
  }, 30_000);

  it('site loss: the surviving site declares it lost and recovers by policy; on return, join cleanup and failback', async () => {
    expect(sanbox(['rg', 'move', 'rg0', '--to', 'east'], 60_000).code).toBe(0);
    await until('in sync at east', () => sanbox(['vs', 'state', 'm0', '--json']).json?.sets[0].state === 'InSync');
    const t0 = Date.now();
    expect(sanbox(['fault', 'site-fail', 'east']).code).toBe(0);
    expect(appRunning('east')).toBe(false); // the site's hosts die with it
    const recovered = await until('rg0 recovered at west', () => holder().holder === 'west' && appRunning('west'));
    expect(recovered).toBe(true);
    const rtoMs = Date.now() - t0;
    expect(holder()).toMatchObject({ holder: 'west', forced: true });
    const west = await events('west');
    expect(west.some((e) => e.type === 'automation.site-declared-lost')).toBe(true);
    expect(west.find((e) => e.type === 'automation.operation-succeeded' && e.kind === 'recover')).toBeDefined();
    expect(rtoMs).toBeGreaterThan(2000); // never before declareLostAfter
    expect(sanbox(['fault', 'site-restore', 'east'], 60_000).code).toBe(0);
    await until('failback to east', () => holder().holder === 'east' && appRunning('east') && !appRunning('west'), 60_000);
    const east = await events('east');
    expect(east.some((e) => e.type === 'automation.join-cleanup')).toBe(true);
    expect((await events('west')).some((e) => e.type === 'automation.failback-requested')).toBe(true);
    await until('in sync again', () => sanbox(['vs', 'state', 'm0', '--json']).json?.sets[0].state === 'InSync');
  }, 120_000);

  it('a controller killed in the middle of an operation resumes it from its step log', async () => {
    const started = sanbox(['rg', 'move', 'rg0', '--to', 'west', '--no-wait', '--json'], 30_000);
    expect(started.code, started.err).toBe(0);
    const id = started.json.operations[0].id as string;
    // the app's start takes a second: kill the west controller while it runs
    await until('the start step', () => {
      const ops = JSON.parse(readFileSync(join(dir, '.labs', 'autotest.automation', 'west', 'controller.json'), 'utf8')).operations;
      return ops.find((o: { id: string; steps: { kind: string; status: string }[] }) => o.id === id)?.steps.some((s: { kind: string; status: string }) => s.kind === 'start' && s.status === 'running');
    });
    process.kill(controller('west').pid, 'SIGKILL');
    resumed = spawn(process.execPath, [BIN, 'automation', 'serve', '--config', controller('west').config], { stdio: 'ignore', env: { ...process.env, SANBOX_IMAGES: dir } });
    await until('the operation succeeded after the restart', () => {
      const ops = JSON.parse(readFileSync(join(dir, '.labs', 'autotest.automation', 'west', 'controller.json'), 'utf8')).operations;
      return ops.find((o: { id: string; status: string }) => o.id === id)?.status === 'succeeded';
    });
    const ev = await events('west');
    expect(ev.find((e) => e.type === 'automation.controller-started')?.resumed).toEqual([id]);
    expect(ev.some((e) => e.type === 'automation.step-resumed' && e.stepKind === 'start')).toBe(true);
    expect(holder()).toMatchObject({ holder: 'west' });
    expect(appRunning('west')).toBe(true);
  }, 60_000);
});
