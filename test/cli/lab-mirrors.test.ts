// `sanbox up`'s mirror step (setupLabMirrors) against real ControlServers with recording fake
// drivers: create + add secondaries when absent, compare (warnings only) when present, an array
// without a mirror driver, a secondary that cannot be added.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageArray } from '../../src/array/index.js';
import { ControlServer } from '../../src/control/index.js';
import { parseLab, type LabState } from '../../src/cli/lab.js';
import { setupLabMirrors } from '../../src/cli/lab-mirrors.js';
import { labSummary } from '../../src/cli/updown.js';
import { MirrorError } from '../../src/replication/mirror/types.js';
import { FakeMirrors, view } from '../support/fake-mirrors.js';

let tmp: string;
const arrays: StorageArray[] = [];
const servers: ControlServer[] = [];
const fakes: Record<string, FakeMirrors> = {};
const urls: Record<string, string> = {};

const LAB = `
lab: up
arrays:
  - { name: alpha, remoteLink: { port: 10870 }, luns: [{ name: disk0, size: 1M }, { name: disk1, size: 1M }] }
  - { name: bravo, nbd: { port: 10819 }, api: { port: 8479 }, remoteLink: { port: 10880 }, luns: [{ name: disk0, size: 1M }, { name: disk1, size: 1M }, { name: disk2, size: 1M }] }
  - { name: far, host: 10.0.0.9, remoteLink: { port: 10890 }, secret: a-secret-for-far-site }
links:
  - { name: ab, between: [alpha, bravo], secret: a-secret-of-16-chars }
mirrors:
  - { name: m0, primary: alpha:disk0, secondaries: [bravo:disk0], regionSize: 128K, syncRate: 32M, activation: manual }
  - { name: m1, primary: alpha:disk1, secondaries: [{ image: bravo:disk1, synchronized: true, recovery: manual, syncRate: 8M }] }
  - { name: m2, primary: far:disk0, secondaries: [bravo:disk2] }
`;

function state(): LabState {
  return {
    lab: 'up',
    file: '/x/up.yaml',
    supervisorPid: process.pid,
    startedAt: '',
    state: 'starting',
    arrays: ['alpha', 'bravo'].map((name) => ({ name, pid: process.pid, dir: '', nbd: { host: '127.0.0.1', port: 1 }, api: { url: urls[name]! } })),
  };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-upm-'));
  for (const name of ['alpha', 'bravo']) {
    const a = await StorageArray.open({ name, dir: join(tmp, name), noSync: true });
    arrays.push(a);
    await a.createLun({ name: 'disk0', size: 1 << 20 });
    await a.createLun({ name: 'disk1', size: 1 << 20 });
    fakes[name] = new FakeMirrors();
    const srv = new ControlServer({ array: a, mirrors: fakes[name] });
    servers.push(srv);
    urls[name] = (await srv.listen()).url;
  }
});
afterAll(async () => {
  for (const s of servers) await s.close();
  for (const a of arrays) await a.close();
  await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  for (const f of Object.values(fakes)) {
    f.calls = [];
    f.views.clear();
  }
});

describe('sanbox up: the lab file mirrors', () => {
  it('creates absent mirrors with their secondaries; skips one whose primary is on another host', async () => {
    const lab = parseLab(LAB, '/x/up.yaml');
    const logs: string[] = [];
    const st = state();
    const res = await setupLabMirrors(lab, st, { log: (l) => logs.push(l), progressMs: 0 });
    expect(fakes.alpha!.calls.filter((c) => c.op !== 'get')).toEqual([
      { op: 'create', args: [{ lun: 'disk0', name: 'm0', regionSize: 131072, attributes: { writePolicy: 'synchronous', syncRate: 32 << 20, activationPolicy: 'manual' } }] },
      { op: 'addSecondary', args: ['m0', { array: 'bravo', lun: 'disk0' }] },
      { op: 'create', args: [{ lun: 'disk1', name: 'm1', attributes: { writePolicy: 'synchronous' } }] },
      { op: 'addSecondary', args: ['m1', { array: 'bravo', lun: 'disk1', synchronized: true, recoveryPolicy: 'manual', syncRate: 8 << 20 }] },
    ]);
    expect(fakes.bravo!.calls).toEqual([]);
    expect(res.map((m) => [m.name, m.status])).toEqual([
      ['m0', 'created'],
      ['m1', 'created'],
      ['m2', 'skipped'],
    ]);
    expect(res[0]!.progress).toEqual(['bravo:disk0 SYNCHRONIZING 12.5 MiB of 64 MiB, 30 MiB/s, ETA 2 s (partial: fracture log)']);
    expect(res[2]!.detail).toMatch(/its primary array far runs on 10\.0\.0\.9/);
    expect(logs).toContain('mirror m0 created on alpha:disk0');
    st.mirrors = res;
    const text = labSummary({ ...st, state: 'running' }, lab);
    expect(text).toMatch(/ {2}mirror m0 {2}alpha:disk0 -> bravo:disk0 {2}created\n {4}bravo:disk0 SYNCHRONIZING/);
    expect(text).toMatch(/mirror m2 {2}far:disk0 -> bravo:disk2 {2}not created here: /);
    expect(text).toMatch(/sanbox mirror status --watch --lab up/);
  });

  it('an existing mirror is compared, never changed; differences are warnings', async () => {
    const lab = parseLab(LAB, '/x/up.yaml');
    // m0 exists as in the file (alpha:0 -> bravo:0); m1 exists on the wrong LUNs with an extra image.
    fakes.alpha!.views.set('m0', view('m0'));
    const m1 = view('m1');
    m1.record.images.push({ ...m1.record.images[1]!, imageId: 'charlie:0', array: 'charlie' });
    fakes.alpha!.views.set('m1', m1);
    const logs: string[] = [];
    const res = await setupLabMirrors(lab, state(), { log: (l) => logs.push(l), progressMs: 0 });
    expect(fakes.alpha!.calls.map((c) => c.op)).toEqual(['get', 'get']);
    expect(res[0]).toMatchObject({ name: 'm0', status: 'exists', warnings: [] });
    expect(res[1]!.status).toBe('exists');
    expect(res[1]!.warnings).toEqual([
      'its primary image is alpha:disk0 (LUN 0), the lab file says alpha:disk1',
      'its image on bravo is LUN 0, the lab file says bravo:disk1 (LUN 1)',
      'image charlie:0 (secondary) is not in the lab file',
    ]);
    expect(logs.filter((l) => l.startsWith('warning:'))).toHaveLength(3);
  });

  it('a promoted mirror and a missing secondary are reported', async () => {
    const lab = parseLab(LAB, '/x/up.yaml');
    fakes.alpha!.views.set('m0', view('m0', { local: { imageId: 'alpha:0', role: 'secondary', lun: 0, lunName: 'disk0' } }));
    const m1 = view('m1');
    m1.record.images.splice(1, 1);
    m1.local.lun = 1;
    m1.local.lunName = 'disk1';
    fakes.alpha!.views.set('m1', m1);
    const res = await setupLabMirrors(lab, state(), { log: () => undefined, progressMs: 0 });
    expect(res[0]!.warnings[0]).toMatch(/alpha holds a secondary image of it now/);
    expect(res[1]!.warnings).toEqual(['secondary bravo:disk1 of the lab file is not in the mirror (add it: sanbox mirror add-secondary m1 --to bravo:disk1)']);
  });

  it('a secondary that cannot be added is a warning with the command to retry; a create that fails is reported', async () => {
    const lab = parseLab(LAB, '/x/up.yaml');
    const f = fakes.alpha!;
    const orig = f.addSecondary.bind(f);
    f.addSecondary = async (ref, p) => {
      if (ref === 'm0') throw new MirrorError('unreachable', 'array bravo cannot be reached');
      return orig(ref, p);
    };
    const origCreate = f.create.bind(f);
    f.create = async (p) => {
      if (p.name === 'm1') throw new MirrorError('invalid', 'LUN disk1 is busy');
      return origCreate(p);
    };
    try {
      const res = await setupLabMirrors(lab, state(), { log: () => undefined, progressMs: 0 });
      expect(res[0]!.status).toBe('created');
      expect(res[0]!.warnings).toEqual(['secondary bravo:disk0 could not be added: array bravo cannot be reached (retry: sanbox mirror add-secondary m0 --to bravo:disk0 --lab up)']);
      expect(res[1]).toMatchObject({ status: 'failed', detail: 'create on alpha failed: LUN disk1 is busy' });
    } finally {
      f.addSecondary = orig;
      f.create = origCreate;
    }
  });

  it('an array without a mirror driver: not created, said why', async () => {
    const a = await StorageArray.open({ name: 'nodrv', dir: join(tmp, 'nodrv'), noSync: true });
    arrays.push(a);
    const srv = new ControlServer({ array: a });
    servers.push(srv);
    const url = (await srv.listen()).url;
    const lab = parseLab(LAB, '/x/up.yaml');
    const st = state();
    st.arrays[0]!.api.url = url;
    const res = await setupLabMirrors(lab, st, { log: () => undefined, progressMs: 0 });
    expect(res[0]).toMatchObject({ status: 'failed', detail: 'array alpha runs no mirror driver (its remoteLink is not active), so the mirror was not created' });
    expect(labSummary({ ...st, mirrors: res }, lab)).toMatch(/mirror m0 {2}alpha:disk0 -> bravo:disk0 {2}NOT CREATED: array alpha runs no mirror driver/);
  });
});
