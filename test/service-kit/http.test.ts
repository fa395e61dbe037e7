// A service's HTTP side (src/service-kit, the monitor's and the heartbeat agent's): a foreign
// Origin of a web page is refused (403 forbidden-origin) on every route, its own origin and a
// configured one are served; POST routes take JSON and refuse bad bodies without calling the handler.
import { afterEach, describe, expect, it } from 'vitest';
import { HttpRefusal, ServiceEvents, ServiceHttp, type PostHandler } from '../../src/service-kit/index.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(allowedOrigins?: string[], post?: Record<string, PostHandler>): Promise<string> {
  const http = new ServiceHttp({
    service: 'monitor',
    host: '127.0.0.1',
    port: 0,
    events: new ServiceEvents(),
    get: { '/v1/status': () => ({ pid: process.pid }), '/v1/resources': () => ({ resources: [] }) },
    readOnlyHint: 'use prmd/chkmon or sanbox monitor',
    ...(post ? { post } : {}),
    ...(allowedOrigins ? { allowedOrigins } : {}),
  });
  const port = await http.start();
  cleanups.push(() => http.close());
  return `http://127.0.0.1:${port}`;
}

describe('monitor HTTP and a web page', () => {
  it('refuses a foreign Origin on every route, serves its own and a configured one', async () => {
    const url = await start(['http://dash.example:8480']);
    const got: [string, number, string | undefined][] = [];
    for (const path of ['/v1/status', '/v1/resources', '/v1/events']) {
      const r = await fetch(url + path, { headers: { Origin: 'http://evil.example' } });
      // a served /v1/events is a stream that never ends: only an error's body is read
      const code = r.ok ? (await r.body?.cancel(), undefined) : (await r.json()).error?.code;
      got.push([path, r.status, code]);
    }
    const post = await fetch(url + '/v1/resources', { method: 'POST', headers: { Origin: 'http://evil.example', 'Content-Type': 'text/plain' }, body: '' });
    got.push(['POST /v1/resources', post.status, (await post.json()).error?.code]);
    expect(got).toEqual([
      ['/v1/status', 403, 'forbidden-origin'],
      ['/v1/resources', 403, 'forbidden-origin'],
      ['/v1/events', 403, 'forbidden-origin'],
      ['POST /v1/resources', 403, 'forbidden-origin'],
    ]);
    for (const origin of [url, 'http://dash.example:8480']) {
      const r = await fetch(url + '/v1/status', { headers: { Origin: origin } });
      expect(r.status, origin).toBe(200);
    }
    expect((await fetch(url + '/v1/resources')).status).toBe(200);
  });
});

describe('a service HTTP side with POST routes', () => {
  it('passes a JSON body to its handler, refuses bad bodies, unknown routes and a read-only GET service', async () => {
    const seen: unknown[] = [];
    const url = await start(undefined, {
      '/v1/mode': (body) => {
        seen.push(body);
        if ((body as { bad?: boolean }).bad) throw new HttpRefusal(409, 'refused', 'not now');
        return { status: 200, body: { ok: true } };
      },
    });
    const post = (path: string, body: string) => fetch(url + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    const ok = await post('/v1/mode', '{"network":true}');
    expect([ok.status, await ok.json()]).toEqual([200, { ok: true }]);
    const refused = await post('/v1/mode', '{"bad":true}');
    expect([refused.status, (await refused.json()).error]).toEqual([409, { code: 'refused', message: 'not now' }]);
    const notJson = await post('/v1/mode', '{network');
    expect([notJson.status, (await notJson.json()).error.code]).toEqual([400, 'invalid-argument']);
    const huge = await post('/v1/mode', JSON.stringify({ x: 'y'.repeat(70_000) }));
    expect([huge.status, (await huge.json()).error.code]).toEqual([413, 'too-large']);
    const unknown = await post('/v1/nothing', '{}');
    expect([unknown.status, (await unknown.json()).error.code]).toEqual([404, 'not-found']);
    expect(seen).toEqual([{ network: true }, { bad: true }]);
    const put = await fetch(url + '/v1/mode', { method: 'PUT', body: '{}' });
    expect([put.status, (await put.json()).error.code]).toEqual([405, 'method-not-allowed']);
  });

  it('a read-only service refuses POST with its hint', async () => {
    const url = await start();
    const r = await fetch(url + '/v1/status', { method: 'POST', body: '{}' });
    const body = await r.json();
    expect([r.status, body.error.code]).toEqual([405, 'method-not-allowed']);
    expect(body.error.message).toContain('use prmd/chkmon or sanbox monitor');
  });
});
