/**
 * The monitor's HTTP side, read-only: its event stream as server-sent events (GET /v1/events,
 * like the arrays', with replay from Last-Event-ID or ?since=), GET /v1/resources and GET
 * /v1/status, and GET /metrics (Prometheus text, ./metrics.ts). Off loopback a bearer token is required. Changes go through the socket protocol.
 * A request from a web page of a foreign Origin is refused (403 forbidden-origin, src/http-guard),
 * reads included: this server has no Host check of its own.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { checkBrowserSafety } from '../http-guard/index.js';
import type { MonitorEvent, MonitorEvents } from './events.js';
import { METRICS_PATH, sendMetrics, type MetricsBuilder } from '../metrics/index.js';

const HEARTBEAT_MS = 15_000;
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export interface HttpOptions {
  host: string;
  port: number;
  token?: string;
  events: MonitorEvents;
  status(): unknown;
  resources(): unknown;
  /** GET /metrics (absent: 404 like any unknown route). */
  metrics?(): MetricsBuilder;
  /** Web origins whose pages may read this API besides its own; default none. */
  allowedOrigins?: string[];
}

export class MonitorHttp {
  private server: Server | undefined;
  private readonly open = new Set<ServerResponse>();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly opts: HttpOptions) {
    if (!LOOPBACK.test(opts.host) && !(opts.token && opts.token.length >= 16)) throw new Error(`the monitor's HTTP listener on ${opts.host} needs a token of 16 characters or more`);
  }

  async start(): Promise<number> {
    this.server = createServer((req, res) => this.serve(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.heartbeat = setInterval(() => {
      for (const r of this.open) r.write(': ping\n\n');
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    return (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const r of this.open) r.end();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://monitor');
    if (!this.authorized(req)) return json(res, 401, { error: { code: 'unauthorized', message: 'a bearer token is required' } });
    const refused = checkBrowserSafety(req, this.opts.allowedOrigins, { readsToo: true });
    if (refused?.code === 'forbidden-origin') return json(res, refused.status, { error: { code: refused.code, message: refused.message } });
    if (req.method !== 'GET') return json(res, 405, { error: { code: 'method-not-allowed', message: 'the monitor API is read-only; use prmd/chkmon or sanbox monitor' } });
    if (url.pathname === '/v1/status') return json(res, 200, this.opts.status());
    if (url.pathname === '/v1/resources') return json(res, 200, { resources: this.opts.resources() });
    if (url.pathname === '/v1/events') return this.stream(req, res, url);
    if (url.pathname === METRICS_PATH && this.opts.metrics) {
      sendMetrics(res, this.opts.metrics()).catch((e: unknown) => json(res, 500, { error: { code: 'internal', message: (e as Error).message } }));
      return;
    }
    json(res, 404, { error: { code: 'not-found', message: `no route ${url.pathname}` } });
  }

  private stream(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const raw = (req.headers['last-event-id'] as string | undefined) ?? url.searchParams.get('since');
    if (raw != null && !/^\d{1,15}$/.test(raw)) return json(res, 400, { error: { code: 'invalid-argument', message: `bad event id ${JSON.stringify(raw)}` } });
    // The kept events as one document, as the arrays and link emulators answer it.
    if ((req.headers.accept ?? '').includes('application/json')) return json(res, 200, { events: this.opts.events.since(Number(raw ?? 0)) });
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const write = (e: MonitorEvent) => res.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    if (raw != null) for (const e of this.opts.events.since(Number(raw))) write(e);
    const stop = this.opts.events.subscribe(write);
    this.open.add(res);
    req.socket.setTimeout(0);
    res.on('close', () => {
      stop();
      this.open.delete(res);
    });
  }

  private authorized(req: IncomingMessage): boolean {
    const want = this.opts.token;
    if (!want) return true;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const got = Buffer.from(m?.[1] ?? '');
    return got.length === Buffer.byteLength(want) && timingSafeEqual(got, Buffer.from(want));
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
