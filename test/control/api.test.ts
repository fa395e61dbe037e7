import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageArray } from '../../src/array/index.js';
import { ControlServer, ApiClient, ClientError, type LunView } from '../../src/control/index.js';

let dir: string;
let array: StorageArray;
const servers: ControlServer[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-api-'));
  array = await StorageArray.open({ name: 'alpha', dir, noSync: true });
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await array.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(opts: { token?: string; host?: string } = {}): Promise<{ url: string; srv: ControlServer }> {
  const srv = new ControlServer({ array, nbd: () => [{ host: '127.0.0.1', port: 10999 }], info: () => ({ pid: process.pid }), ...opts });
  servers.push(srv);
  const { url } = await srv.listen();
  return { url, srv };
}

async function call(url: string, method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  // JSON on every request but GET, body or not: the API refuses the others (what a web page could send).
  const res = await fetch(url + path, { method, body, headers: body !== undefined || method !== 'GET' ? { 'Content-Type': 'application/json', ...headers } : headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

/** Raw request, to set headers fetch will not (Host). */
function raw(url: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('management API', () => {
  it('creates, lists, grows and deletes LUNs, with NBD URIs in status', async () => {
    const { url } = await start();
    const c = new ApiClient({ url });
    const created = await c.createLun<LunView>({ name: 'disk0', size: '1M' });
    expect(created.lun).toMatchObject({ id: 0, name: 'disk0', export: 'disk0', size: 1 << 20, blockSize: 512, state: 'online' });
    expect(created.lun.uris).toEqual(['nbd://127.0.0.1:10999/disk0']);
    expect(created.lun.image).toBe(join(dir, 'lun0.img'));
    await c.createLun({ name: 'disk1', size: 8192, blockSize: 4096 });
    const st = await c.status<{ array: string; luns: LunView[]; nbd: unknown[]; pid: number; api: { url: string } }>();
    expect(st.array).toBe('alpha');
    expect(st.pid).toBe(process.pid);
    expect(st.api.url).toBe(url);
    expect(st.luns.map((l) => [l.name, l.size, l.blockSize])).toEqual([
      ['disk0', 1 << 20, 512],
      ['disk1', 8192, 4096],
    ]);
    const grown = await c.growLun<LunView>('disk1', '16K');
    expect(grown.lun.size).toBe(16384);
    expect(array.device('disk1')!.size).toBe(16384);
    const one = await call(url, 'GET', '/v1/luns/1');
    expect(one.json.lun.name).toBe('disk1');
    const del = await c.deleteLun<LunView>('disk0');
    expect(del.deleted.name).toBe('disk0');
    expect((await c.listLuns<LunView>()).luns.map((l) => l.name)).toEqual(['disk1']);
    const created2 = await call(url, 'POST', '/v1/luns', JSON.stringify({ name: 'x', size: 4096 }));
    expect(created2.status).toBe(201);
    expect(created2.headers.get('location')).toBe('/v1/luns/2');
  });

  it('answers bad requests with JSON errors and changes nothing', async () => {
    const { url } = await start();
    await array.createLun({ name: 'disk0', size: 1 << 20 });
    const gen = array.metadataGeneration;
    const cases: Array<[string, string, string | undefined, number, string, Record<string, string>?]> = [
      ['POST', '/v1/luns', '{"name": "x", "size": ', 400, 'invalid-json'],
      ['POST', '/v1/luns', '', 400, 'invalid-json'],
      ['POST', '/v1/luns', '[1,2]', 400, 'invalid-argument'],
      ['POST', '/v1/luns', '"str"', 400, 'invalid-argument'],
      ['POST', '/v1/luns', '{"name":"x"}', 400, 'invalid-argument'],
      ['POST', '/v1/luns', '{"name":"x","size":"lots"}', 400, 'invalid-argument'],
      ['POST', '/v1/luns', '{"name":"x","size":"1G","colour":"red"}', 400, 'invalid-argument'],
      ['POST', '/v1/luns', '{"name":"x","size":1000}', 400, 'invalid-argument'],
      ['POST', '/v1/luns', '{"name":"x","size":4096,"blockSize":"4096"}', 400, 'invalid-argument'],
      ['POST', '/v1/luns', '{"name":"x y","size":4096}', 400, 'invalid-argument'],
      ['POST', '/v1/luns', '{"name":7,"size":4096}', 400, 'invalid-argument'],
      ['POST', '/v1/luns', '{"name":"disk0","size":4096}', 409, 'exists'],
      ['POST', '/v1/luns', 'name=x&size=4096', 415, 'unsupported-media-type', { 'Content-Type': 'application/x-www-form-urlencoded' }],
      ['POST', '/v1/luns/disk0/grow', '{"size":"512K"}', 409, 'refused'],
      ['POST', '/v1/luns/disk0/grow', '{"size":"1M"}', 409, 'refused'],
      ['POST', '/v1/luns/nope/grow', '{"size":"2M"}', 404, 'not-found'],
      ['DELETE', '/v1/luns/nope', undefined, 404, 'not-found'],
      ['DELETE', '/v1/luns/disk0?force=maybe', undefined, 400, 'invalid-argument'],
      ['GET', '/v1/luns/nope', undefined, 404, 'not-found'],
      ['GET', '/v1/nothing', undefined, 404, 'unknown-route'],
      ['GET', '/v2/status', undefined, 404, 'unknown-route'],
      ['DELETE', '/v1/luns', undefined, 405, 'method-not-allowed'],
      ['PUT', '/v1/status', '{}', 405, 'method-not-allowed'],
      ['POST', '/v1/shutdown', undefined, 404, 'unknown-route'],
    ];
    for (const [method, path, body, status, code, headers] of cases) {
      const r = await call(url, method, path, body, headers);
      expect([method, path, body, r.status, r.json?.error?.code]).toEqual([method, path, body, status, code]);
      expect(typeof r.json.error.message).toBe('string');
      expect(r.headers.get('content-type')).toMatch(/application\/json/);
    }
    const r405 = await call(url, 'DELETE', '/v1/luns');
    expect(r405.headers.get('allow')).toBe('GET, POST');
    const big = await call(url, 'POST', '/v1/luns', JSON.stringify({ name: 'x', size: 4096, pad: 'x'.repeat(100_000) }));
    expect([big.status, big.json.error.code]).toEqual([413, 'payload-too-large']);
    expect(array.metadataGeneration).toBe(gen);
    expect(array.listLuns().map((l) => [l.name, l.size])).toEqual([['disk0', 1 << 20]]);
  });

  it('refuses the LUN names . and .. (400, nothing created); .hidden is a name', async () => {
    const { url } = await start();
    const gen = array.metadataGeneration;
    for (const name of ['.', '..']) {
      const r = await call(url, 'POST', '/v1/luns', JSON.stringify({ name, size: 4096 }));
      expect([name, r.status, r.json.error.code]).toEqual([name, 400, 'invalid-argument']);
      expect(r.json.error.message).toContain('(not . or ..)');
    }
    expect(array.metadataGeneration).toBe(gen);
    expect(array.listLuns()).toEqual([]);
    const ok = await call(url, 'POST', '/v1/luns', JSON.stringify({ name: '.hidden', size: 4096 }));
    expect([ok.status, ok.json.lun.name]).toEqual([201, '.hidden']);
  });

  it('requires the token when one is set', async () => {
    const { url } = await start({ token: 's3cret-token' });
    expect((await call(url, 'GET', '/v1/status')).status).toBe(401);
    const wrong = await call(url, 'GET', '/v1/status', undefined, { Authorization: 'Bearer nope-nope-nope' });
    expect([wrong.status, wrong.json.error.code]).toEqual([401, 'unauthorized']);
    expect(wrong.headers.get('www-authenticate')).toMatch(/Bearer/);
    const basic = await call(url, 'GET', '/v1/status', undefined, { Authorization: 'Basic czNjcmV0' });
    expect(basic.status).toBe(401);
    // A rejected mutation changes nothing.
    const post = await call(url, 'POST', '/v1/luns', '{"name":"x","size":4096}', { Authorization: 'Bearer wrong-token' });
    expect(post.status).toBe(401);
    expect(array.listLuns()).toEqual([]);
    const ok = await call(url, 'GET', '/v1/status', undefined, { Authorization: 'Bearer s3cret-token' });
    expect(ok.status).toBe(200);
    await expect(new ApiClient({ url }).status()).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
    expect((await new ApiClient({ url, token: 's3cret-token' }).status()).array).toBe('alpha');
  });

  it('refuses a non-loopback listener without a token, allows it with one', async () => {
    expect(() => new ControlServer({ array, host: '0.0.0.0' })).toThrow(/without a token/);
    expect(() => new ControlServer({ array, host: '192.0.2.1' })).toThrow(/without a token/);
    expect(() => new ControlServer({ array, host: '127.0.0.1', token: 'short' })).toThrow(/at least 8/);
    const { url } = await start({ host: '0.0.0.0', token: 'long-enough-token' });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const r = await call(url, 'GET', '/v1/status', undefined, { Authorization: 'Bearer long-enough-token' });
    expect(r.status).toBe(200);
  });

  it('refuses non-loopback Host headers on a tokenless API (DNS rebinding)', async () => {
    const { url } = await start();
    const port = new URL(url).port;
    expect((await raw(url, '/v1/status', { Host: `evil.example:${port}` })).status).toBe(403);
    expect((await raw(url, '/v1/status', { Host: `localhost:${port}` })).status).toBe(200);
  });

  it('reports an unreachable API as such', async () => {
    const { url, srv } = await start();
    await srv.close();
    servers.splice(0);
    const err = await new ApiClient({ url }).status().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).unreachable).toBe(true);
  });

  it('streams events and replays from Last-Event-ID', async () => {
    const { url } = await start();
    const ac = new AbortController();
    const res = await fetch(url + '/v1/events', { signal: ac.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    const seen: Array<{ id: number; type: string; data: Record<string, unknown> }> = [];
    let buf = '';
    const pump = (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        buf += Buffer.from(value!).toString();
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const f = Object.fromEntries(block.split('\n').filter((l) => /^\w+: /.test(l)).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
          if (f.data) seen.push({ id: Number(f.id), type: f.event!, data: JSON.parse(f.data) });
        }
      }
    })();
    await array.createLun({ name: 'disk0', size: 4096 });
    await array.growLun('disk0', 8192);
    const until = Date.now() + 5000;
    while (seen.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await pump;
    expect(seen.map((e) => e.type)).toEqual(['lun.created', 'lun.grown']);
    expect(seen[1]!.data).toMatchObject({ array: 'alpha', type: 'lun.grown', size: 8192, seq: seen[1]!.id });

    // Replay: everything after the first one.
    const ac2 = new AbortController();
    const res2 = await fetch(url + '/v1/events', { headers: { 'Last-Event-ID': String(seen[0]!.id) }, signal: ac2.signal });
    const r2 = res2.body!.getReader();
    let text = '';
    while (!text.includes('event: lun.grown')) text += Buffer.from((await r2.read()).value!).toString();
    ac2.abort();
    expect(text).not.toContain('event: lun.created');
    const bad = await call(url, 'GET', '/v1/events?since=abc');
    expect(bad.status).toBe(400);
  });

  it('closes open event streams on close()', async () => {
    const { url, srv } = await start();
    const res = await fetch(url + '/v1/events');
    const reader = res.body!.getReader();
    await reader.read(); // retry line
    await srv.close();
    servers.splice(0);
    const until = Date.now() + 3000;
    let done = false;
    while (!done && Date.now() < until) done = (await reader.read()).done;
    expect(done).toBe(true);
  });
});
