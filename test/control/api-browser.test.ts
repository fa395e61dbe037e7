// The management API against the requests a web page can make without a preflight (the issue's
// "any web page can drive a tokenless loopback API"): a state-changing request needs
// `Content-Type: application/json` or `X-Sanbox-Request: 1` (else 415) and a foreign Origin is
// refused (403) unless configured. Real ControlServer and StorageArray, a recording fake
// GroupControl: a refused request changes nothing (LUNs, group calls, events, shutdown).
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageArray } from '../../src/array/index.js';
import { ControlServer, ApiClient } from '../../src/control/index.js';
import { FakeGroups } from '../support/fake-groups.js';

let dir: string;
let array: StorageArray;
let fake: FakeGroups;
let shutdowns: number;
const servers: ControlServer[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-browser-'));
  array = await StorageArray.open({ name: 'alpha', dir, noSync: true });
  await array.createLun({ name: 'disk0', size: 1 << 20 });
  fake = new FakeGroups();
  shutdowns = 0;
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await array.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(allowedOrigins?: string[]): Promise<string> {
  const srv = new ControlServer({ array, groups: fake, onShutdown: () => void shutdowns++, ...(allowedOrigins ? { allowedOrigins } : {}) });
  servers.push(srv);
  return (await srv.listen()).url;
}

async function send(url: string, method: string, path: string, headers: Record<string, string>, body?: string) {
  const res = await fetch(url + path, { method, headers, body });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

/** What a refused request must leave alone. */
function snapshot() {
  return { luns: array.listLuns().map((l) => [l.name, l.size]), seq: array.lastSeq, calls: fake.calls.length, shutdowns };
}

const EVIL = 'http://evil.example';

describe('management API: requests a browser sends cross-origin without a preflight', () => {
  it('refuses them with 415 or 403 and changes nothing', async () => {
    const url = await start();
    const before = snapshot();
    const cases: [string, string, string, Record<string, string>, string | undefined, number, string][] = [
      // fetch() turns a string body into text/plain;charset=UTF-8, as a browser does.
      ['text/plain pause from a foreign page', 'POST', '/v1/groups/g0/pause', { Origin: EVIL, 'Content-Type': 'text/plain' }, '', 403, 'forbidden-origin'],
      ['text/plain backfresh from a foreign page', 'POST', '/v1/groups/g0/backfresh', { Origin: EVIL }, '', 403, 'forbidden-origin'],
      ['JSON pause from a foreign page', 'POST', '/v1/groups/g0/pause', { Origin: EVIL, 'Content-Type': 'application/json' }, undefined, 403, 'forbidden-origin'],
      ['"null" origin (sandboxed frame)', 'POST', '/v1/groups/g0/refresh', { Origin: 'null', 'Content-Type': 'application/json' }, undefined, 403, 'forbidden-origin'],
      ['text/plain, empty body', 'POST', '/v1/groups/g0/pause', { 'Content-Type': 'text/plain' }, '', 415, 'unsupported-media-type'],
      ['text/plain body (fetch default)', 'POST', '/v1/groups/g0/backfresh', {}, '{}', 415, 'unsupported-media-type'],
      ['a form', 'POST', '/v1/groups/g0/resume', { 'Content-Type': 'application/x-www-form-urlencoded' }, 'x=1', 415, 'unsupported-media-type'],
      ['a multipart form', 'POST', '/v1/groups/g0/promote', { 'Content-Type': 'multipart/form-data; boundary=b' }, '--b--\r\n', 415, 'unsupported-media-type'],
      ['no content type, no body', 'POST', '/v1/groups/g0/pause', {}, undefined, 415, 'unsupported-media-type'],
      ['no content type, DELETE of a LUN', 'DELETE', '/v1/luns/disk0', {}, undefined, 415, 'unsupported-media-type'],
      ['no content type, shutdown', 'POST', '/v1/shutdown', {}, undefined, 415, 'unsupported-media-type'],
      ['text/plain, shutdown', 'POST', '/v1/shutdown', { 'Content-Type': 'text/plain' }, '', 415, 'unsupported-media-type'],
      ['X-Sanbox-Request other than 1', 'POST', '/v1/groups/g0/pause', { 'X-Sanbox-Request': 'yes' }, undefined, 415, 'unsupported-media-type'],
    ];
    const got: [string, number, string | undefined][] = [];
    const messages: string[] = [];
    for (const [what, method, path, headers, body] of cases) {
      const r = await send(url, method, path, headers, body);
      got.push([what, r.status, r.json?.error?.code]);
      if (r.status === 415) messages.push(r.json.error.message);
    }
    // Every case at once, so that a failure shows them all.
    expect(got).toEqual(cases.map(([what, , , , , status, code]) => [what, status, code]));
    // The 415 names the fix.
    for (const m of messages) expect(m).toMatch(/Content-Type: application\/json.*X-Sanbox-Request: 1/);
    // The answers above leave no time for a deferred shutdown to have run; give it one turn.
    await new Promise((r) => setImmediate(r));
    expect(snapshot()).toEqual(before);
    expect(fake.calls).toEqual([]);
    expect(array.device('disk0')).toBeDefined();
  });

  it('GET answers whatever the origin (a page cannot read it without CORS)', async () => {
    const url = await start();
    const r = await send(url, 'GET', '/v1/status', { Origin: EVIL });
    expect(r.status).toBe(200);
    expect(r.json.array).toBe('alpha');
  });

  it('accepts JSON (any charset), X-Sanbox-Request: 1, its own origin and a configured one', async () => {
    const url = await start(['http://dash.example:8480']);
    const ok: [string, Record<string, string>][] = [
      ['JSON, no body, no Origin', { 'Content-Type': 'application/json' }],
      ['JSON with a charset', { 'Content-Type': 'application/json; charset=utf-8' }],
      ['X-Sanbox-Request: 1, no content type', { 'X-Sanbox-Request': '1' }],
      ['its own origin', { 'Content-Type': 'application/json', Origin: url }],
      ['the configured origin', { 'Content-Type': 'application/json', Origin: 'http://dash.example:8480' }],
    ];
    for (const [what, headers] of ok) {
      const n = fake.calls.length;
      const r = await send(url, 'POST', '/v1/groups/g0/pause', headers);
      expect(r.status, `${what}: ${JSON.stringify(r.json)}`).toBe(200);
      expect(fake.calls.slice(n)).toEqual([{ op: 'pause', args: ['g0', true] }]);
    }
    // A configured origin is no wildcard: another port of the same host is foreign.
    const other = await send(url, 'POST', '/v1/groups/g0/pause', { 'Content-Type': 'application/json', Origin: 'http://dash.example:8481' });
    expect([other.status, other.json.error.code]).toEqual([403, 'forbidden-origin']);
  });

  it('the API client sends JSON on every request that changes something, body or not', async () => {
    const url = await start();
    const c = new ApiClient({ url });
    await c.pauseGroup('g0');
    await c.request('POST', '/v1/groups/g0/resume');
    expect(fake.calls.map((x) => x.op)).toEqual(['pause', 'pause']);
    await c.deleteLun('disk0');
    expect(array.listLuns()).toEqual([]);
    await c.shutdown();
    await new Promise((r) => setImmediate(r));
    expect(shutdowns).toBe(1);
  });
});
