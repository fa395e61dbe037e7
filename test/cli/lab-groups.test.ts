// `sanbox up`'s group step (setupLabGroups) against real ControlServers with recording fake
// drivers: create when absent (with the lab file's attributes), compare (warnings only) when
// present, an array without a mirror driver, a failed create, a primary on another host; the
// groups in the up summary.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageArray } from '../../src/array/index.js';
import { ControlServer } from '../../src/control/index.js';
import { parseLab, type LabState } from '../../src/cli/lab.js';
import { setupLabGroups } from '../../src/cli/lab-groups.js';
import { labSummary } from '../../src/cli/updown.js';
import { GroupError, withDefaults } from '../../src/replication/group/index.js';
import { FakeGroups, groupView } from '../support/fake-groups.js';

let tmp: string;
const arrays: StorageArray[] = [];
const servers: ControlServer[] = [];
const fakes: Record<string, FakeGroups> = {};
const urls: Record<string, string> = {};

const LAB = `
lab: up
arrays:
  - { name: alpha, remoteLink: { port: 10870 }, luns: [{ name: disk0, size: 1M }, { name: disk1, size: 1M }, { name: disk2, size: 1M }] }
  - { name: bravo, nbd: { port: 10819 }, api: { port: 8479 }, remoteLink: { port: 10880 }, luns: [{ name: disk0, size: 1M }, { name: disk1, size: 1M }, { name: disk2, size: 1M }] }
  - { name: far, host: 10.0.0.9, remoteLink: { port: 10890 }, secret: a-secret-for-far-site }
links:
  - { name: ab, between: [alpha, bravo], secret: a-secret-of-16-chars }
mirrors:
  - { name: m1, primary: alpha:disk1, secondaries: [bravo:disk1] }
  - { name: m2, primary: alpha:disk2, secondaries: [bravo:disk2] }
  - { name: m3, primary: far:disk0, secondaries: [bravo:disk0] }
groups:
  - name: g0
    members: [m1, m2]
    mode: asynchronous
    writelog: { capacity: 64M, extensions: 2, extensionSize: 32M }
    throttleEvery: 10s
    throttles: [{ measure: netkbps, op: gt, value: 200, actions: [{ do: sleep-incr, ms: 15 }] }]
    perf: { every: 5s }
  - { name: gfar, members: [m3] }
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
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-upg-'));
  for (const name of ['alpha', 'bravo', 'plain']) {
    const a = await StorageArray.open({ name, dir: join(tmp, name), noSync: true });
    arrays.push(a);
    fakes[name] = new FakeGroups();
    const srv = new ControlServer({ array: a, ...(name === 'plain' ? {} : { groups: fakes[name] }) });
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

describe('sanbox up: the lab file groups', () => {
  it('creates absent groups on the primary array with the lab attributes; skips one whose primary is on another host', async () => {
    const lab = parseLab(LAB, '/x/up.yaml');
    const logs: string[] = [];
    const st = state();
    const res = await setupLabGroups(lab, st, { log: (l) => logs.push(l) });
    expect(fakes.alpha!.calls).toEqual([
      { op: 'get', args: ['g0'] },
      {
        op: 'create',
        args: [
          {
            name: 'g0',
            members: ['m1', 'm2'],
            attributes: {
              mode: 'asynchronous',
              writelog: { capacity: 64 << 20, extensions: 2, extensionCapacity: 32 << 20 },
              throttleEveryMs: 10_000,
              throttles: [{ measure: 'netkbps', op: 'gt', value: 200, actions: [{ do: 'sleep-incr', ms: 15 }] }],
              perfEveryMs: 5000,
            },
          },
        ],
      },
    ]);
    expect(fakes.bravo!.calls).toEqual([]);
    expect(res).toEqual([
      { name: 'g0', primary: 'alpha', members: ['m1', 'm2'], secondaries: ['bravo'], mode: 'asynchronous', status: 'created', warnings: [] },
      { name: 'gfar', primary: 'far', members: ['m3'], secondaries: ['bravo'], mode: 'asynchronous', status: 'skipped', detail: 'its primary array far runs on 10.0.0.9: the lab there creates it', warnings: [] },
    ]);
    expect(logs).toEqual(['group g0 created on alpha (m1, m2; asynchronous)']);
    st.groups = res;
    const summary = labSummary(st, lab);
    expect(summary).toMatch(/ {2}group g0 {2}alpha: m1, m2 -> bravo {2}asynchronous {2}created\n/);
    expect(summary).toMatch(/ {2}group gfar {2}far: m3 -> bravo {2}asynchronous {2}not created here: its primary array far runs on 10.0.0.9/);
    expect(summary).toMatch(/sanbox group info g0 --lab up/);
  });

  it('a new group in bypass (secondaries still synchronizing) says so', async () => {
    const lab = parseLab(LAB, '/x/up.yaml');
    const create = fakes.alpha!.create.bind(fakes.alpha!);
    fakes.alpha!.create = async (p) => {
      const v = await create(p);
      v.record.bypass = { on: true, reason: 'overflow', since: '2026-01-01T00:00:00.000Z' };
      return v;
    };
    try {
      const logs: string[] = [];
      const [g0] = await setupLabGroups(lab, state(), { log: (l) => logs.push(l) });
      expect(g0).toMatchObject({ status: 'created', detail: "in bypass until the members' secondaries are in sync, then journaling" });
      expect(logs[0]).toBe('group g0 created on alpha (m1, m2; asynchronous): in bypass until the secondaries are in sync');
    } finally {
      delete (fakes.alpha as Partial<FakeGroups>).create;
    }
  });

  it('an existing group is compared, never changed: every difference is a warning', async () => {
    const lab = parseLab(LAB, '/x/up.yaml');
    // as the lab file says: no warnings
    const same = groupView('g0');
    Object.assign(same.record, withDefaults(lab.groups[0]!.attributes));
    fakes.alpha!.views.set('g0', same);
    const [ok] = await setupLabGroups(lab, state(), { log: () => undefined });
    expect(ok).toMatchObject({ status: 'exists', warnings: [] });
    expect(fakes.alpha!.calls.map((c) => c.op)).toEqual(['get']);

    const v = groupView('g0', { role: 'secondary' });
    Object.assign(v.record, withDefaults({ mode: 'near-synchronous', nearSync: { maxEntries: 0, maxBytes: 8 << 20, lowEntries: 0, lowBytes: 4 << 20 }, throttleEveryMs: 2000, perfEveryMs: 10_000, perfMaxBytes: 65536 }));
    v.members = [v.members[1]!, v.members[0]!];
    fakes.alpha!.views.set('g0', v);
    const logs: string[] = [];
    const [g0] = await setupLabGroups(lab, state(), { log: (l) => logs.push(l) });
    expect(g0!.status).toBe('exists');
    expect(g0!.mode).toBe('near-synchronous');
    expect(g0!.warnings).toEqual([
      'alpha holds it as a secondary now (promoted elsewhere since?); the lab file says its primary array is alpha',
      'its members are in another order (m2, m1; the lab file: m1, m2)',
      'its mode is near-synchronous, the lab file says asynchronous (sanbox group mode g0 asynchronous)',
      'its writelog is 256M, 0 extensions of 64M, extend at 90%; the lab file says 64M, 2 extensions of 32M, extend at 90% (fixed at create: delete and create the group to change it)',
      "its throttles differ from the lab file's (0 on the array, 1 in the file; sanbox group throttle g0 --file FILE)",
      'it evaluates throttles every 2s, the lab file says 10s',
      'it writes performance records every 10s, the lab file says 5s',
      'its performance file limit is 64K, the lab file says 1M',
    ]);
    expect(logs.every((l) => l.startsWith('warning: group g0: '))).toBe(true);
    v.members = [{ mirrorId: 'x', name: 'm9', lun: 9, secondaries: ['bravo'] }];
    const [g1] = await setupLabGroups(lab, state(), { log: () => undefined });
    expect(g1!.warnings).toContain('its members are m9, the lab file says m1, m2');
    expect(fakes.alpha!.calls.map((c) => c.op)).not.toContain('create');
  });

  it('near-synchronous bounds are compared when the lab file has them', async () => {
    const lab = parseLab(LAB.replace('mode: asynchronous', 'mode: near-synchronous\n    nearSync: { maxBytes: 16M }'), '/x/up.yaml');
    const v = groupView('g0');
    Object.assign(v.record, withDefaults({ ...lab.groups[0]!.attributes, nearSync: { maxEntries: 0, maxBytes: 32 << 20, lowEntries: 0, lowBytes: 16 << 20 } }));
    fakes.alpha!.views.set('g0', v);
    const [g0] = await setupLabGroups(lab, state(), { log: () => undefined });
    expect(g0!.warnings).toEqual(['its near-synchronous bounds are maxEntries 0, maxBytes 32M, lowEntries 0, lowBytes 16M; the lab file says maxEntries 0, maxBytes 16M, lowEntries 0, lowBytes 8M']);
  });

  it('no mirror driver, a failed create, an unreachable array: the group is not created, up goes on', async () => {
    const lab = parseLab(LAB, '/x/up.yaml');
    const st = state();
    st.arrays[0]!.api.url = urls.plain!;
    const logs: string[] = [];
    const [nd] = await setupLabGroups(lab, st, { log: (l) => logs.push(l) });
    expect(nd).toMatchObject({ status: 'failed', detail: 'array alpha runs no mirror driver (its remoteLink is not active), so the group was not created' });
    fakes.alpha!.fail = undefined;
    const create = fakes.alpha!.create.bind(fakes.alpha!);
    fakes.alpha!.create = async () => {
      throw new GroupError('invalid', 'the members have no secondary image yet');
    };
    try {
      const [f] = await setupLabGroups(lab, state(), { log: (l) => logs.push(l) });
      expect(f).toMatchObject({ status: 'failed', detail: 'create on alpha failed: the members have no secondary image yet' });
    } finally {
      fakes.alpha!.create = create;
    }
    const un = state();
    un.arrays[0]!.api.url = 'http://127.0.0.1:1';
    const [u] = await setupLabGroups(lab, un, { log: (l) => logs.push(l), timeoutMs: 2000 });
    expect(u!.status).toBe('failed');
    expect(u!.detail).toMatch(/^cannot look it up on alpha: cannot reach the sanbox API/);
    const s = state();
    s.groups = [u!];
    expect(labSummary(s, lab)).toMatch(/group g0 {2}alpha: m1, m2 -> bravo {2}asynchronous {2}NOT CREATED: cannot look it up/);
  });
});
