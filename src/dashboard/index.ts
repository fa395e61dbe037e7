/**
 * The lab's web dashboard (`sanbox up` serves it; docs/dashboard.md): one page (./page/, plain
 * HTML, CSS and JavaScript served as they are, no build step) and uPlot from node_modules, all
 * from this server, nothing from a CDN. The page reads the lab through this server only:
 *
 *   GET  /                        the page (with ?token=T when the dashboard has a token: sets a cookie)
 *   GET  /kit.js, /controls.js, /heatmap.js, /monitor.js, /app.js, /style.css, /vendor/uPlot.iife.min.js, /vendor/uPlot.min.css
 *   GET  /api/topology            arrays, SPs, LUNs, links, mirrors, groups with their state (./topology.ts)
 *   GET  /api/series?since=MS     per-LUN write IOPS and p50/p99, group backlog and lag, resyncs (./history.ts)
 *   GET  /api/events              the lab's event streams merged, as server-sent events (./events.ts)
 *   GET|POST /api/arrays/..., /api/links/...   the allow-listed proxy to the lab's APIs (./proxy.ts)
 *
 * The same rules as the lab's APIs: on a loopback address without a token, only loopback Host
 * names (no DNS rebinding); off loopback a token is required (`Authorization: Bearer` or the
 * cookie the `?token=` link sets); a foreign `Origin` is refused on every route and a change needs
 * the JSON content type (src/http-guard).
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timingSafeEqual, createHash } from 'node:crypto';
import { checkBrowserSafety } from '../http-guard/index.js';
import { EventHub, type DashEvent } from './events.js';
import { MetricsHistory, type HistoryOptions } from './history.js';
import { callUpstream, type DashboardLab } from './lab.js';
import { resolveProxy } from './proxy.js';
import { gatherTopology } from './topology.js';

export type { DashboardLab, DashboardLabArray, DashboardLabLink } from './lab.js';
export { parsePromText, type PromSample } from './prom.js';
export { counterIncrease, histogramQuantile, metricsPoint, type MetricsPoint, type Scrape } from './rates.js';
export { ALLOWED_CALLS, resolveProxy } from './proxy.js';

export interface DashboardOptions {
  /** The live lab state (the supervisor's own object: read at each request). */
  lab: () => DashboardLab;
  host?: string;
  port?: number;
  /** Required off loopback. */
  token?: string;
  history?: HistoryOptions;
}

/** The page's files: served from the sources (tsc copies no HTML), found from dist/dashboard/ and src/dashboard/ alike. */
const PAGE_DIR = fileURLToPath(new URL('../../src/dashboard/page/', import.meta.url));
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot'));

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: join(PAGE_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/kit.js': { file: join(PAGE_DIR, 'kit.js'), type: 'text/javascript; charset=utf-8' },
  '/controls.js': { file: join(PAGE_DIR, 'controls.js'), type: 'text/javascript; charset=utf-8' },
  '/heatmap.js': { file: join(PAGE_DIR, 'heatmap.js'), type: 'text/javascript; charset=utf-8' },
  '/monitor.js': { file: join(PAGE_DIR, 'monitor.js'), type: 'text/javascript; charset=utf-8' },
  '/app.js': { file: join(PAGE_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: join(PAGE_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  '/vendor/uPlot.iife.min.js': { file: join(UPLOT_DIR, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/vendor/uPlot.min.css': { file: join(UPLOT_DIR, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

/** Every page needs only this server (uPlot styles its canvas through the DOM: inline styles). */
const CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
const SSE_PING_MS = 15_000;

export function isLoopbackName(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

export class DashboardServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly history: MetricsHistory;
  private readonly hub: EventHub;
  private readonly host: string;
  private readonly tokenDigest: Buffer | undefined;
  private readonly streams = new Set<ServerResponse>();
  url = '';
  /** Per port: browsers send a host's cookies to all its ports, and each lab's dashboard has its own token. */
  private cookie = 'sanbox_dashboard';

  constructor(private readonly opts: DashboardOptions) {
    this.host = opts.host ?? '127.0.0.1';
    if (opts.token !== undefined && opts.token.length < 8) throw new Error('the dashboard token must be at least 8 characters');
    if (!isLoopbackName(this.host) && !opts.token) throw new Error(`a dashboard on ${this.host} (not loopback) needs a token`);
    this.tokenDigest = opts.token ? digest(opts.token) : undefined;
    this.history = new MetricsHistory(opts.lab, opts.history);
    this.hub = new EventHub(opts.lab);
  }

  async listen(): Promise<{ url: string }> {
    const srv = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: { code: 'internal', message: (e as Error).message } });
        else res.destroy();
      });
    });
    srv.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.opts.port ?? 0, this.host, () => {
        srv.off('error', reject);
        resolve();
      });
    });
    this.server = srv;
    const port = (srv.address() as AddressInfo).port;
    this.cookie = `sanbox_dashboard_${port}`;
    const h = this.host === '0.0.0.0' || this.host === '::' ? '127.0.0.1' : this.host.includes(':') ? `[${this.host}]` : this.host;
    this.url = `http://${h}:${port}/`;
    return { url: this.url };
  }

  async close(): Promise<void> {
    this.history.stop();
    this.hub.stop();
    for (const r of this.streams) r.end();
    const srv = this.server;
    if (!srv) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }

  /** Token (Bearer or cookie) or, without one, a loopback Host; undefined when allowed. */
  private refuseAccess(req: IncomingMessage, url: URL): { status: number; code: string; message: string; headers?: Record<string, string> } | undefined {
    if (this.tokenDigest) {
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
      const cookie = new RegExp(`(?:^|;\\s*)${this.cookie}=([^;]+)`).exec(req.headers.cookie ?? '')?.[1];
      // A fresh ?token= link wins over a stale cookie (the lab restarted with another token).
      const link = url.pathname === '/' ? (url.searchParams.get('token') ?? undefined) : undefined;
      const given = bearer ?? link ?? cookie;
      if (given === undefined || !timingSafeEqual(digest(decodeURIComponent(given)), this.tokenDigest)) {
        return { status: 401, code: 'unauthorized', message: given === undefined ? 'this dashboard needs its token: open the URL with ?token=TOKEN' : 'wrong dashboard token', headers: { 'WWW-Authenticate': 'Bearer realm="sanbox dashboard"' } };
      }
      return undefined;
    }
    let hostname = '';
    try {
      hostname = new URL(`http://${req.headers.host ?? ''}`).hostname;
    } catch {
      /* an unparsable Host is no loopback name */
    }
    if (!isLoopbackName(hostname)) return { status: 403, code: 'forbidden-host', message: `Host ${JSON.stringify(req.headers.host ?? '')} is not a loopback name; use 127.0.0.1` };
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const method = (req.method ?? 'GET').toUpperCase();
    const denied = this.refuseAccess(req, url);
    if (denied) {
      req.resume();
      for (const [k, v] of Object.entries(denied.headers ?? {})) res.setHeader(k, v);
      return sendJson(res, denied.status, { error: { code: denied.code, message: denied.message } });
    }
    // The page is the only web origin that may use this server, for reads too: it holds tokens.
    const refused = checkBrowserSafety(req, [], { readsToo: true });
    if (refused) {
      req.resume();
      return sendJson(res, refused.status, { error: { code: refused.code, message: refused.message } });
    }
    req.resume(); // no route reads a body: the proxy builds its own
    const file = STATIC[url.pathname];
    if (file && (method === 'GET' || method === 'HEAD')) {
      if (url.pathname === '/' && this.opts.token && url.searchParams.has('token')) {
        // The token from the link becomes a cookie the page's requests carry; the URL loses it.
        res.writeHead(303, { Location: '/', 'Set-Cookie': `${this.cookie}=${encodeURIComponent(url.searchParams.get('token')!)}; HttpOnly; SameSite=Strict; Path=/` });
        return void res.end();
      }
      const body = await readFile(file.file);
      res.writeHead(200, { 'Content-Type': file.type, 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache' });
      return void res.end(method === 'HEAD' ? undefined : body);
    }
    if (method === 'GET' && url.pathname === '/api/topology') return sendJson(res, 200, await gatherTopology(this.opts.lab()));
    if (method === 'GET' && url.pathname === '/api/series') {
      const since = Number(url.searchParams.get('since') ?? '0');
      if (!Number.isFinite(since)) return sendJson(res, 400, { error: { code: 'invalid-argument', message: 'since must be a time in ms since the epoch' } });
      return sendJson(res, 200, this.history.since(since));
    }
    if (method === 'GET' && url.pathname === '/api/events') return this.events(req, res, url);
    if (url.pathname.startsWith('/api/arrays/') || url.pathname.startsWith('/api/links/')) return this.proxy(method, url.pathname.slice('/api/'.length), res);
    return sendJson(res, 404, { error: { code: 'not-found', message: `no route ${method} ${url.pathname}` } });
  }

  private async proxy(method: string, rest: string, res: ServerResponse): Promise<void> {
    const r = resolveProxy(this.opts.lab(), method, rest);
    if (!r.ok) return sendJson(res, r.status, { error: { code: r.code, message: r.message } });
    const t = r.target;
    try {
      const ans = await callUpstream(t.upstream, t.method, t.path, t.body);
      res.writeHead(ans.status, { 'Content-Type': ans.contentType, 'Cache-Control': 'no-cache' });
      res.end(ans.body);
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      sendJson(res, 502, { error: { code: 'unreachable', message: `the lab's API at ${t.upstream.url} did not answer: ${cause}` } });
    }
  }

  private events(req: IncomingMessage, res: ServerResponse, url: URL): void {
    this.hub.start();
    const after = Number(req.headers['last-event-id'] ?? url.searchParams.get('since') ?? '0') || 0;
    if ((req.headers.accept ?? '').includes('application/json') && !(req.headers.accept ?? '').includes('text/event-stream')) {
      return sendJson(res, 200, { events: this.hub.since(after) });
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const write = (e: DashEvent) => res.write(`id: ${e.id}\ndata: ${JSON.stringify({ source: e.source, kind: e.kind, ...e.event })}\n\n`);
    for (const e of this.hub.since(after)) write(e);
    const off = this.hub.subscribe(write);
    const ping = setInterval(() => res.write(': ping\n\n'), SSE_PING_MS);
    this.streams.add(res);
    // The response's close, not the request's: a request closes once its (empty) body is read.
    res.on('close', () => {
      off();
      clearInterval(ping);
      this.streams.delete(res);
    });
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' });
  res.end(JSON.stringify(body) + '\n');
}
