/**
 * Control API of a link emulator: HTTP + JSON, on 127.0.0.1 by default (a token is required on
 * any other address), shaped like an array's management API.
 *
 *   GET  /v1/status               the LinkStatus snapshot
 *   GET  /v1/events[?since=N]     server-sent events (id: seq, event: type, data: JSON);
 *                                 with Accept: application/json, {events: [...]} kept after N
 *   POST /v1/set      {direction?, latencyMs?, jitterMs?, bandwidth?, lossPercent?, rtoMs?, stallMs?, reset?}
 *   POST /v1/cut      {direction?, reset?}
 *   POST /v1/restore  {}
 *   GET  /metrics                 Prometheus text format (./metrics.ts, docs/metrics.md)
 *
 * Every request is validated before anything changes; errors are
 * `{"error": {"code", "message"}}` with 400 (invalid-argument, invalid-json), 401, 403, 404, 405, 413, 415.
 * The browser rule of src/http-guard holds: a POST needs `Content-Type: application/json` (also
 * without a body) or `X-Sanbox-Request: 1` (415 unsupported-media-type), and one from a foreign
 * `Origin` is refused (403 forbidden-origin) unless in `allowedOrigins`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkBrowserSafety } from '../../http-guard/index.js';
import { checkDirection, checkSettings, LinkError, type LinkEmulator, type LinkEvent } from './emulator.js';
import { SETTING_NAMES } from './types.js';
import { METRICS_PATH, sendMetrics } from '../../metrics/index.js';
import { linkMetrics } from './metrics.js';

export interface LinkApiOptions {
  emulator: LinkEmulator;
  host?: string;
  port?: number;
  token?: string;
  /** Web origins whose pages may change things through this API besides its own; default none. */
  allowedOrigins?: string[];
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const isLoopbackHost = (h: string) => LOOPBACK.has(h) || h.startsWith('127.');

export class LinkApiServer {
  private server: Server | undefined;
  private readonly sse = new Set<ServerResponse>();
  private readonly onEvent = (ev: LinkEvent) => {
    for (const res of this.sse) res.write(sseFrame(ev));
  };
  url = '';

  constructor(private readonly opts: LinkApiOptions) {
    const host = opts.host ?? '127.0.0.1';
    if (!isLoopbackHost(host) && !opts.token) throw new LinkError('invalid-argument', `a link API on ${host} (not loopback) needs a token`);
  }

  async listen(): Promise<{ url: string; port: number }> {
    const host = this.opts.host ?? '127.0.0.1';
    const srv = createServer((req, res) => {
      this.handle(req, res).catch((e) => send(res, 500, { error: { code: 'internal', message: (e as Error).message } }));
    });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.opts.port ?? 0, host, () => {
        srv.off('error', reject);
        resolve();
      });
    });
    this.server = srv;
    this.opts.emulator.on('event', this.onEvent);
    const port = (srv.address() as AddressInfo).port;
    const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
    this.url = `http://${urlHost}:${port}`;
    return { url: this.url, port };
  }

  async close(): Promise<void> {
    this.opts.emulator.off('event', this.onEvent);
    for (const res of this.sse) res.end();
    this.sse.clear();
    const srv = this.server;
    if (!srv) return;
    srv.closeAllConnections?.();
    await new Promise<void>((r) => srv.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const emu = this.opts.emulator;
    const url = new URL(req.url ?? '/', 'http://x');
    if (this.opts.token) {
      if (req.headers.authorization !== `Bearer ${this.opts.token}`) {
        res.setHeader('WWW-Authenticate', 'Bearer');
        return send(res, 401, { error: { code: 'unauthorized', message: 'missing or wrong bearer token' } });
      }
    } else {
      const h = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
      if (!isLoopbackHost(h)) return send(res, 403, { error: { code: 'forbidden-host', message: `Host ${JSON.stringify(h)} is not a loopback name` } });
    }
    const routes: Record<string, string> = {
      '/v1': 'GET',
      '/v1/status': 'GET',
      '/v1/events': 'GET',
      '/v1/set': 'POST',
      '/v1/cut': 'POST',
      '/v1/restore': 'POST',
      [METRICS_PATH]: 'GET',
    };
    const method = routes[url.pathname];
    if (!method) return send(res, 404, { error: { code: 'unknown-route', message: `no route ${url.pathname}` } });
    if (req.method !== method) {
      res.setHeader('Allow', method);
      return send(res, 405, { error: { code: 'method-not-allowed', message: `${url.pathname} takes ${method}` } });
    }
    // Before anything is read or changed: what a web page could send is refused.
    const refused = checkBrowserSafety(req, this.opts.allowedOrigins);
    if (refused) return send(res, refused.status, { error: { code: refused.code, message: refused.message } });
    if (url.pathname === '/v1') return send(res, 200, { link: emu.name, routes: Object.entries(routes).map(([p, m]) => `${m} ${p}`) });
    if (url.pathname === '/v1/status') return send(res, 200, emu.status());
    if (url.pathname === METRICS_PATH) return sendMetrics(res, linkMetrics(emu.status()));
    if (url.pathname === '/v1/events') {
      const last = Number(url.searchParams.get('since') ?? req.headers['last-event-id'] ?? NaN);
      if ((req.headers.accept ?? '').includes('application/json')) {
        // The kept events as one JSON document (what `sanbox link status` shows).
        const since = Number.isFinite(last) && last <= emu.status().lastEventSeq ? last : 0;
        return send(res, 200, { events: emu.eventsSince(since) });
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      res.write(': link events\n\n');
      if (Number.isFinite(last)) {
        const since = last > emu.status().lastEventSeq ? 0 : last;
        for (const ev of emu.eventsSince(since)) res.write(sseFrame(ev));
      }
      this.sse.add(res);
      req.on('close', () => this.sse.delete(res));
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = await readJson(req);
    } catch (e) {
      const err = e as { status: number; code: string; message: string };
      return send(res, err.status ?? 400, { error: { code: err.code ?? 'invalid-json', message: err.message } });
    }
    try {
      if (url.pathname === '/v1/set') return send(res, 200, { events: applySet(emu, body), status: emu.status() });
      if (url.pathname === '/v1/cut') {
        known(body, ['direction', 'reset']);
        const direction = checkDirection(body.direction ?? 'both');
        if (body.reset !== undefined && typeof body.reset !== 'boolean') throw new LinkError('invalid-argument', 'reset must be true or false');
        return send(res, 200, { events: [emu.cutLink(direction, { reset: body.reset === true })], status: emu.status() });
      }
      known(body, []);
      return send(res, 200, { events: [emu.restore()], status: emu.status() });
    } catch (e) {
      if (e instanceof LinkError) return send(res, 400, { error: { code: e.code, message: e.message } });
      throw e;
    }
  }
}

function known(body: Record<string, unknown>, keys: string[]): void {
  for (const k of Object.keys(body)) {
    if (!keys.includes(k)) throw new LinkError('invalid-argument', `unknown field ${JSON.stringify(k)}${keys.length ? ` (expected ${keys.join(', ')})` : ''}`);
  }
}

/** `POST /v1/set`: validates everything, then applies settings, stall and reset in that order. */
export function applySet(emu: LinkEmulator, body: Record<string, unknown>): LinkEvent[] {
  known(body, ['direction', ...SETTING_NAMES, 'stallMs', 'reset']);
  const direction = checkDirection(body.direction ?? 'both');
  const { direction: _d, stallMs, reset, ...rest } = body;
  const settings = checkSettings(rest);
  if (stallMs !== undefined) checkSettings({ latencyMs: stallMs }); // same range as a delay
  if (reset !== undefined && typeof reset !== 'boolean') throw new LinkError('invalid-argument', 'reset must be true or false');
  if (Object.keys(settings).length === 0 && stallMs === undefined && reset !== true) {
    throw new LinkError('invalid-argument', `nothing to set: give ${SETTING_NAMES.join(', ')}, stallMs or reset`);
  }
  const events: LinkEvent[] = [];
  if (Object.keys(settings).length) events.push(emu.set(settings, direction));
  if (stallMs !== undefined) events.push(emu.stall(stallMs as number, direction));
  if (reset === true) events.push(emu.reset());
  return events;
}

function sseFrame(ev: LinkEvent): string {
  return `id: ${ev.seq}\nevent: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return void res.end();
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > 65536) throw { status: 413, code: 'payload-too-large', message: 'body over 64 KiB' };
    chunks.push(c as Buffer);
  }
  if (n === 0) return {};
  const ct = req.headers['content-type'] ?? '';
  if (!ct.startsWith('application/json')) throw { status: 415, code: 'unsupported-media-type', message: 'body must be application/json' };
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw { status: 400, code: 'invalid-json', message: `invalid JSON: ${(e as Error).message}` };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw { status: 400, code: 'invalid-json', message: 'body must be a JSON object' };
  return v as Record<string, unknown>;
}
