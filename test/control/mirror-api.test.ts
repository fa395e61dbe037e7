// The mirror routes of the management API, with a real ControlServer and a recording fake driver:
// request validation (nothing is called on a bad request), MirrorError status codes, the
// no-mirror-driver 404, and the ApiClient methods.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageArray } from '../../src/array/index.js';
import { ControlServer, ApiClient, ClientError } from '../../src/control/index.js';
import { MirrorError } from '../../src/replication/mirror/types.js';
import { FakeMirrors } from '../support/fake-mirrors.js';

let dir: string;
let array: StorageArray;
let fake: FakeMirrors;
const servers: ControlServer[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-mapi-'));
  array = await StorageArray.open({ name: 'alpha', dir, noSync: true });
  fake = new FakeMirrors();
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await array.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(withMirrors = true): Promise<string> {
  const srv = new ControlServer({ array, ...(withMirrors ? { mirrors: fake } : {}) });
  servers.push(srv);
  return (await srv.listen()).url;
}

async function call(url: string, method: string, path: string, body?: unknown, raw?: string) {
  const text = raw ?? (body === undefined ? undefined : JSON.stringify(body));
  const res = await fetch(url + path, { method, body: text, headers: text !== undefined || method !== 'GET' ? { 'Content-Type': 'application/json' } : {} });
  const t = await res.text();
  return { status: res.status, json: t ? JSON.parse(t) : undefined, headers: res.headers };
}

describe('mirror routes', () => {
  it('without a mirror driver every mirror route is 404 no-mirror-driver', async () => {
    const url = await start(false);
    for (const [m, p] of [
      ['GET', '/v1/mirrors'],
      ['GET', '/v1/mirrors/m0'],
      ['POST', '/v1/mirrors'],
      ['POST', '/v1/mirrors/m0/promote'],
      ['DELETE', '/v1/mirrors/m0'],
      ['PATCH', '/v1/mirrors/m0'],
    ] as const) {
      const r = await call(url, m, p, m === 'GET' || m === 'DELETE' ? undefined : {});
      expect(r.status, `${m} ${p}`).toBe(404);
      expect(r.json.error).toEqual({ code: 'no-mirror-driver', message: 'this array runs no mirror driver (no remoteLink configured)' });
    }
    const routes = (await call(url, 'GET', '/v1')).json.routes as string[];
    expect(routes.some((r) => r.includes('/v1/mirrors'))).toBe(true);
  });

  it('lists, gets, creates (201 + Location) with sizes as strings', async () => {
    const url = await start();
    const list = await call(url, 'GET', '/v1/mirrors');
    expect(list.status).toBe(200);
    expect(list.json.mirrors.map((m: any) => m.record.name)).toEqual(['m0']);
    expect((await call(url, 'GET', '/v1/mirrors/m0')).json.record.name).toBe('m0');
    const created = await call(url, 'POST', '/v1/mirrors', {
      lun: 'disk1',
      name: 'm1',
      regionSize: '128K',
      attributes: { syncRate: '32M/s', activationPolicy: 'manual', minImagesRequired: 2, maxMissingImages: -1, allowSecondaryReads: true, syncPriority: 'high' },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('/v1/mirrors/m1');
    expect(fake.calls.at(-1)).toEqual({
      op: 'create',
      args: [
        {
          lun: 'disk1',
          name: 'm1',
          regionSize: 131072,
          attributes: { syncRate: 32 << 20, activationPolicy: 'manual', minImagesRequired: 2, maxMissingImages: -1, allowSecondaryReads: true, syncPriority: 'high' },
        },
      ],
    });
    await call(url, 'POST', '/v1/mirrors', { lun: 3 });
    expect(fake.calls.at(-1)).toEqual({ op: 'create', args: [{ lun: 3 }] });
  });

  it('calls each operation with the validated arguments', async () => {
    const url = await start();
    const ok = async (method: string, path: string, body?: unknown) => {
      const r = await call(url, method, path, body);
      expect(r.status, `${method} ${path}: ${JSON.stringify(r.json)}`).toBe(200);
      return r.json;
    };
    await ok('POST', '/v1/mirrors/m0/secondaries', { array: 'bravo', lun: 'disk0', synchronized: true, recoveryPolicy: 'manual', syncRate: '16M' });
    expect(fake.calls.at(-1)).toEqual({ op: 'addSecondary', args: ['m0', { array: 'bravo', lun: 'disk0', synchronized: true, recoveryPolicy: 'manual', syncRate: 16 << 20 }] });
    await ok('POST', '/v1/mirrors/m0/secondaries', { array: 'bravo', lun: 0, syncRate: null });
    expect(fake.calls.at(-1)).toEqual({ op: 'addSecondary', args: ['m0', { array: 'bravo', lun: 0, syncRate: null }] });
    await ok('DELETE', '/v1/mirrors/m0/secondaries/bravo%3A0?force=1');
    expect(fake.calls.at(-1)).toEqual({ op: 'removeSecondary', args: ['m0', 'bravo:0', { force: true }] });
    await ok('DELETE', '/v1/mirrors/m0/secondaries/bravo');
    expect(fake.calls.at(-1)).toEqual({ op: 'removeSecondary', args: ['m0', 'bravo', undefined] });
    await ok('POST', '/v1/mirrors/m0/promote');
    expect(fake.calls.at(-1)).toEqual({ op: 'promote', args: ['m0', undefined] });
    await ok('POST', '/v1/mirrors/m0/promote', { force: true });
    expect(fake.calls.at(-1)).toEqual({ op: 'promote', args: ['m0', { force: true }] });
    await ok('POST', '/v1/mirrors/m0/synchronize', { image: 'bravo:0', force: true });
    expect(fake.calls.at(-1)).toEqual({ op: 'synchronize', args: ['m0', 'bravo:0', { force: true }] });
    await ok('POST', '/v1/mirrors/m0/synchronize', {});
    expect(fake.calls.at(-1)).toEqual({ op: 'synchronize', args: ['m0', undefined, undefined] });
    await ok('POST', '/v1/mirrors/m0/fracture', { image: 'bravo' });
    expect(fake.calls.at(-1)).toEqual({ op: 'fracture', args: ['m0', 'bravo'] });
    await ok('POST', '/v1/mirrors/m0/activate');
    expect(fake.calls.at(-1)).toEqual({ op: 'activate', args: ['m0'] });
    await ok('POST', '/v1/mirrors/m0/deactivate', { force: true });
    expect(fake.calls.at(-1)).toEqual({ op: 'deactivate', args: ['m0', { force: true }] });
    await ok('PATCH', '/v1/mirrors/m0', { syncRate: 1048576, syncPriority: 'low', allowSecondaryReads: false });
    expect(fake.calls.at(-1)).toEqual({ op: 'setAttributes', args: ['m0', { syncRate: 1048576, syncPriority: 'low', allowSecondaryReads: false }] });
    await ok('PATCH', '/v1/mirrors/m0', { image: 'bravo', recoveryPolicy: 'manual', imageSyncRate: null });
    expect(fake.calls.at(-1)).toEqual({ op: 'setAttributes', args: ['m0', { image: 'bravo', recoveryPolicy: 'manual', imageSyncRate: null }] });
    const rep = await ok('POST', '/v1/mirrors/m0/verify', { image: 'bravo:0' });
    expect(rep.identical).toBe(true);
    expect(fake.calls.at(-1)).toEqual({ op: 'verify', args: ['m0', 'bravo:0'] });
    await ok('POST', '/v1/mirrors/m0/resolve', { survivor: 'alpha' });
    expect(fake.calls.at(-1)).toEqual({ op: 'resolveSplitBrain', args: ['m0', { survivor: 'alpha' }] });
    const d = await ok('DELETE', '/v1/mirrors/m0');
    expect(d).toEqual({ destroyed: { mirrorId: 'id-m0', name: 'm0' } });
    expect(fake.calls.at(-1)).toEqual({ op: 'destroy', args: ['m0'] });
  });

  it('refuses bad requests with 400 invalid-argument and calls nothing', async () => {
    const url = await start();
    const cases: [string, string, unknown, RegExp][] = [
      ['POST', '/v1/mirrors', {}, /missing field lun/],
      ['POST', '/v1/mirrors', { lun: 'disk0', bogus: 1 }, /unknown field bogus/],
      ['POST', '/v1/mirrors', { lun: true }, /lun must be a LUN id/],
      ['POST', '/v1/mirrors', { lun: -1 }, /lun must be a LUN id/],
      ['POST', '/v1/mirrors', { lun: 'disk0', name: 'a b' }, /mirror name "a b" is invalid/],
      ['POST', '/v1/mirrors', { lun: 'disk0', name: '.' }, /mirror name "\." is invalid: .* \(not \. or \.\.\)/],
      ['POST', '/v1/mirrors', { lun: 'disk0', name: '..' }, /mirror name "\.\." is invalid: .* \(not \. or \.\.\)/],
      ['PATCH', '/v1/mirrors/m0', { name: '..' }, /mirror name "\.\." is invalid/],
      ['POST', '/v1/mirrors/m0/secondaries', { array: '..', lun: 0 }, /array name "\.\." is invalid/],
      ['POST', '/v1/mirrors', { lun: 'disk0', regionSize: '3K' }, /regionSize must be a power of two/],
      ['POST', '/v1/mirrors', { lun: 'disk0', regionSize: '128M' }, /regionSize must be a power of two/],
      ['POST', '/v1/mirrors', { lun: 'disk0', attributes: [] }, /attributes must be a JSON object/],
      ['POST', '/v1/mirrors', { lun: 'disk0', attributes: { name: 'x' } }, /unknown field name in attributes/],
      ['POST', '/v1/mirrors', { lun: 'disk0', attributes: { writePolicy: 'fast' } }, /attributes.writePolicy must be one of/],
      ['POST', '/v1/mirrors', { lun: 'disk0', attributes: { syncRate: 0 } }, /attributes.syncRate must be a positive rate/],
      ['POST', '/v1/mirrors', { lun: 'disk0', attributes: { minImagesRequired: -2 } }, /minImagesRequired must be an integer >= -1/],
      ['POST', '/v1/mirrors', { lun: 'disk0', attributes: { allowSecondaryReads: 'yes' } }, /allowSecondaryReads must be true or false/],
      ['POST', '/v1/mirrors', [1], /request body must be a JSON object/],
      ['POST', '/v1/mirrors/m0/secondaries', { lun: 0 }, /missing field array/],
      ['POST', '/v1/mirrors/m0/secondaries', { array: 'bravo', lun: 0, recoveryPolicy: 'later' }, /recoveryPolicy must be one of auto, manual/],
      ['POST', '/v1/mirrors/m0/secondaries', { array: 'bravo', lun: 0, synchronized: 1 }, /synchronized must be true or false/],
      ['POST', '/v1/mirrors/m0/secondaries', { array: 'bravo', lun: 0, syncRate: 'fast' }, /syncRate must be a positive rate/],
      ['POST', '/v1/mirrors/m0/secondaries', { array: 'bra vo', lun: 0 }, /array name "bra vo" is invalid/],
      ['POST', '/v1/mirrors/m0/promote', { force: 'yes' }, /force must be true or false/],
      ['POST', '/v1/mirrors/m0/promote', { now: true }, /unknown field now/],
      ['POST', '/v1/mirrors/m0/synchronize', { image: 5 }, /image must be a non-empty string/],
      ['POST', '/v1/mirrors/m0/fracture', { image: 'bravo', force: true }, /unknown field force/],
      ['POST', '/v1/mirrors/m0/activate', { force: true }, /unknown field force; expected none/],
      ['POST', '/v1/mirrors/m0/deactivate', { force: 1 }, /force must be true or false/],
      ['POST', '/v1/mirrors/m0/verify', { image: '' }, /image must be a non-empty string/],
      ['POST', '/v1/mirrors/m0/resolve', {}, /missing field survivor/],
      ['PATCH', '/v1/mirrors/m0', {}, /nothing to change/],
      ['PATCH', '/v1/mirrors/m0', { recoveryPolicy: 'auto' }, /give image/],
      ['PATCH', '/v1/mirrors/m0', { image: 'bravo' }, /image given without/],
      ['PATCH', '/v1/mirrors/m0', { regionSize: 4096 }, /unknown field regionSize/],
      ['PATCH', '/v1/mirrors/m0', { syncPriority: 'urgent' }, /syncPriority must be one of low, medium, high/],
      ['DELETE', '/v1/mirrors/m0/secondaries/bravo?force=maybe', undefined, /force must be true or false/],
      ['DELETE', '/v1/mirrors/m0/secondaries/bravo?forse=1', undefined, /unknown query parameter forse/],
      ['GET', '/v1/mirrors?all=1', undefined, /unknown query parameter all/],
    ];
    for (const [method, path, body, msg] of cases) {
      const r = await call(url, method, path, body);
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect(r.json.error.code).toBe('invalid-argument');
      expect(r.json.error.message).toMatch(msg);
    }
    expect(fake.calls).toEqual([]);
    const badJson = await call(url, 'POST', '/v1/mirrors', undefined, '{"lun": ');
    expect([badJson.status, badJson.json.error.code]).toEqual([400, 'invalid-json']);
    const wrongType = await fetch(url + '/v1/mirrors/m0/promote', { method: 'POST', body: 'force=1', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(wrongType.status).toBe(415);
    expect(fake.calls).toEqual([]);
  });

  it('region map: ?buckets 1..1024 (256 by default); anything else 400 and the driver is not asked', async () => {
    const url = await start();
    const def = await call(url, 'GET', '/v1/mirrors/m0/regions');
    expect(def.status).toBe(200);
    expect(fake.calls.at(-1)).toEqual({ op: 'regionMap', args: ['m0', 256] });
    expect((await call(url, 'GET', '/v1/mirrors/m0/regions?buckets=1024')).status).toBe(200);
    expect(fake.calls.at(-1)).toEqual({ op: 'regionMap', args: ['m0', 1024] });
    const before = fake.calls.length;
    for (const q of ['buckets=0', 'buckets=1025', 'buckets=1.5', 'buckets=-1', 'buckets=ten', 'buckets=', 'other=1']) {
      const r = await call(url, 'GET', `/v1/mirrors/m0/regions?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.json.error.code, q).toBe('invalid-argument');
    }
    expect(fake.calls.length).toBe(before);
    expect((await call(url, 'GET', '/v1/mirrors/nope/regions')).status).toBe(404);
  });

  it('MirrorError codes become their HTTP status; other errors 500', async () => {
    const url = await start();
    const cases: [MirrorError, number][] = [
      [new MirrorError('not-found', 'no mirror x'), 404],
      [new MirrorError('invalid', 'bad'), 400],
      [new MirrorError('size-mismatch', 'secondary smaller'), 409], // the LUNs' sizes, not the request, are wrong
      [new MirrorError('unreachable', 'bravo unreachable'), 503],
      [new MirrorError('state', 'mirror is INACTIVE'), 409],
      [new MirrorError('split-brain', 'both took writes'), 409],
    ];
    for (const [err, status] of cases) {
      fake.fail = err;
      const r = await call(url, 'POST', '/v1/mirrors/m0/promote', {});
      expect(r.status).toBe(status);
      expect(r.json.error).toEqual({ code: err.code, message: err.message });
    }
    const missing = await call(url, 'GET', '/v1/mirrors/nope');
    expect([missing.status, missing.json.error.code]).toEqual([404, 'not-found']);
    fake.fail = new Error('boom');
    const r = await call(url, 'GET', '/v1/mirrors');
    expect([r.status, r.json.error.code, r.json.error.message]).toEqual([500, 'internal', 'boom']);
  });

  it('ApiClient methods reach the right routes', async () => {
    const url = await start();
    const c = new ApiClient({ url });
    expect((await c.listMirrors()).mirrors).toHaveLength(1);
    expect((await c.getMirror('m0')).record.name).toBe('m0');
    await c.createMirror({ lun: 'disk1', name: 'm1', regionSize: '64K', attributes: { syncRate: '8M' } });
    expect(fake.calls.at(-1)!.args[0]).toEqual({ lun: 'disk1', name: 'm1', regionSize: 65536, attributes: { syncRate: 8 << 20 } });
    await c.addSecondary('m1', { array: 'bravo', lun: 'disk1' });
    await c.removeSecondary('m1', 'bravo:1', { force: true });
    expect(fake.calls.at(-1)).toEqual({ op: 'removeSecondary', args: ['m1', 'bravo:1', { force: true }] });
    await c.promoteMirror('m1');
    await c.synchronizeMirror('m1', { image: 'bravo' });
    await c.fractureMirror('m1');
    await c.activateMirror('m1');
    await c.deactivateMirror('m1', { force: true });
    await c.setMirrorAttributes('m1', { syncRate: '1M' });
    expect((await c.verifyMirror('m1')).identical).toBe(true);
    await c.resolveSplitBrain('m1', { survivor: 'bravo' });
    expect((await c.destroyMirror('m1')).destroyed.name).toBe('m1');
    expect(fake.calls.map((x) => x.op)).toEqual([
      'list', 'get', 'create', 'addSecondary', 'removeSecondary', 'promote', 'synchronize', 'fracture', 'activate', 'deactivate', 'setAttributes', 'verify', 'resolveSplitBrain', 'get', 'destroy',
    ]);
    // verify goes through node:http (long timeout): errors and refusals as with fetch
    const v = await new ApiClient({ url: 'http://127.0.0.1:1' }).verifyMirror('m0').catch((x: unknown) => x);
    expect([(v as ClientError).code, (v as ClientError).message]).toEqual(['unreachable', 'cannot reach the sanbox API at http://127.0.0.1:1: ECONNREFUSED']);
    const nf = await c.verifyMirror('zz').catch((x: unknown) => x);
    expect([(nf as ClientError).code, (nf as ClientError).status]).toEqual(['not-found', 404]);
    const e = await c.getMirror('m1').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ClientError);
    expect([(e as ClientError).code, (e as ClientError).status]).toEqual(['not-found', 404]);
  });
});
