/**
 * The management API of one array: HTTP + JSON, version-prefixed routes, errors as
 * `{"error": {"code", "message"}}`, and a server-sent-event stream of every state change.
 *
 * Security: listens on 127.0.0.1 by default. Any other address needs a bearer token
 * (`Authorization: Bearer <token>`), and the server refuses to start without one. Without a token
 * on loopback, requests whose Host header is not a loopback name are refused (DNS rebinding), and
 * bodies must be JSON (so a browser cannot post a simple cross-site form).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP, type AddressInfo, type Socket } from 'node:net';
import {
  ArrayError,
  checkName,
  parseSize,
  type ArrayEvent,
  type LunInfo,
  type StorageArray,
} from '../array/index.js';
import type { AddSecondaryParams, ChangeAttributesParams, CreateMirrorParams, MirrorControl } from '../replication/mirror/types.js';
import type { GroupControl } from '../replication/group/index.js';
import { attributeProblems, parseThrottles, withDefaults, type GroupAttributes, type GroupMode, type NearSyncBounds } from '../replication/group/index.js';

export const API_VERSION = 'v1';
/** Largest request body accepted. */
export const MAX_BODY = 64 * 1024;
const HEARTBEAT_MS = 15_000;

export interface NbdEndpoint {
  host: string;
  port: number;
}

export interface ControlServerOptions {
  array: StorageArray;
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Port; default 0 (ephemeral). */
  port?: number;
  /** Bearer token; required for any non-loopback address. */
  token?: string;
  /** The NBD listeners of the array, for URIs in status. */
  nbd?: () => NbdEndpoint[];
  /** Extra fields merged into /v1/status (version, pid...). */
  info?: () => Record<string, unknown>;
  /** Called by POST /v1/shutdown (route absent when not given). */
  onShutdown?: () => void;
  /** A two-SP array's chassis: SP status, faults, trespass, recover (routes absent without). */
  chassis?: ChassisControl;
  /** The array's mirror driver (routes under /v1/mirrors answer 404 no-mirror-driver without). */
  mirrors?: MirrorControl;
  /**
   * The driver's consistency groups (routes under /v1/groups; 404 no-mirror-driver without).
   * Default: `mirrors.groups` when the mirror driver has them (MirrorNode does).
   */
  groups?: GroupControl;
}

/** What the API needs from a two-SP array's chassis (src/array/chassis satisfies it). */
export interface ChassisControl {
  status(): Promise<Record<string, unknown>>;
  lunView(id: number): Record<string, unknown>;
  spCrash(sp: string): Promise<unknown>;
  spRestart(sp: string): Promise<unknown>;
  powerFail(): Promise<unknown>;
  powerRestore(): Promise<unknown>;
  batteryFail(undetected: boolean): Promise<unknown>;
  batteryRepair(): Promise<unknown>;
  batteryCharge(charge: number): Promise<unknown>;
  trespass(ref: string, to?: string): Promise<unknown>;
  recover(ref: string, acceptDataLoss: boolean): Promise<unknown>;
}

/** LUN as the API shows it. */
export interface LunView {
  id: number;
  name: string;
  /** NBD export name (the LUN name). */
  export: string;
  /** One NBD URI per NBD listener. */
  uris: string[];
  size: number;
  blockSize: number;
  /** Absolute path of the image file. */
  image: string;
  state: LunInfo['state'] | 'cache-dirty';
  problem?: string;
  /** Two-SP arrays: default and current owner SP, cache-dirty flag and reason. */
  defaultOwner?: string | null;
  currentOwner?: string | null;
  cacheDirty?: boolean;
  cacheDirtyReason?: string;
  /** Two-SP arrays: one entry per SP port; `optimized` on the owner's. */
  paths?: { sp: string; uri: string; optimized: boolean }[];
  readOnly: boolean;
  sessions: number;
  created: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '' || host === '[::]';
}

/** `host:port` with IPv6 brackets. */
export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export function nbdUri(host: string, port: number, exportName: string): string {
  return `nbd://${hostPort(host, port)}/${encodeURIComponent(exportName)}`;
}

const ARRAY_ERROR_STATUS: Record<string, number> = {
  'invalid-argument': 400,
  'not-found': 404,
  exists: 409,
  busy: 409,
  'read-only': 409,
  closed: 503,
};

type Handler = (req: IncomingMessage, res: ServerResponse, params: string[], url: URL) => Promise<unknown> | unknown;
interface Route {
  pattern: RegExp;
  methods: Record<string, Handler>;
}

export class ControlServer {
  private readonly opts: ControlServerOptions;
  private readonly host: string;
  private readonly server: Server;
  private readonly routes: Route[];
  private readonly streams = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();
  private readonly tokenDigest: Buffer | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private eventListener: ((e: ArrayEvent) => void) | undefined;
  private bound: { address: string; port: number; url: string } | undefined;

  constructor(opts: ControlServerOptions) {
    this.opts = opts;
    this.host = opts.host ?? '127.0.0.1';
    if (opts.token !== undefined && opts.token.length < 8) {
      throw new ApiError(0, 'invalid-argument', 'the API token must be at least 8 characters');
    }
    if (!isLoopback(this.host) && !opts.token) {
      throw new ApiError(
        0,
        'token-required',
        `refusing to serve the management API on non-loopback address ${this.host} without a token (give --api-token or SANBOX_TOKEN)`,
      );
    }
    this.tokenDigest = opts.token ? digest(opts.token) : undefined;
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    const a = opts.array;
    const R = (pattern: RegExp, methods: Record<string, Handler>): Route => ({ pattern, methods });
    this.routes = [
      R(/^\/$/, { GET: () => ({ api: 'sanbox', versions: [API_VERSION], status: `/${API_VERSION}/status` }) }),
      R(/^\/v1\/?$/, { GET: () => ({ api: 'sanbox', version: API_VERSION, routes: ROUTE_LIST }) }),
      R(/^\/v1\/status$/, { GET: (req) => this.status(req) }),
      R(/^\/v1\/luns$/, {
        GET: (req) => ({ luns: a.listLuns().map((l) => this.view(l, req)) }),
        POST: async (req, res) => {
          const body = await readJson(req);
          const { name, size, blockSize } = checkBody(body, { name: 'string', size: 'size', blockSize: 'number?' });
          const lun = await a.createLun({ name: name as string, size: size as number, blockSize: blockSize as number | undefined });
          res.statusCode = 201;
          res.setHeader('Location', `/${API_VERSION}/luns/${lun.id}`);
          return { lun: this.view(lun, req) };
        },
      }),
      R(/^\/v1\/luns\/([^/]+)$/, {
        GET: (req, _res, [ref]) => {
          const lun = a.getLun(ref!);
          if (!lun) throw new ApiError(404, 'not-found', `no LUN ${JSON.stringify(ref)} in array ${a.name}`);
          return { lun: this.view(lun, req) };
        },
        DELETE: async (req, _res, [ref], url) => {
          const force = parseBool(url.searchParams.get('force'), 'force');
          await drain(req);
          const lun = await a.deleteLun(ref!, { force });
          return { deleted: this.view(lun, req) };
        },
      }),
      R(/^\/v1\/luns\/([^/]+)\/grow$/, {
        POST: async (req, _res, [ref]) => {
          const body = await readJson(req);
          const { size } = checkBody(body, { size: 'size' });
          const lun = await a.growLun(ref!, size as number);
          return { lun: this.view(lun, req) };
        },
      }),
      R(/^\/v1\/events$/, { GET: (req, res, _p, url) => this.events(req, res, url) }),
    ];
    const ch = opts.chassis;
    if (ch) {
      const body = async (req: IncomingMessage, fields: Record<string, FieldKind>) => checkBody(await readOptionalJson(req), fields);
      this.routes.unshift(
        R(/^\/v1\/sps$/, { GET: async () => ({ sps: (await ch.status()).sps }) }),
        R(/^\/v1\/faults\/sp-crash$/, { POST: async (req) => ch.spCrash((await body(req, { sp: 'string' })).sp as string) }),
        R(/^\/v1\/faults\/sp-restart$/, { POST: async (req) => ch.spRestart((await body(req, { sp: 'string' })).sp as string) }),
        R(/^\/v1\/faults\/power-fail$/, { POST: async (req) => (await body(req, {}), ch.powerFail()) }),
        R(/^\/v1\/faults\/power-restore$/, { POST: async (req) => (await body(req, {}), ch.powerRestore()) }),
        R(/^\/v1\/faults\/battery-fail$/, { POST: async (req) => ch.batteryFail((await body(req, { undetected: 'boolean?' })).undetected === true) }),
        R(/^\/v1\/faults\/battery-repair$/, { POST: async (req) => (await body(req, {}), ch.batteryRepair()) }),
        R(/^\/v1\/battery$/, { POST: async (req) => ch.batteryCharge((await body(req, { charge: 'number' })).charge as number) }),
        R(/^\/v1\/luns\/([^/]+)\/trespass$/, { POST: async (req, _res, [ref]) => ch.trespass(ref!, (await body(req, { to: 'string?' })).to as string | undefined) }),
        R(/^\/v1\/luns\/([^/]+)\/recover$/, { POST: async (req, _res, [ref]) => ch.recover(ref!, (await body(req, { acceptDataLoss: 'boolean?' })).acceptDataLoss === true) }),
      );
    }
    this.routes.unshift(...mirrorRoutes(opts.mirrors));
    this.routes.unshift(...groupRoutes(opts.groups ?? (opts.mirrors as { groups?: GroupControl } | undefined)?.groups));
    if (opts.onShutdown) {
      const onShutdown = opts.onShutdown;
      this.routes.push(
        R(/^\/v1\/shutdown$/, {
          POST: async (req) => {
            await drain(req);
            setImmediate(onShutdown);
            return { shuttingDown: true };
          },
        }),
      );
    }
  }

  /** Starts listening; resolves with the bound address and the base URL. */
  async listen(): Promise<{ address: string; port: number; url: string }> {
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.server.once('error', onError);
      this.server.listen(this.opts.port ?? 0, this.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const addr = this.server.address() as AddressInfo;
    const urlHost = isWildcard(addr.address) ? '127.0.0.1' : addr.address;
    this.bound = { address: addr.address, port: addr.port, url: `http://${hostPort(urlHost, addr.port)}` };
    this.eventListener = (e: ArrayEvent) => {
      for (const res of this.streams) writeEvent(res, e);
    };
    this.opts.array.on('event', this.eventListener);
    this.heartbeat = setInterval(() => {
      for (const res of this.streams) res.write(': ping\n\n');
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    return this.bound;
  }

  get address(): { address: string; port: number; url: string } | undefined {
    return this.bound;
  }

  /** Ends event streams, stops listening and closes idle connections. */
  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.eventListener) this.opts.array.off('event', this.eventListener);
    for (const res of this.streams) {
      res.end();
      res.socket?.destroySoon();
    }
    this.streams.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    // Requests still running get a moment to answer; then their connections are cut.
    const t = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, 500);
    await closed;
    clearTimeout(t);
  }

  // ---- views ----

  private uriHosts(req: IncomingMessage): NbdEndpoint[] {
    const eps = this.opts.nbd?.() ?? [];
    return eps.map((ep) => {
      if (!isWildcard(ep.host)) return ep;
      // A wildcard listener is reachable at the address the client used to reach us.
      let host = '127.0.0.1';
      try {
        const h = new URL(`http://${req.headers.host ?? ''}`).hostname.replace(/^\[|\]$/g, '');
        if (h && !isWildcard(h)) host = h;
      } catch {
        /* keep loopback */
      }
      return { host, port: ep.port };
    });
  }

  private view(l: LunInfo, req: IncomingMessage): LunView {
    const eps = l.state === 'online' ? this.uriHosts(req) : [];
    const ch = this.opts.chassis;
    if (ch) {
      const x = ch.lunView(l.id);
      const sps = this.opts.nbd?.() ?? [];
      return {
        ...this.baseView(l, eps),
        ...x,
        state: x.cacheDirty ? 'cache-dirty' : l.state,
        paths: eps.map((ep, i) => {
          const sp = (sps[i] as { sp?: string } | undefined)?.sp ?? String(i);
          return { sp, uri: nbdUri(ep.host, ep.port, l.name), optimized: sp === x.currentOwner };
        }),
      } as LunView;
    }
    return this.baseView(l, eps);
  }

  private baseView(l: LunInfo, eps: NbdEndpoint[]): LunView {
    return {
      id: l.id,
      name: l.name,
      export: l.name,
      uris: eps.map((ep) => nbdUri(ep.host, ep.port, l.name)),
      size: l.size,
      blockSize: l.blockSize,
      image: l.imagePath,
      state: l.state,
      ...(l.problem ? { problem: l.problem } : {}),
      readOnly: l.readOnly,
      sessions: l.sessions,
      created: l.created,
    };
  }

  private async status(req: IncomingMessage): Promise<Record<string, unknown>> {
    const a = this.opts.array;
    const chassis = this.opts.chassis ? await this.opts.chassis.status() : {};
    return {
      ...(this.opts.info?.() ?? {}),
      array: a.name,
      dir: a.dir,
      readOnly: a.readOnly,
      metadata: { generation: a.metadataGeneration, copies: ['meta.A', 'meta.B'] },
      nbd: this.uriHosts(req).map((ep, i) => ({ ...ep, bind: this.opts.nbd?.()[i]?.host })),
      api: { url: this.bound?.url, tokenRequired: this.tokenDigest !== undefined },
      luns: a.listLuns().map((l) => this.view(l, req)),
      problems: [...a.openProblems],
      ...chassis,
      lastEventSeq: a.lastSeq,
    };
  }

  private events(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const a = this.opts.array;
    const lastId = req.headers['last-event-id'];
    const since = url.searchParams.get('since');
    let after: number | undefined;
    const raw = typeof lastId === 'string' ? lastId : since;
    if (raw !== null && raw !== undefined) {
      if (!/^\d{1,15}$/.test(raw.trim())) throw new ApiError(400, 'invalid-argument', `bad event id ${JSON.stringify(raw)}`);
      after = Number(raw.trim());
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    if (after !== undefined) for (const e of a.eventsSince(after)) writeEvent(res, e);
    this.streams.add(res);
    req.socket.setTimeout(0);
    const done = () => this.streams.delete(res);
    res.on('close', done);
    req.on('close', done);
  }

  // ---- dispatch ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      this.authorize(req);
      const url = new URL(req.url ?? '/', 'http://localhost');
      const route = this.routes.find((r) => r.pattern.test(url.pathname));
      if (!route) throw new ApiError(404, 'unknown-route', `no route ${url.pathname}; see GET /${API_VERSION}`);
      const method = (req.method ?? 'GET').toUpperCase();
      const handler = route.methods[method];
      if (!handler) {
        const allow = Object.keys(route.methods).join(', ');
        throw new ApiError(405, 'method-not-allowed', `${method} is not allowed on ${url.pathname} (allowed: ${allow})`, { Allow: allow });
      }
      const params = route.pattern.exec(url.pathname)!.slice(1).map((p) => decodeURIComponent(p));
      const result = await handler(req, res, params, url);
      if (res.headersSent) return; // streams answer by themselves
      sendJson(res, res.statusCode === 200 ? 200 : res.statusCode, result);
    } catch (e) {
      this.fail(req, res, e);
    }
  }

  private authorize(req: IncomingMessage): void {
    if (this.tokenDigest) {
      const auth = req.headers.authorization ?? '';
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (!m || !timingSafeEqual(digest(m[1]!), this.tokenDigest)) {
        throw new ApiError(401, 'unauthorized', m ? 'wrong API token' : 'this API needs "Authorization: Bearer <token>"', {
          'WWW-Authenticate': 'Bearer realm="sanbox"',
        });
      }
      return;
    }
    // Tokenless loopback API: only loopback host names (stops DNS rebinding from a browser).
    let hostname = '';
    try {
      hostname = new URL(`http://${req.headers.host ?? ''}`).hostname;
    } catch {
      /* empty */
    }
    if (!isLoopback(hostname)) {
      throw new ApiError(403, 'forbidden-host', `Host ${JSON.stringify(req.headers.host ?? '')} is not a loopback name; use 127.0.0.1 or a token`);
    }
  }

  private fail(req: IncomingMessage, res: ServerResponse, e: unknown): void {
    let status = 500;
    let code = 'internal';
    let message = e instanceof Error ? e.message : String(e);
    let headers: Record<string, string> = {};
    if (e instanceof ApiError) {
      status = e.status;
      code = e.code;
      headers = e.headers;
    } else if (e instanceof ArrayError) {
      status = ARRAY_ERROR_STATUS[e.code] ?? 500;
      code = e.code;
    } else if (e instanceof Error && typeof (e as { httpStatus?: unknown }).httpStatus === 'number') {
      status = (e as unknown as { httpStatus: number }).httpStatus;
      code = String((e as unknown as { code?: string }).code ?? 'error');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    // An unread body would otherwise be left on the connection; close it after replying.
    if (!req.complete) res.setHeader('Connection', 'close');
    sendJson(res, status, { error: { code, message } });
  }
}

const ROUTE_LIST = [
  'GET /v1/groups | POST /v1/groups {name, members: [mirror...], attributes?: {mode, nearSync, writelog, throttles, throttleEveryMs, perfEveryMs, perfMaxBytes}}',
  'GET /v1/groups/:ref | PATCH /v1/groups/:ref {throttles?, throttleEveryMs?, perfEveryMs?, perfMaxBytes?, nearSync?} | DELETE /v1/groups/:ref',
  'GET /v1/groups/:ref/info (qdsinfo: {text, view})',
  'POST /v1/groups/:ref/mode {mode, nearSync?} | pause | resume | bypass {on} | refresh | backfresh {from?} | promote {force?}',
  'GET /v1/mirrors | POST /v1/mirrors {lun, name?, regionSize?, attributes?}',
  'GET /v1/mirrors/:ref | PATCH /v1/mirrors/:ref {attributes, or image + recoveryPolicy/imageSyncRate} | DELETE /v1/mirrors/:ref',
  'POST /v1/mirrors/:ref/secondaries {array, lun, synchronized?, recoveryPolicy?, syncRate?}',
  'DELETE /v1/mirrors/:ref/secondaries/:image[?force=true]',
  'POST /v1/mirrors/:ref/promote {force?} | synchronize {image?, force?} | fracture {image?} | activate | deactivate {force?}',
  'POST /v1/mirrors/:ref/verify {image?} | resolve {survivor}',
  'GET /v1/sps (two-SP arrays)',
  'POST /v1/faults/sp-crash {sp} | sp-restart {sp} | power-fail | power-restore | battery-fail {undetected?} | battery-repair',
  'POST /v1/battery {charge}',
  'POST /v1/luns/:id|name/trespass {to?}',
  'POST /v1/luns/:id|name/recover {acceptDataLoss: true}',
  'GET /v1/status',
  'GET /v1/luns',
  'POST /v1/luns {name, size, blockSize?}',
  'GET /v1/luns/:id|name',
  'DELETE /v1/luns/:id|name[?force=true]',
  'POST /v1/luns/:id|name/grow {size}',
  'GET /v1/events (text/event-stream; Last-Event-ID or ?since=SEQ replays)',
];

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function writeEvent(res: ServerResponse, e: ArrayEvent): void {
  res.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
}

function parseBool(v: string | null, what: string): boolean {
  if (v === null || v === '' || v === 'false' || v === '0') return v === '' ? true : false;
  if (v === 'true' || v === '1') return true;
  throw new ApiError(400, 'invalid-argument', `${what} must be true or false, not ${JSON.stringify(v)}`);
}

async function drain(req: IncomingMessage): Promise<void> {
  let n = 0;
  for await (const chunk of req) {
    n += (chunk as Buffer).length;
    if (n > MAX_BODY) throw new ApiError(413, 'payload-too-large', `request body over ${MAX_BODY} bytes`);
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/([\w.+-]*\+)?json\b/i.test(type)) {
    throw new ApiError(415, 'unsupported-media-type', `request body must be application/json, not ${type}`);
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_BODY) {
    throw new ApiError(413, 'payload-too-large', `request body over ${MAX_BODY} bytes`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of req) {
    n += (chunk as Buffer).length;
    if (n > MAX_BODY) throw new ApiError(413, 'payload-too-large', `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new ApiError(400, 'invalid-json', 'request body is empty; expected a JSON object');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, 'invalid-json', `request body is not valid JSON: ${(e as Error).message}`);
  }
}

type FieldKind = 'string' | 'string?' | 'size' | 'number' | 'number?' | 'boolean?';

async function readOptionalJson(req: IncomingMessage): Promise<unknown> {
  if (req.headers['content-length'] === '0' || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined)) {
    await drain(req);
    return {};
  }
  return readJson(req);
}

/** Checks a JSON object's fields: unknown keys, missing keys and wrong types are 400s. */
function checkBody(body: unknown, fields: Record<string, FieldKind>): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError(400, 'invalid-argument', 'request body must be a JSON object');
  }
  const obj = body as Record<string, unknown>;
  const unknown = Object.keys(obj).filter((k) => !(k in fields));
  if (unknown.length) {
    throw new ApiError(400, 'invalid-argument', `unknown field(s) ${unknown.join(', ')}; expected ${Object.keys(fields).join(', ')}`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, kind] of Object.entries(fields)) {
    const v = obj[k];
    if (v === undefined) {
      if (kind.endsWith('?')) continue;
      throw new ApiError(400, 'invalid-argument', `missing field ${k}`);
    }
    if (kind === 'string' || kind === 'string?') {
      if (typeof v !== 'string') throw new ApiError(400, 'invalid-argument', `${k} must be a string`);
      out[k] = v;
    } else if (kind === 'boolean?') {
      if (typeof v !== 'boolean') throw new ApiError(400, 'invalid-argument', `${k} must be true or false`);
      out[k] = v;
    } else if (kind === 'size') {
      const n = typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined;
      if (n === undefined) {
        throw new ApiError(400, 'invalid-argument', `${k} must be a byte count or a size like "256M" or "1G", not ${JSON.stringify(v)}`);
      }
      out[k] = n;
    } else {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new ApiError(400, 'invalid-argument', `${k} must be an integer`);
      out[k] = v;
    }
  }
  return out;
}

// ---- mirrors ----

/** A field validator: returns the value to pass on, or throws a 400. */
type Check = (v: unknown, key: string) => unknown;

const invalid = (message: string) => new ApiError(400, 'invalid-argument', message);

const MIN_REGION = 4096;
const MAX_REGION = 64 * 1024 * 1024;

/** Parses a rate in bytes per second: a positive integer, or a size string with an optional `/s`. */
function rateValue(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const n = parseSize(v.replace(/(B)?\/s$/i, ''));
  return n !== undefined && n > 0 ? n : undefined;
}

const C = {
  string: ((v, k) => {
    if (typeof v !== 'string' || v === '' || v.length > 256) throw invalid(`${k} must be a non-empty string`);
    return v;
  }) as Check,
  lunRef: ((v, k) => {
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
    if (typeof v === 'string' && v !== '' && v.length <= 64) return v;
    throw invalid(`${k} must be a LUN id (integer >= 0) or a LUN name`);
  }) as Check,
  boolean: ((v, k) => {
    if (typeof v !== 'boolean') throw invalid(`${k} must be true or false`);
    return v;
  }) as Check,
  oneOf:
    (...values: string[]): Check =>
    (v, k) => {
      if (typeof v !== 'string' || !values.includes(v)) throw invalid(`${k} must be one of ${values.join(', ')}, not ${JSON.stringify(v)}`);
      return v;
    },
  /** -1 (disabled) or a count. */
  limit: ((v, k) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < -1) throw invalid(`${k} must be an integer >= -1 (-1: no limit), not ${JSON.stringify(v)}`);
    return v;
  }) as Check,
  size: ((v, k) => {
    const n = typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined;
    if (n === undefined) throw invalid(`${k} must be a byte count or a size like "64K", not ${JSON.stringify(v)}`);
    return n;
  }) as Check,
  regionSize: ((v, k) => {
    const n = typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined;
    if (n === undefined || n < MIN_REGION || n > MAX_REGION || (n & (n - 1)) !== 0) {
      throw invalid(`${k} must be a power of two from 4K to 64M (e.g. "64K" or 65536), not ${JSON.stringify(v)}`);
    }
    return n;
  }) as Check,
  rate: ((v, k) => {
    const n = rateValue(v);
    if (n === undefined) throw invalid(`${k} must be a positive rate in bytes per second (e.g. 67108864 or "64M"), not ${JSON.stringify(v)}`);
    return n;
  }) as Check,
  /** A rate, or null: use the mirror's. */
  rateOrNull: ((v, k) => (v === null ? null : C.rate(v, k))) as Check,
};

const ATTRIBUTE_FIELDS: Record<string, Check> = {
  activationPolicy: C.oneOf('automatic', 'manual'),
  minImagesRequired: C.limit,
  maxMissingImages: C.limit,
  writePolicy: C.oneOf('synchronous', 'asynchronous', 'near-synchronous'),
  writeBacklogSize: C.size,
  syncPriority: C.oneOf('low', 'medium', 'high'),
  syncRate: C.rate,
  allowSecondaryReads: C.boolean,
};

/**
 * Validates a JSON object against `fields` (names ending in `?` are optional): unknown keys,
 * missing keys and bad values are 400 invalid-argument, and nothing is called.
 */
function checkFields(body: unknown, fields: Record<string, Check>, where = 'request body'): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid(`${where} must be a JSON object`);
  const obj = body as Record<string, unknown>;
  const spec = new Map(Object.entries(fields).map(([k, c]) => [k.replace(/\?$/, ''), { check: c, optional: k.endsWith('?') }]));
  const unknown = Object.keys(obj).filter((k) => !spec.has(k));
  if (unknown.length) {
    const expected = spec.size ? `expected ${[...spec.keys()].join(', ')}` : 'expected none (send {} or no body)';
    throw invalid(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}${where === 'request body' ? '' : ` in ${where}`}; ${expected}`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, { check, optional }] of spec) {
    const v = obj[k];
    if (v === undefined) {
      if (optional) continue;
      throw invalid(`missing field ${k} in ${where}`);
    }
    out[k] = check(v, where === 'request body' ? k : `${where}.${k}`);
  }
  return out;
}

const optional = (fields: Record<string, Check>): Record<string, Check> => Object.fromEntries(Object.entries(fields).map(([k, c]) => [`${k}?`, c]));

/** Only the named query parameters; anything else is a 400. */
function checkQuery(url: URL, allowed: string[]): void {
  for (const k of url.searchParams.keys()) {
    if (!allowed.includes(k)) throw invalid(`unknown query parameter ${k}${allowed.length ? `; expected ${allowed.join(', ')}` : ''}`);
  }
}

const NO_MIRROR_DRIVER = 'this array runs no mirror driver (no remoteLink configured)';

function mirrorRoutes(m: MirrorControl | undefined): Route[] {
  const R = (pattern: RegExp, methods: Record<string, Handler>): Route => ({ pattern, methods });
  if (!m) {
    const none: Handler = async (req) => {
      await drain(req).catch(() => undefined);
      throw new ApiError(404, 'no-mirror-driver', NO_MIRROR_DRIVER);
    };
    return [R(/^\/v1\/mirrors(?:\/.*)?$/, { GET: none, POST: none, PATCH: none, DELETE: none })];
  }
  const body = async (req: IncomingMessage, url: URL, fields: Record<string, Check>, query: string[] = []) => {
    checkQuery(url, query);
    return checkFields(await readOptionalJson(req), fields);
  };
  const enc = (s: string) => encodeURIComponent(s);
  return [
    R(/^\/v1\/mirrors$/, {
      GET: async (req, _res, _p, url) => {
        checkQuery(url, []);
        await drain(req);
        return { mirrors: m.list() };
      },
      POST: async (req, res, _p, url) => {
        checkQuery(url, []);
        const b = checkFields(await readJson(req), { lun: C.lunRef, 'name?': C.string, 'regionSize?': C.regionSize, 'attributes?': (v) => v });
        const p: CreateMirrorParams = { lun: b.lun as number | string };
        if (b.name !== undefined) {
          const bad = checkName(b.name, 'mirror name');
          if (bad) throw invalid(bad);
          p.name = b.name as string;
        }
        if (b.regionSize !== undefined) p.regionSize = b.regionSize as number;
        if (b.attributes !== undefined) p.attributes = checkFields(b.attributes, optional(ATTRIBUTE_FIELDS), 'attributes') as CreateMirrorParams['attributes'];
        const view = await m.create(p);
        res.statusCode = 201;
        res.setHeader('Location', `/${API_VERSION}/mirrors/${enc(view.record.name)}`);
        return view;
      },
    }),
    R(/^\/v1\/mirrors\/([^/]+)$/, {
      GET: async (req, _res, [ref], url) => {
        checkQuery(url, []);
        await drain(req);
        return m.get(ref!);
      },
      PATCH: async (req, _res, [ref], url) => {
        checkQuery(url, []);
        const b = checkFields(await readJson(req), {
          'name?': (v, k) => {
            const bad = checkName(v, k === 'name' ? 'mirror name' : k);
            if (bad) throw invalid(bad);
            return v;
          },
          ...optional(ATTRIBUTE_FIELDS),
          'image?': C.string,
          'recoveryPolicy?': C.oneOf('auto', 'manual'),
          'imageSyncRate?': C.rateOrNull,
        });
        if (Object.keys(b).length === 0) throw invalid('nothing to change: give mirror attributes, or image with recoveryPolicy / imageSyncRate');
        const perImage = b.recoveryPolicy !== undefined || b.imageSyncRate !== undefined;
        if (perImage && b.image === undefined) throw invalid('recoveryPolicy and imageSyncRate are settings of one image: give image (an image id like "bravo:0" or an array name)');
        if (!perImage && b.image !== undefined) throw invalid('image given without recoveryPolicy or imageSyncRate: nothing to change for it');
        return m.setAttributes(ref!, b as ChangeAttributesParams);
      },
      DELETE: async (req, _res, [ref], url) => {
        checkQuery(url, []);
        await drain(req);
        const before = m.get(ref!);
        await m.destroy(ref!);
        return { destroyed: { mirrorId: before.record.mirrorId, name: before.record.name } };
      },
    }),
    R(/^\/v1\/mirrors\/([^/]+)\/secondaries$/, {
      POST: async (req, _res, [ref], url) => {
        checkQuery(url, []);
        const b = checkFields(await readJson(req), {
          array: (v, k) => {
            const bad = checkName(v, k === 'array' ? 'array name' : k);
            if (bad) throw invalid(bad);
            return v;
          },
          lun: C.lunRef,
          'synchronized?': C.boolean,
          'recoveryPolicy?': C.oneOf('auto', 'manual'),
          'syncRate?': C.rateOrNull,
        });
        return m.addSecondary(ref!, b as unknown as AddSecondaryParams);
      },
    }),
    R(/^\/v1\/mirrors\/([^/]+)\/secondaries\/([^/]+)$/, {
      DELETE: async (req, _res, [ref, image], url) => {
        checkQuery(url, ['force']);
        const force = parseBool(url.searchParams.get('force'), 'force');
        await drain(req);
        return m.removeSecondary(ref!, image!, force ? { force } : undefined);
      },
    }),
    R(/^\/v1\/mirrors\/([^/]+)\/promote$/, {
      POST: async (req, _res, [ref], url) => {
        const b = await body(req, url, { 'force?': C.boolean });
        return m.promote(ref!, b.force ? { force: true } : undefined);
      },
    }),
    R(/^\/v1\/mirrors\/([^/]+)\/synchronize$/, {
      POST: async (req, _res, [ref], url) => {
        const b = await body(req, url, { 'image?': C.string, 'force?': C.boolean });
        return m.synchronize(ref!, b.image as string | undefined, b.force ? { force: true } : undefined);
      },
    }),
    R(/^\/v1\/mirrors\/([^/]+)\/fracture$/, {
      POST: async (req, _res, [ref], url) => {
        const b = await body(req, url, { 'image?': C.string });
        return m.fracture(ref!, b.image as string | undefined);
      },
    }),
    R(/^\/v1\/mirrors\/([^/]+)\/activate$/, {
      POST: async (req, _res, [ref], url) => {
        await body(req, url, {});
        return m.activate(ref!);
      },
    }),
    R(/^\/v1\/mirrors\/([^/]+)\/deactivate$/, {
      POST: async (req, _res, [ref], url) => {
        const b = await body(req, url, { 'force?': C.boolean });
        return m.deactivate(ref!, b.force ? { force: true } : undefined);
      },
    }),
    R(/^\/v1\/mirrors\/([^/]+)\/verify$/, {
      POST: async (req, _res, [ref], url) => {
        const b = await body(req, url, { 'image?': C.string });
        // Can take a while (every region is read on both sides); nothing is streamed.
        req.socket.setTimeout(0);
        return m.verify(ref!, b.image as string | undefined);
      },
    }),
    R(/^\/v1\/mirrors\/([^/]+)\/resolve$/, {
      POST: async (req, _res, [ref], url) => {
        const b = await body(req, url, { survivor: C.string });
        return m.resolveSplitBrain(ref!, { survivor: b.survivor as string });
      },
    }),
  ];
}

// ---- consistency groups ----

const count =
  (min: number, max = Number.MAX_SAFE_INTEGER): Check =>
  (v, k) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw invalid(`${k} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, not ${JSON.stringify(v)}`);
    }
    return v;
  };

const sizeAtLeast =
  (min: number, multipleOf = 1): Check =>
  (v, k) => {
    const n = typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined;
    if (n === undefined || n < min || n % multipleOf !== 0) {
      throw invalid(`${k} must be a byte count or a size like "64M"${min > 0 ? ` of at least ${min} bytes` : ''}${multipleOf > 1 ? ` (a multiple of ${multipleOf})` : ''}, not ${JSON.stringify(v)}`);
    }
    return n;
  };

const NEAR_SYNC_FIELDS: Record<string, Check> = {
  'maxEntries?': count(0),
  'maxBytes?': sizeAtLeast(0),
  'lowEntries?': count(0),
  'lowBytes?': sizeAtLeast(0),
};
const WRITELOG_FIELDS: Record<string, Check> = {
  'capacity?': sizeAtLeast(64 * 1024, 8),
  'extensions?': count(0, 128),
  'extensionCapacity?': sizeAtLeast(64 * 1024, 8),
  'extendAtPercent?': count(1, 100),
};

const nearSyncCheck: Check = (v, k) => checkFields(v, NEAR_SYNC_FIELDS, k);
const throttlesCheck: Check = (v, k) => {
  if (!Array.isArray(v)) throw invalid(`${k} must be a list of throttles ({measure, op, value, actions, from?, to?})`);
  const r = parseThrottles(v, k);
  if (r.problems.length) throw invalid(r.problems.join('; '));
  return r.throttles;
};

/** What PATCH /v1/groups/:ref changes (not the mode: POST .../mode; not the writelog: fixed at create). */
const GROUP_SETTABLE: Record<string, Check> = {
  'throttles?': throttlesCheck,
  'throttleEveryMs?': count(100),
  'perfEveryMs?': count(100),
  'perfMaxBytes?': sizeAtLeast(4096),
  'nearSync?': nearSyncCheck,
};

const GROUP_ATTRIBUTE_FIELDS: Record<string, Check> = {
  'mode?': C.oneOf('asynchronous', 'near-synchronous', 'synchronous'),
  'writelog?': (v, k) => checkFields(v, WRITELOG_FIELDS, k),
  ...GROUP_SETTABLE,
};

function groupRoutes(g: GroupControl | undefined): Route[] {
  const R = (pattern: RegExp, methods: Record<string, Handler>): Route => ({ pattern, methods });
  if (!g) {
    const none: Handler = async (req) => {
      await drain(req).catch(() => undefined);
      throw new ApiError(404, 'no-mirror-driver', NO_MIRROR_DRIVER);
    };
    return [R(/^\/v1\/groups(?:\/.*)?$/, { GET: none, POST: none, PATCH: none, DELETE: none })];
  }
  const body = async (req: IncomingMessage, url: URL, fields: Record<string, Check>) => {
    checkQuery(url, []);
    return checkFields(await readOptionalJson(req), fields);
  };
  const get = async (req: IncomingMessage, url: URL) => {
    checkQuery(url, []);
    await drain(req);
  };
  return [
    R(/^\/v1\/groups$/, {
      GET: async (req, _res, _p, url) => {
        await get(req, url);
        return { groups: g.list() };
      },
      POST: async (req, res, _p, url) => {
        checkQuery(url, []);
        const b = checkFields(await readJson(req), {
          name: (v, k) => {
            const bad = checkName(v, k === 'name' ? 'group name' : k);
            if (bad) throw invalid(bad);
            return v;
          },
          members: (v, k) => {
            if (!Array.isArray(v) || v.length === 0 || v.length > 256) throw invalid(`${k} must be a non-empty list of mirror names (or ids)`);
            v.forEach((m, i) => C.string(m, `${k}[${i}]`));
            const dup = v.find((m, i) => v.indexOf(m) !== i);
            if (dup !== undefined) throw invalid(`${k}: mirror ${JSON.stringify(dup)} is listed twice`);
            return v;
          },
          'attributes?': (v, k) => checkFields(v, GROUP_ATTRIBUTE_FIELDS, k),
        });
        const attributes = b.attributes as Partial<GroupAttributes> | undefined;
        if (attributes) {
          const problems = attributeProblems(withDefaults(attributes));
          if (problems.length) throw invalid(`attributes: ${problems.join('; ')}`);
        }
        const view = await g.create({ name: b.name as string, members: b.members as string[], ...(attributes ? { attributes } : {}) });
        res.statusCode = 201;
        res.setHeader('Location', `/${API_VERSION}/groups/${encodeURIComponent(view.record.name)}`);
        return view;
      },
    }),
    R(/^\/v1\/groups\/([^/]+)$/, {
      GET: async (req, _res, [ref], url) => {
        await get(req, url);
        return g.get(ref!);
      },
      PATCH: async (req, _res, [ref], url) => {
        checkQuery(url, []);
        const b = checkFields(await readJson(req), GROUP_SETTABLE);
        if (Object.keys(b).length === 0) throw invalid(`nothing to change: give ${Object.keys(GROUP_SETTABLE).map((k) => k.replace(/\?$/, '')).join(', ')} (the mode: POST /v1/groups/:ref/mode)`);
        return g.setAttributes(ref!, b as Parameters<GroupControl['setAttributes']>[1]);
      },
      DELETE: async (req, _res, [ref], url) => {
        await get(req, url);
        // Waits for the journal to drain (the members go on as synchronous mirrors).
        req.socket.setTimeout(0);
        const before = g.get(ref!);
        await g.delete(ref!);
        return { deleted: { groupId: before.record.groupId, name: before.record.name } };
      },
    }),
    R(/^\/v1\/groups\/([^/]+)\/info$/, {
      GET: async (req, _res, [ref], url) => {
        await get(req, url);
        return g.info(ref!);
      },
    }),
    R(/^\/v1\/groups\/([^/]+)\/mode$/, {
      POST: async (req, _res, [ref], url) => {
        const b = await body(req, url, { mode: C.oneOf('asynchronous', 'near-synchronous', 'synchronous'), 'nearSync?': nearSyncCheck });
        // Leaving a journaling mode waits for the journal to drain.
        req.socket.setTimeout(0);
        return g.setMode(ref!, b.mode as GroupMode, b.nearSync as Partial<NearSyncBounds> | undefined);
      },
    }),
    R(/^\/v1\/groups\/([^/]+)\/pause$/, {
      POST: async (req, _res, [ref], url) => {
        await body(req, url, {});
        return g.pause(ref!, true);
      },
    }),
    R(/^\/v1\/groups\/([^/]+)\/resume$/, {
      POST: async (req, _res, [ref], url) => {
        await body(req, url, {});
        return g.pause(ref!, false);
      },
    }),
    R(/^\/v1\/groups\/([^/]+)\/bypass$/, {
      POST: async (req, _res, [ref], url) => {
        const b = await body(req, url, { on: C.boolean });
        return g.bypass(ref!, b.on as boolean);
      },
    }),
    R(/^\/v1\/groups\/([^/]+)\/refresh$/, {
      POST: async (req, _res, [ref], url) => {
        await body(req, url, {});
        // Answers once the refresh has started; its progress is in the view (record.refresh).
        return g.refresh(ref!);
      },
    }),
    R(/^\/v1\/groups\/([^/]+)\/backfresh$/, {
      POST: async (req, _res, [ref], url) => {
        const b = await body(req, url, {
          'from?': (v, k) => {
            const bad = checkName(v, k === 'from' ? 'array name' : k);
            if (bad) throw invalid(bad);
            return v;
          },
        });
        // Answers when the copy is done (every member is read from the secondary).
        req.socket.setTimeout(0);
        return g.backfresh(ref!, b.from !== undefined ? { from: b.from as string } : undefined);
      },
    }),
    R(/^\/v1\/groups\/([^/]+)\/promote$/, {
      POST: async (req, _res, [ref], url) => {
        const b = await body(req, url, { 'force?': C.boolean });
        req.socket.setTimeout(0);
        return g.promote(ref!, b.force ? { force: true } : undefined);
      },
    }),
  ];
}
