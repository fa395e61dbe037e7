// The monitor's read-only HTTP side and the Origin of a web page: a foreign Origin is refused
// (403 forbidden-origin) on every route, its own origin and a configured one are served.
import { afterEach, describe, expect, it } from 'vitest';
import { MonitorEvents } from '../../src/monitor/events.js';
import { MonitorHttp } from '../../src/monitor/http.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(allowedOrigins?: string[]): Promise<string> {
  const http = new MonitorHttp({
    host: '127.0.0.1',
    port: 0,
    events: new MonitorEvents(),
    status: () => ({ pid: process.pid }),
    resources: () => [],
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
