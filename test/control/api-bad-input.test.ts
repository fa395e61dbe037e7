// Bad API input changes nothing: a LUN create the file system refuses (1P on ext4: EFBIG) leaves
// no image file, no metadata entry and no used id; and every route family rejects `__proto__`,
// `constructor`, `prototype` (and other Object.prototype names) as body fields exactly like any
// other unknown field — 400 invalid-argument naming the field, nothing called.
import { closeSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChassisControl } from '../../src/control/api/chassis.js';
import { ApiClient, ControlServer, type LunView } from '../../src/control/index.js';
import { startArray, type RunningArray } from '../../src/control/service.js';
import { FakeGroups } from '../support/fake-groups.js';
import { FakeMirrors } from '../support/fake-mirrors.js';

const MiB = 1 << 20;
const PiB = 2 ** 50;

/** Whether the file system of the temp dir refuses a 1P file (ext4 and xfs do; tmpfs may not). */
function fsRefuses(bytes: number): boolean {
  const d = mkdtempSync(join(tmpdir(), 'sanbox-probe-'));
  const fd = openSync(join(d, 'probe'), 'w');
  try {
    ftruncateSync(fd, bytes);
    return false;
  } catch {
    return true;
  } finally {
    closeSync(fd);
    rmSync(d, { recursive: true, force: true });
  }
}
const REFUSES_1P = fsRefuses(PiB);

let root: string;
let dir: string;
let run: RunningArray;
let api: ApiClient;
let extra: ControlServer | undefined;

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'sanbox-api-bad-'));
  dir = join(root, 'alpha');
  run = await startArray({ name: 'alpha', dir, nbd: { bind: '127.0.0.1', port: 0 }, api: { bind: '127.0.0.1', port: 0 }, luns: [{ name: 'disk0', size: 4 * MiB }], sync: false });
  api = new ApiClient({ url: run.apiUrl! });
});
afterEach(async () => {
  await extra?.close();
  extra = undefined;
  await run?.close(200);
  rmSync(root, { recursive: true, force: true });
});

async function call(url: string, method: string, path: string, text?: string) {
  const res = await fetch(url + path, { method, body: text, headers: text !== undefined ? { 'Content-Type': 'application/json' } : {} });
  const t = await res.text();
  return { status: res.status, json: t ? JSON.parse(t) : undefined };
}

/** What a failed request must not change. */
function state() {
  return {
    files: readdirSync(dir).sort(),
    luns: run.array.listLuns().map((l) => `${l.id}:${l.name}:${l.size}`),
    // the metadata copies (and any other small file): no save happened
    metadata: readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile() && !e.name.endsWith('.img'))
      .map((e) => `${e.name}:${readFileSync(join(dir, e.name)).toString('base64')}`)
      .sort(),
  };
}

describe('a LUN create that fails leaves nothing behind', () => {
  it.skipIf(!REFUSES_1P)('1P (more than the file system holds in one file): 409 refused, no file, no LUN, and the next create gets the next id', async () => {
    const before = state();
    const r = await call(run.apiUrl!, 'POST', '/v1/luns', JSON.stringify({ name: 'huge', size: '1P' }));
    expect({ status: r.status, code: r.json.error.code }, r.json.error.message).toEqual({ status: 409, code: 'refused' });
    expect(r.json.error.message).toMatch(/file system/);
    expect(state()).toEqual(before);
    // Again, as a byte count: the same clean answer, and still no metadata written.
    expect((await call(run.apiUrl!, 'POST', '/v1/luns', JSON.stringify({ name: 'huge', size: PiB }))).status).toBe(409);
    expect(state()).toEqual(before);
    // A grow saves the metadata first and rolls it back: same files, same LUNs, same sizes.
    const grow = await call(run.apiUrl!, 'POST', '/v1/luns/disk0/grow', JSON.stringify({ size: '1P' }));
    expect({ status: grow.status, code: grow.json.error.code }, grow.json.error.message).toEqual({ status: 409, code: 'refused' });
    expect({ ...state(), metadata: undefined }).toEqual({ ...before, metadata: undefined });
    const next = await api.createLun<LunView>({ name: 'disk1', size: '1M' });
    expect(next.lun).toMatchObject({ id: 1, name: 'disk1', size: MiB, image: join(dir, 'lun1.img'), state: 'online' });
    expect(readdirSync(dir).filter((f) => f.endsWith('.img')).sort()).toEqual(['lun0.img', 'lun1.img']);
    expect(run.array.device('disk0')!.size).toBe(4 * MiB);
  });
});

/** Object.prototype names, and JSON's own `__proto__` key (an own property after JSON.parse). */
const KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];

/** `body` as JSON text with `key` added as an own field (JSON.stringify of an object literal cannot). */
const withKey = (body: Record<string, unknown>, key: string): string => {
  const text = JSON.stringify(body);
  return `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}"${key}":{"a":1}}`;
};

describe('every route family rejects __proto__ and the other Object.prototype names like any unknown field', () => {
  it('LUNs, mirrors, groups, snapshots, clones, chassis, disk faults: 400 naming the field, nothing done', async () => {
    const mirrors = new FakeMirrors();
    const groups = new FakeGroups();
    const chassisCalls: string[] = [];
    const chassis = new Proxy({} as ChassisControl, {
      get: (_t, p) => {
        if (p === 'then') return undefined;
        if (p === 'lunView') return () => ({});
        if (p === 'status') return async () => ({ sps: [] });
        return async () => {
          chassisCalls.push(String(p));
          return { done: String(p) };
        };
      },
    });
    extra = new ControlServer({ array: run.array, mirrors, groups, snapshots: run.snapshots, clones: run.clones, diskFaults: run.diskFaults, chassis });
    const url = (await extra.listen()).url;
    const before = { ...state(), snapshots: run.snapshots!.list().length, clones: run.clones!.list().length, faults: (await run.diskFaults.list()).length };

    const cases: Array<[string, string, Record<string, unknown>, ((k: string) => string)?]> = [
      ['POST', '/v1/luns', { name: 'x', size: '1M' }],
      ['POST', '/v1/luns/disk0/grow', { size: '8M' }],
      ['POST', '/v1/mirrors', { lun: 'disk0' }],
      ['POST', '/v1/mirrors', { lun: 'disk0' }, (k) => `{"lun":"disk0","attributes":${withKey({ syncRate: '1M' }, k)}}`],
      ['PATCH', '/v1/mirrors/m0', { syncRate: '1M' }],
      ['POST', '/v1/mirrors/m0/secondaries', { array: 'bravo', lun: 0 }],
      ['POST', '/v1/mirrors/m0/promote', {}],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'] }],
      ['POST', '/v1/groups', { name: 'g1', members: ['m1'] }, (k) => `{"name":"g1","members":["m1"],"attributes":${withKey({ mode: 'synchronous' }, k)}}`],
      ['PATCH', '/v1/groups/g0', { protectResync: true }],
      ['POST', '/v1/groups/g0/pause', {}],
      ['POST', '/v1/luns/disk0/snapshots', { name: 's1' }],
      ['POST', '/v1/snapshot-groups', { luns: ['disk0'], name: 's1' }],
      ['PATCH', '/v1/luns/disk0/snapshots', { storeSize: '8M' }],
      ['POST', '/v1/clones', { name: 'c1', source: 'disk0' }],
      ['POST', '/v1/faults/sp-crash', { sp: 'a' }],
      ['POST', '/v1/faults/power-fail', {}],
      ['POST', '/v1/luns/disk0/trespass', {}],
      ['PUT', '/v1/luns/disk0/disk-fault', { errors: ['read'] }],
    ];
    const accepted: string[] = [];
    for (const key of KEYS) {
      for (const [method, path, body, text] of cases) {
        const sent = text ? text(key) : withKey(body, key);
        // the key is an own field of what the server parses (top level, or in attributes)
        const parsed = JSON.parse(sent) as Record<string, Record<string, unknown>>;
        expect(Object.keys(text ? parsed.attributes! : parsed), sent).toContain(key);
        const r = await call(url, method, path, sent);
        const what = `${method} ${path} ${sent} -> ${r.status} ${JSON.stringify(r.json)}`;
        if (r.status !== 400 || r.json?.error?.code !== 'invalid-argument' || !String(r.json.error.message).includes(`unknown field`) || !String(r.json.error.message).includes(key)) accepted.push(what);
      }
    }
    expect(accepted).toEqual([]);
    expect(mirrors.calls).toEqual([]);
    expect(groups.calls).toEqual([]);
    expect(chassisCalls).toEqual([]);
    expect({ ...state(), snapshots: run.snapshots!.list().length, clones: run.clones!.list().length, faults: (await run.diskFaults.list()).length }).toEqual(before);
  });
});
