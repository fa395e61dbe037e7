// The dashboard's server (src/dashboard) against stand-ins for the lab's APIs: its auth (loopback
// Host without a token, a token otherwise, a foreign Origin refused, changes need JSON), its
// routes (static files, 404s), the proxy's allow list and what it sends upstream (the token, the
// JSON content type, a fixed body), the merged event stream and the metrics series.
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DashboardServer, resolveProxy, type DashboardLab } from '../../src/dashboard/index.js';

interface Seen {
  method: string;
  path: string;
  auth?: string;
  type?: string;
  body: string;
}

/** A lab API stand-in: answers JSON by path, /metrics as text, /v1/events as one SSE event; records everything. */
async function upstream(name: string, metrics: () => string): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method!, path: req.url!, auth: req.headers.authorization, type: req.headers['content-type'], body });
      if (req.url === '/metrics') return void res.end(metrics());
      if (req.url!.startsWith('/v1/events')) {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(`id: 1\nevent: sp.state\ndata: ${JSON.stringify({ seq: 1, time: '2026-12-03T00:00:00.000Z', array: name, type: 'sp.state', sp: 'A', to: 'up' })}\n\n`);
        return; // held open, as a real stream
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ from: name, path: req.url }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

let writes = 0;
const metricsText = () =>
  [`sanbox_lun_ops_total{array="alpha",lun="disk0",op="write"} ${writes}`, ...['0.001', '0.01', '+Inf'].map((le) => `sanbox_lun_latency_seconds_bucket{array="alpha",lun="disk0",op="write",le="${le}"} ${le === '0.001' ? 0 : writes}`)].join('\n') + '\n';

let array: Awaited<ReturnType<typeof upstream>>;
let link: Awaited<ReturnType<typeof upstream>>;
let control: Awaited<ReturnType<typeof upstream>>;
let lab: DashboardLab;
const servers: DashboardServer[] = [];

beforeAll(async () => {
  array = await upstream('alpha', metricsText);
  link = await upstream('ab', () => '');
  control = await upstream('lab', () => '');
  lab = {
    lab: 'test',
    state: 'running',
    control: { url: control.url, token: 'control-token-123' },
    arrays: [{ name: 'alpha', state: 'running', api: { url: array.url, token: 'array-token-123' }, sps: [{ name: 'A' }] }],
    links: [{ name: 'ab', a: 'alpha', b: 'bravo', api: { url: link.url, token: 'link-token-123' } }],
  };
});

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

afterAll(async () => {
  for (const u of [array, link, control]) {
    u.server.closeAllConnections();
    await new Promise<void>((r) => u.server.close(() => r()));
  }
});

async function start(opts: { token?: string; host?: string } = {}): Promise<string> {
  const d = new DashboardServer({ lab: () => lab, ...opts, history: { everyMs: 100 } });
  servers.push(d);
  return (await d.listen()).url.replace(/\/$/, '');
}

/** A raw request (fetch cannot set Host or Origin freely). */
function raw(url: string, method: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const code = (r: { body: string }) => (JSON.parse(r.body) as { error?: { code: string } }).error?.code;

describe('dashboard server: auth', () => {
  it('loopback without a token: a loopback Host is served, another Host is refused', async () => {
    const base = await start();
    expect((await raw(`${base}/`, 'GET')).status).toBe(200);
    const r = await raw(`${base}/api/topology`, 'GET', { Host: 'evil.example:80' });
    expect(r.status).toBe(403);
    expect(code(r)).toBe('forbidden-host');
  });

  it('a foreign Origin is refused on reads and changes; the own origin is served', async () => {
    const base = await start();
    for (const method of ['GET', 'POST']) {
      const r = await raw(`${base}/api/${method === 'GET' ? 'topology' : 'links/ab/cut'}`, method, { Origin: 'http://evil.example', 'Content-Type': 'application/json' });
      expect(r.status).toBe(403);
      expect(code(r)).toBe('forbidden-origin');
    }
    expect(link.seen.filter((s) => s.path === '/v1/cut')).toHaveLength(0);
    expect((await raw(`${base}/api/topology`, 'GET', { Origin: base })).status).toBe(200);
  });

  it('with a token: none or a wrong one is 401; Bearer, the cookie and the ?token= link work', async () => {
    const base = await start({ token: 'dash-token-123' });
    let r = await raw(`${base}/api/topology`, 'GET');
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toMatch(/Bearer/);
    r = await raw(`${base}/api/topology`, 'GET', { Authorization: 'Bearer wrong-token-000' });
    expect(r.status).toBe(401);
    expect(code(r)).toBe('unauthorized');
    expect((await raw(`${base}/?token=wrong-token-000`, 'GET')).status).toBe(401);
    expect((await raw(`${base}/api/topology`, 'GET', { Authorization: 'Bearer dash-token-123' })).status).toBe(200);
    r = await raw(`${base}/?token=dash-token-123`, 'GET');
    expect(r.status).toBe(303);
    const cookie = String(r.headers['set-cookie']).split(';')[0]!;
    expect(String(r.headers['set-cookie'])).toMatch(/HttpOnly/);
    expect((await raw(`${base}/api/topology`, 'GET', { Cookie: cookie })).status).toBe(200);
    // a stale cookie: refused, and a fresh link replaces it
    const stale = cookie.replace(/=.*/, '=stale-token-000');
    expect((await raw(`${base}/api/topology`, 'GET', { Cookie: stale })).status).toBe(401);
    expect((await raw(`${base}/?token=dash-token-123`, 'GET', { Cookie: stale })).status).toBe(303);
    // the token is checked whatever the Host (it is what makes a non-loopback dashboard safe)
    expect((await raw(`${base}/api/topology`, 'GET', { Cookie: cookie, Host: 'sanbox.example' })).status).toBe(200);
  });

  it('refuses to start off loopback without a token, or with a short token', () => {
    expect(() => new DashboardServer({ lab: () => lab, host: '0.0.0.0' })).toThrow(/needs a token/);
    expect(() => new DashboardServer({ lab: () => lab, token: 'short' })).toThrow(/8 characters/);
  });
});

describe('dashboard server: routes and the proxy', () => {
  it('serves the page, its script and uPlot from this server, with a CSP of self', async () => {
    const base = await start();
    const page = await raw(`${base}/`, 'GET');
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect(page.body).not.toMatch(/https?:\/\//);
    for (const p of ['/kit.js', '/controls.js', '/heatmap.js', '/monitor.js', '/app.js', '/style.css', '/vendor/uPlot.iife.min.js', '/vendor/uPlot.min.css']) expect((await raw(base + p, 'GET')).status, p).toBe(200);
  });

  it('unknown routes are 404, traversal included', async () => {
    const base = await start();
    for (const p of ['/nope', '/api/nope', '/../package.json', '/vendor/../../package.json', '/page/app.js']) {
      const r = await raw(base + p, 'GET');
      expect(r.status, p).toBe(404);
    }
  });

  it('forwards allowed calls with the upstream token and the JSON content type, and a fixed body', async () => {
    const base = await start();
    let r = await raw(`${base}/api/links/ab/cut`, 'POST', { 'Content-Type': 'application/json' }, '{"direction":"a-to-b","evil":1}');
    expect(r.status).toBe(200);
    const cut = link.seen.find((s) => s.path === '/v1/cut')!;
    expect(cut).toMatchObject({ method: 'POST', auth: 'Bearer link-token-123', type: 'application/json', body: '{}' });
    r = await raw(`${base}/api/arrays/alpha/sps/B/crash`, 'POST', { 'Content-Type': 'application/json' });
    expect(r.status).toBe(200);
    expect(array.seen.find((s) => s.path === '/v1/faults/sp-crash')).toMatchObject({ auth: 'Bearer array-token-123', body: '{"sp":"B"}' });
    r = await raw(`${base}/api/arrays/alpha/crash`, 'POST', { 'Content-Type': 'application/json' });
    expect(control.seen.find((s) => s.path === '/v1/arrays/alpha/crash')).toMatchObject({ auth: 'Bearer control-token-123' });
    r = await raw(`${base}/api/links/ab/latency/20`, 'POST', { 'Content-Type': 'application/json' }, '{"latencyMs":9999}');
    expect(r.status).toBe(200);
    expect(link.seen.find((s) => s.path === '/v1/set')).toMatchObject({ method: 'POST', body: '{"latencyMs":20}' });
    r = await raw(`${base}/api/arrays/alpha/power-fail`, 'POST', { 'Content-Type': 'application/json' });
    expect(array.seen.find((s) => s.path === '/v1/faults/power-fail')).toMatchObject({ method: 'POST', body: '{}' });
    r = await raw(`${base}/api/arrays/alpha/power-restore`, 'POST', { 'Content-Type': 'application/json' });
    expect(array.seen.find((s) => s.path === '/v1/faults/power-restore')).toMatchObject({ method: 'POST', body: '{}' });
    r = await raw(`${base}/api/arrays/alpha/status`, 'GET');
    expect(JSON.parse(r.body)).toEqual({ from: 'alpha', path: '/v1/status' });
    // no token in anything the page gets
    expect((await raw(`${base}/api/topology`, 'GET')).body).not.toMatch(/token-123/);
  });

  it('refuses what is not on the allow list (403), unknown names (404), a change without JSON (415)', async () => {
    const base = await start();
    const before = array.seen.length;
    for (const [method, path] of [
      ['POST', '/api/arrays/alpha/luns'],
      ['DELETE', '/api/arrays/alpha/status'],
      ['GET', '/api/arrays/alpha/v1/luns'],
      ['POST', '/api/arrays/alpha/mirrors'],
      ['GET', '/api/links/ab/cut'],
      ['POST', '/api/arrays/alpha/sps/C/crash'],
      ['POST', '/api/links/ab/latency/7'],
      ['POST', '/api/links/ab/latency/1.5'],
      ['POST', '/api/links/ab/latency/-1'],
      ['GET', '/api/arrays/alpha/power-fail'],
      ['POST', '/api/arrays/alpha/sps/A/crash/../../shutdown'],
    ] as const) {
      const r = await raw(base + path, method, { 'Content-Type': 'application/json' });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(code(r)).toBe('not-allowed');
    }
    expect(array.seen.length).toBe(before);
    expect((await raw(`${base}/api/links/nolink/cut`, 'POST', { 'Content-Type': 'application/json' })).status).toBe(404);
    expect((await raw(`${base}/api/arrays/zulu/status`, 'GET')).status).toBe(404);
    const r = await raw(`${base}/api/links/ab/restore`, 'POST', { 'Content-Type': 'text/plain' }, 'x');
    expect(r.status).toBe(415);
    expect(link.seen.filter((s) => s.path === '/v1/restore')).toHaveLength(0);
    expect(resolveProxy(lab, 'POST', 'links/ab/restore').ok).toBe(true);
  });

  it('an API that does not answer is 502, named', async () => {
    const base = await start();
    const saved = lab.arrays[0]!.api.url;
    lab.arrays[0]!.api.url = 'http://127.0.0.1:1';
    try {
      const r = await raw(`${base}/api/arrays/alpha/status`, 'GET');
      expect(r.status).toBe(502);
      expect(code(r)).toBe('unreachable');
    } finally {
      lab.arrays[0]!.api.url = saved;
    }
  });

  it('delivers events live to a page whose stream was open before they came', async () => {
    const base = await start();
    // The first /api/events starts the hub: the fake array's event arrives after this stream subscribed.
    const got = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${base}/api/events`, { headers: { Accept: 'text/event-stream' } }, (res) => {
        let text = '';
        res.on('data', (d) => {
          text += d;
          if (/"type":"sp.state"/.test(text)) {
            req.destroy();
            resolve(text);
          }
        });
      });
      req.on('error', reject);
      req.end();
      setTimeout(() => reject(new Error('no live event in 5 s')), 5000);
    });
    expect(got).toMatch(/^retry: 2000/);
    expect(got).toMatch(/id: \d+\ndata: \{"source":"alpha","kind":"array"/);
  });

  it('merges the event streams and computes the write series from successive scrapes', async () => {
    const base = await start();
    // the event hub starts with the first page
    await raw(`${base}/api/events`, 'GET', { Accept: 'application/json' });
    let events: { source: string; type: string }[] = [];
    for (let i = 0; i < 50 && !events.some((e) => e.type === 'sp.state'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      events = (JSON.parse((await raw(`${base}/api/events`, 'GET', { Accept: 'application/json' })).body) as { events: { source: string; type: string }[] }).events;
    }
    expect(events.find((e) => e.type === 'sp.state')).toMatchObject({ source: 'alpha', kind: 'array' });
    const series = async () => JSON.parse((await raw(`${base}/api/series?since=0`, 'GET')).body) as { points: { luns: { writeIops: number; p50Ms: number | null }[] }[] };
    await series();
    const t0 = Date.now();
    let point: { writeIops: number; p50Ms: number | null } | undefined;
    while (!point && Date.now() - t0 < 5000) {
      writes += 50;
      await new Promise((r) => setTimeout(r, 120));
      point = (await series()).points.flatMap((p) => p.luns).find((l) => l.writeIops > 0);
    }
    expect(point!.p50Ms).toBeGreaterThan(1);
    expect(point!.p50Ms).toBeLessThanOrEqual(10);
    expect((await raw(`${base}/api/series?since=abc`, 'GET')).status).toBe(400);
  });
});
