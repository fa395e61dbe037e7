// The consistency-group routes of the management API, with a real ControlServer and a recording
// fake GroupControl: request validation (nothing is called on a bad request), GroupError status
// codes, the no-mirror-driver 404, the groups of a mirror driver found through `mirrors.groups`,
// and the ApiClient methods.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageArray } from '../../src/array/index.js';
import { ControlServer, ApiClient, ClientError } from '../../src/control/index.js';
import { GroupError } from '../../src/replication/group/index.js';
import { FakeMirrors } from '../support/fake-mirrors.js';
import { FakeGroups } from '../support/fake-groups.js';

let dir: string;
let array: StorageArray;
let fake: FakeGroups;
const servers: ControlServer[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-gapi-'));
  array = await StorageArray.open({ name: 'alpha', dir, noSync: true });
  fake = new FakeGroups();
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await array.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(opts: { groups?: boolean; viaMirrors?: boolean } = { groups: true }): Promise<string> {
  const mirrors = opts.viaMirrors ? Object.assign(new FakeMirrors(), { groups: fake }) : undefined;
  const srv = new ControlServer({ array, ...(opts.groups ? { groups: fake } : {}), ...(mirrors ? { mirrors } : {}) });
  servers.push(srv);
  return (await srv.listen()).url;
}

async function call(url: string, method: string, path: string, body?: unknown, raw?: string) {
  const text = raw ?? (body === undefined ? undefined : JSON.stringify(body));
  const res = await fetch(url + path, { method, body: text, headers: text !== undefined || method !== 'GET' ? { 'Content-Type': 'application/json' } : {} });
  const t = await res.text();
  return { status: res.status, json: t ? JSON.parse(t) : undefined, headers: res.headers };
}

const THROTTLE = { measure: 'netkbps', op: 'gt', value: 200, actions: [{ do: 'sleep-incr', ms: 15 }] };

describe('group routes', () => {
  it('without a mirror driver every group route is 404 no-mirror-driver', async () => {
    const url = await start({});
    for (const [m, p] of [
      ['GET', '/v1/groups'],
      ['GET', '/v1/groups/g0'],
      ['GET', '/v1/groups/g0/info'],
      ['POST', '/v1/groups'],
      ['POST', '/v1/groups/g0/pause'],
      ['PATCH', '/v1/groups/g0'],
      ['DELETE', '/v1/groups/g0'],
    ] as const) {
      const r = await call(url, m, p, m === 'GET' || m === 'DELETE' ? undefined : {});
      expect(r.status, `${m} ${p}`).toBe(404);
      expect(r.json.error).toEqual({ code: 'no-mirror-driver', message: 'this array runs no mirror driver (no remoteLink configured)' });
    }
    const routes = (await call(url, 'GET', '/v1')).json.routes as string[];
    expect(routes.some((r) => r.includes('/v1/groups'))).toBe(true);
  });

  it("takes the groups of the mirror driver (MirrorNode.groups) when not given apart", async () => {
    const url = await start({ viaMirrors: true });
    const r = await call(url, 'GET', '/v1/groups');
    expect(r.status).toBe(200);
    expect(r.json.groups.map((g: any) => g.record.name)).toEqual(['g0']);
  });

  it('lists, gets, creates (201 + Location) with sizes as strings, validated throttles', async () => {
    const url = await start();
    expect((await call(url, 'GET', '/v1/groups')).json.groups).toHaveLength(1);
    expect((await call(url, 'GET', '/v1/groups/g0')).json.record.name).toBe('g0');
    const created = await call(url, 'POST', '/v1/groups', {
      name: 'g1',
      members: ['m3', 'm4'],
      attributes: {
        mode: 'near-synchronous',
        nearSync: { maxEntries: 1000, maxBytes: '64M', lowEntries: 500, lowBytes: '32M' },
        writelog: { capacity: '256M', extensions: 2, extensionCapacity: '64M', extendAtPercent: 80 },
        throttles: [{ from: '8:00:00', to: '18:00:00', ...THROTTLE }],
        throttleEveryMs: 10_000,
        perfEveryMs: 5000,
        perfMaxBytes: '1M',
      },
    });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    expect(created.headers.get('location')).toBe('/v1/groups/g1');
    expect(fake.calls.at(-1)).toEqual({
      op: 'create',
      args: [
        {
          name: 'g1',
          members: ['m3', 'm4'],
          attributes: {
            mode: 'near-synchronous',
            nearSync: { maxEntries: 1000, maxBytes: 64 << 20, lowEntries: 500, lowBytes: 32 << 20 },
            writelog: { capacity: 256 << 20, extensions: 2, extensionCapacity: 64 << 20, extendAtPercent: 80 },
            throttles: [{ from: '08:00:00', to: '18:00:00', ...THROTTLE }],
            throttleEveryMs: 10_000,
            perfEveryMs: 5000,
            perfMaxBytes: 1 << 20,
          },
        },
      ],
    });
    await call(url, 'POST', '/v1/groups', { name: 'g2', members: ['m5'] });
    expect(fake.calls.at(-1)).toEqual({ op: 'create', args: [{ name: 'g2', members: ['m5'] }] });
  });

  it('calls each operation with the validated arguments', async () => {
    const url = await start();
    const ok = async (method: string, path: string, body?: unknown) => {
      const r = await call(url, method, path, body);
      expect(r.status, `${method} ${path}: ${JSON.stringify(r.json)}`).toBe(200);
      return r.json;
    };
    await ok('POST', '/v1/groups/g0/mode', { mode: 'near-synchronous', nearSync: { maxBytes: '8M' } });
    expect(fake.calls.at(-1)).toEqual({ op: 'setMode', args: ['g0', 'near-synchronous', { maxBytes: 8 << 20 }] });
    await ok('POST', '/v1/groups/g0/mode', { mode: 'synchronous' });
    expect(fake.calls.at(-1)).toEqual({ op: 'setMode', args: ['g0', 'synchronous', undefined] });
    await ok('PATCH', '/v1/groups/g0', { throttles: [THROTTLE], throttleEveryMs: 2000, perfEveryMs: 1000, perfMaxBytes: '64K', nearSync: { maxEntries: 10, lowEntries: 2 } });
    expect(fake.calls.at(-1)).toEqual({
      op: 'setAttributes',
      args: ['g0', { throttles: [THROTTLE], throttleEveryMs: 2000, perfEveryMs: 1000, perfMaxBytes: 65536, nearSync: { maxEntries: 10, lowEntries: 2 } }],
    });
    await ok('PATCH', '/v1/groups/g0', { throttles: [] });
    expect(fake.calls.at(-1)).toEqual({ op: 'setAttributes', args: ['g0', { throttles: [] }] });
    await ok('PATCH', '/v1/groups/g0', { freeze: 'armed' });
    expect(fake.calls.at(-1)).toEqual({ op: 'setAttributes', args: ['g0', { freeze: 'armed' }] });
    await ok('POST', '/v1/groups/g0/pause');
    expect(fake.calls.at(-1)).toEqual({ op: 'pause', args: ['g0', true] });
    await ok('POST', '/v1/groups/g0/resume', {});
    expect(fake.calls.at(-1)).toEqual({ op: 'pause', args: ['g0', false] });
    await ok('POST', '/v1/groups/g0/bypass', { on: true });
    expect(fake.calls.at(-1)).toEqual({ op: 'bypass', args: ['g0', true] });
    await ok('POST', '/v1/groups/g0/bypass', { on: false });
    expect(fake.calls.at(-1)).toEqual({ op: 'bypass', args: ['g0', false] });
    const rf = await ok('POST', '/v1/groups/g0/refresh');
    expect(rf.record.refresh).toEqual({ running: true, bytesDone: 0, bytesTotal: 8 << 20 });
    expect(fake.calls.at(-1)).toEqual({ op: 'refresh', args: ['g0'] });
    await ok('POST', '/v1/groups/g0/backfresh', { from: 'bravo' });
    expect(fake.calls.at(-1)).toEqual({ op: 'backfresh', args: ['g0', { from: 'bravo' }] });
    await ok('POST', '/v1/groups/g0/backfresh');
    expect(fake.calls.at(-1)).toEqual({ op: 'backfresh', args: ['g0', undefined] });
    await ok('POST', '/v1/groups/g0/promote', { force: true });
    expect(fake.calls.at(-1)).toEqual({ op: 'promote', args: ['g0', { force: true }] });
    await ok('POST', '/v1/groups/g0/promote');
    expect(fake.calls.at(-1)).toEqual({ op: 'promote', args: ['g0', undefined] });
    const info = await ok('GET', '/v1/groups/g0/info');
    expect(info.text).toMatch(/^group g0 {2}\(synchronous\)/);
    expect(info.view.record.name).toBe('g0');
    const d = await ok('DELETE', '/v1/groups/g0');
    expect(d).toEqual({ deleted: { groupId: 'g0-0a1b2c3d', name: 'g0' } });
    expect(fake.calls.at(-1)).toEqual({ op: 'delete', args: ['g0'] });
  });

  it('refuses bad requests with 400 invalid-argument and calls nothing', async () => {
    const url = await start();
    const cases: [string, string, unknown, RegExp][] = [
      ['POST', '/v1/groups', {}, /missing field name/],
      ['POST', '/v1/groups', { name: 'g1' }, /missing field members/],
      ['POST', '/v1/groups', { name: 'g 1', members: ['m1'] }, /group name "g 1" is invalid/],
      ['POST', '/v1/groups', { name: '.', members: ['m1'] }, /group name "\." is invalid: .* \(not \. or \.\.\)/],
      ['POST', '/v1/groups', { name: '..', members: ['m1'] }, /group name "\.\." is invalid: .* \(not \. or \.\.\)/],
      ['POST', '/v1/groups', { name: 'g1', members: [] }, /members must be a non-empty list of mirror names/],
      ['POST', '/v1/groups', { name: 'g1', members: 'm1' }, /members must be a non-empty list/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1', 3] }, /members\[1\] must be a non-empty string/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1', 'm1'] }, /mirror "m1" is listed twice/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], bogus: 1 }, /unknown field bogus/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: [] }, /attributes must be a JSON object/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { mode: 'lazy' } }, /attributes.mode must be one of asynchronous, near-synchronous, synchronous/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { colour: 'red' } }, /unknown field colour in attributes/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { nearSync: { maxBytes: 'lots' } } }, /attributes.nearSync.maxBytes must be a byte count/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { nearSync: { maxEntries: -1 } } }, /attributes.nearSync.maxEntries must be an integer >= 0/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { nearSync: { max: 1 } } }, /unknown field max in attributes.nearSync/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { mode: 'near-synchronous', nearSync: { maxEntries: 0, maxBytes: 0 } } }, /near-synchronous needs a bound/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { nearSync: { maxBytes: '8M', lowBytes: '8M' } } }, /lowBytes must be below maxBytes/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { writelog: { capacity: '4K' } } }, /attributes.writelog.capacity must be a byte count.*at least 65536/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { writelog: { capacity: 65541 } } }, /multiple of 8/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { writelog: { extensions: 129 } } }, /writelog.extensions must be an integer from 0 to 128/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { writelog: { extendAtPercent: 0 } } }, /extendAtPercent must be an integer from 1 to 100/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { writelog: { size: '1G' } } }, /unknown field size in attributes.writelog/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { throttles: {} } }, /attributes.throttles must be a list of throttles/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { throttles: [{ measure: 'iops', op: 'gt', value: 1, actions: [{ do: 'log', message: 'x' }] }] } }, /attributes.throttles\[0\].measure must be one of netkbps, pctcpu, pctwl/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { throttleEveryMs: 50 } }, /throttleEveryMs must be an integer >= 100/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { perfEveryMs: '10s' } }, /perfEveryMs must be an integer >= 100/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { perfMaxBytes: 100 } }, /perfMaxBytes must be a byte count.*at least 4096/],
      ['POST', '/v1/groups', [1], /request body must be a JSON object/],
      ['POST', '/v1/groups/g0/mode', {}, /missing field mode/],
      ['POST', '/v1/groups/g0/mode', { mode: 'fast' }, /mode must be one of/],
      ['POST', '/v1/groups/g0/mode', { mode: 'asynchronous', writelog: {} }, /unknown field writelog/],
      ['POST', '/v1/groups/g0/mode', { mode: 'near-synchronous', nearSync: { lowBytes: 'x' } }, /nearSync.lowBytes must be a byte count/],
      ['PATCH', '/v1/groups/g0', {}, /nothing to change/],
      ['PATCH', '/v1/groups/g0', { mode: 'synchronous' }, /unknown field mode/],
      ['PATCH', '/v1/groups/g0', { writelog: { capacity: '1G' } }, /unknown field writelog/],
      ['PATCH', '/v1/groups/g0', { throttles: [{ measure: 'netkbps', op: 'gt', value: 1, actions: [] }] }, /throttles\[0\].actions must be a list of 1 to 16 actions/],
      ['PATCH', '/v1/groups/g0', { throttles: [{ from: '08:00:00', measure: 'netkbps', op: 'gt', value: 1, actions: [{ do: 'sleep-set', ms: 1 }] }] }, /give both from and to/],
      ['PATCH', '/v1/groups/g0', { perfEveryMs: 1.5 }, /perfEveryMs must be an integer/],
      ['PATCH', '/v1/groups/g0', { freeze: 'on' }, /freeze must be one of/],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'], attributes: { freeze: true } }, /attributes.freeze must be one of/],
      ['POST', '/v1/groups/g0/pause', { now: true }, /unknown field now; expected none/],
      ['POST', '/v1/groups/g0/resume', { x: 1 }, /unknown field x/],
      ['POST', '/v1/groups/g0/bypass', {}, /missing field on/],
      ['POST', '/v1/groups/g0/bypass', { on: 'yes' }, /on must be true or false/],
      ['POST', '/v1/groups/g0/refresh', { force: true }, /unknown field force/],
      ['POST', '/v1/groups/g0/backfresh', { from: 'bra vo' }, /array name "bra vo" is invalid/],
      ['POST', '/v1/groups/g0/backfresh', { from: '..' }, /array name "\.\." is invalid/],
      ['POST', '/v1/groups/g0/promote', { force: 1 }, /force must be true or false/],
      ['GET', '/v1/groups?all=1', undefined, /unknown query parameter all/],
      ['GET', '/v1/groups/g0/info?text=1', undefined, /unknown query parameter text/],
      ['DELETE', '/v1/groups/g0?force=1', undefined, /unknown query parameter force/],
    ];
    for (const [method, path, body, msg] of cases) {
      const r = await call(url, method, path, body);
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.json)}`).toBe(400);
      expect(r.json.error.code).toBe('invalid-argument');
      expect(r.json.error.message).toMatch(msg);
    }
    expect(fake.calls).toEqual([]);
    const badJson = await call(url, 'POST', '/v1/groups', undefined, '{"name": ');
    expect([badJson.status, badJson.json.error.code]).toEqual([400, 'invalid-json']);
    const wrongType = await fetch(url + '/v1/groups/g0/pause', { method: 'POST', body: 'x=1', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(wrongType.status).toBe(415);
    const method = await call(url, 'PUT', '/v1/groups/g0', {});
    expect([method.status, method.json.error.code]).toEqual([405, 'method-not-allowed']);
    expect(fake.calls).toEqual([]);
  });

  it('GroupError codes become their HTTP status; other errors 500', async () => {
    const url = await start();
    const cases: [GroupError, number][] = [
      [new GroupError('not-found', 'no group x'), 404],
      [new GroupError('invalid', 'bad'), 400],
      [new GroupError('unreachable', 'bravo unreachable'), 503],
      [new GroupError('state', 'a refresh of group g0 is running'), 409],
      [new GroupError('exists', 'mirror m1 is already in group g9'), 409],
      [new GroupError('not-primary', 'refresh goes to the primary array of group g0'), 409],
    ];
    for (const [err, status] of cases) {
      fake.fail = err;
      const r = await call(url, 'POST', '/v1/groups/g0/refresh', {});
      expect(r.status).toBe(status);
      expect(r.json.error).toEqual({ code: err.code, message: err.message });
    }
    const missing = await call(url, 'GET', '/v1/groups/nope');
    expect([missing.status, missing.json.error.code]).toEqual([404, 'not-found']);
    fake.fail = new Error('boom');
    const r = await call(url, 'GET', '/v1/groups');
    expect([r.status, r.json.error.code, r.json.error.message]).toEqual([500, 'internal', 'boom']);
  });

  it('ApiClient methods reach the right routes', async () => {
    const url = await start();
    const c = new ApiClient({ url });
    expect((await c.listGroups()).groups).toHaveLength(1);
    expect((await c.getGroup('g0')).record.name).toBe('g0');
    await c.createGroup({ name: 'g1', members: ['m3'], attributes: { writelog: { capacity: '64M' }, perfMaxBytes: '64K' } });
    expect(fake.calls.at(-1)!.args[0]).toEqual({ name: 'g1', members: ['m3'], attributes: { writelog: { capacity: 64 << 20 }, perfMaxBytes: 65536 } });
    await c.setGroupMode('g1', 'near-synchronous', { maxEntries: 100 });
    expect(fake.calls.at(-1)).toEqual({ op: 'setMode', args: ['g1', 'near-synchronous', { maxEntries: 100 }] });
    await c.setGroupAttributes('g1', { perfEveryMs: 500 });
    await c.pauseGroup('g1');
    await c.resumeGroup('g1');
    await c.bypassGroup('g1', true);
    await c.refreshGroup('g1');
    await c.backfreshGroup('g1', { from: 'bravo' });
    await c.promoteGroup('g1', { force: true });
    expect((await c.groupInfo('g1')).text).toMatch(/^group g1/);
    expect((await c.deleteGroup('g1')).deleted.name).toBe('g1');
    expect(fake.calls.map((x) => x.op)).toEqual(['list', 'get', 'create', 'setMode', 'setAttributes', 'pause', 'pause', 'bypass', 'refresh', 'backfresh', 'promote', 'info', 'get', 'delete']);
    const e = await c.getGroup('g1').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ClientError);
    expect([(e as ClientError).code, (e as ClientError).status]).toEqual(['not-found', 404]);
    // backfresh goes through node:http (long timeout): errors as with fetch
    const b = await new ApiClient({ url: 'http://127.0.0.1:1' }).backfreshGroup('g0').catch((x: unknown) => x);
    expect((b as ClientError).code).toBe('unreachable');
  });
});
