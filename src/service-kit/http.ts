/**
 * A control-plane service's HTTP side: its event stream as server-sent events (GET /v1/events,
 * like the arrays', with replay from Last-Event-ID or ?since=), its own GET routes (status and
 * the like), optional POST routes taking a JSON body, and GET /metrics (Prometheus text). Off
 * loopback a bearer token is required. A request from a web page of a foreign Origin is refused
 * (403 forbidden-origin, src/http-guard), reads included: this server has no Host check of its own.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { checkBrowserSafety } from '../http-guard/index.js';
import type { ServiceEvent, ServiceEvents } from './events.js';
import { METRICS_PATH, sendMetrics, type MetricsBuilder } from '../metrics/index.js';

const HEARTBEAT_MS = 15_000;
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** A POST handler: the parsed JSON body in, the reply's status and body out (throw HttpRefusal to refuse). */
export type PostHandler = (body: unknown) => Promise<{ status: number; body: unknown }> | { status: number; body: unknown };

/** A refusal with an HTTP status and a stable code, thrown by a POST handler. */
export class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Request bodies larger than this are refused (413). */
const MAX_BODY_BYTES = 64 * 1024;

export interface HttpOptions {
  /** The service's name in messages (`monitor`, `heartbeat agent`). */
  service: string;
  host: string;
  port: number;
  token?: string;
  events: ServiceEvents;
  /** GET routes other than /v1/events and /metrics: path → the JSON body. */
  get: Record<string, () => unknown>;
  /** POST routes: path → handler; absent: the API is read-only and says where changes go. */
  post?: Record<string, PostHandler>;
  /** What a refused non-GET request is told (a read-only API). */
  readOnlyHint?: string;
  /** GET /metrics (absent: 404 like any unknown route). */
  metrics?(): MetricsBuilder;
  /** Web origins whose pages may read this API besides its own; default none. */
  allowedOrigins?: string[];
}

export class ServiceHttp {
  private server: Server | undefined;
  private readonly open = new Set<ServerResponse>();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly opts: HttpOptions) {
    if (!LOOPBACK.test(opts.host) && !(opts.token && opts.token.length >= 16)) throw new Error(`the ${opts.service}'s HTTP listener on ${opts.host} needs a token of 16 characters or more`);
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
    // a foreign page is refused everywhere; a POST must also be one no page can send without a preflight (415)
    if (refused && (refused.code === 'forbidden-origin' || (req.method === 'POST' && this.opts.post))) return json(res, refused.status, { error: { code: refused.code, message: refused.message } });
    if (req.method === 'POST' && this.opts.post) return this.post(req, res, url);
    if (req.method !== 'GET') return json(res, 405, { error: { code: 'method-not-allowed', message: `the ${this.opts.service} API takes GET${this.opts.post ? ' and POST' : ''} only${this.opts.readOnlyHint ? `; ${this.opts.readOnlyHint}` : ''}` } });
    const route = this.opts.get[url.pathname];
    if (route) return json(res, 200, route());
    if (url.pathname === '/v1/events') return this.stream(req, res, url);
    if (url.pathname === METRICS_PATH && this.opts.metrics) {
      sendMetrics(res, this.opts.metrics()).catch((e: unknown) => json(res, 500, { error: { code: 'internal', message: (e as Error).message } }));
      return;
    }
    json(res, 404, { error: { code: 'not-found', message: `no route ${url.pathname}` } });
  }

  private post(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const handler = this.opts.post![url.pathname];
    if (!handler) return json(res, 404, { error: { code: 'not-found', message: `no route POST ${url.pathname}` } });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return json(res, 413, { error: { code: 'too-large', message: `a request body is at most ${MAX_BODY_BYTES} bytes` } });
      let body: unknown;
      try {
        body = size ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
      } catch (e) {
        return json(res, 400, { error: { code: 'invalid-argument', message: `the body is not JSON: ${(e as Error).message}` } });
      }
      Promise.resolve()
        .then(() => handler(body))
        .then(
          (r) => json(res, r.status, r.body),
          (e: unknown) => (e instanceof HttpRefusal ? json(res, e.status, { error: { code: e.code, message: e.message } }) : json(res, 500, { error: { code: 'internal', message: (e as Error).message } })),
        );
    });
  }

  private stream(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const raw = (req.headers['last-event-id'] as string | undefined) ?? url.searchParams.get('since');
    if (raw != null && !/^\d{1,15}$/.test(raw)) return json(res, 400, { error: { code: 'invalid-argument', message: `bad event id ${JSON.stringify(raw)}` } });
    // The kept events as one document, as the arrays and link emulators answer it.
    if ((req.headers.accept ?? '').includes('application/json')) return json(res, 200, { events: this.opts.events.since(Number(raw ?? 0)) });
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const write = (e: ServiceEvent) => res.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
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
