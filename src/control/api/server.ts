/**
 * The management API of one array: HTTP + JSON, version-prefixed routes, errors as
 * `{"error": {"code", "message"}}`, and a server-sent-event stream of every state change.
 *
 * Security: listens on 127.0.0.1 by default. Any other address needs a bearer token
 * (`Authorization: Bearer <token>`), and the server refuses to start without one. Without a token
 * on loopback, requests whose Host header is not a loopback name are refused (DNS rebinding).
 * Whatever the address, the browser rule of src/http-guard holds: a request that changes
 * something needs `Content-Type: application/json` (also without a body) or `X-Sanbox-Request: 1`
 * (else 415), and one from a foreign `Origin` is refused (403) unless in `allowedOrigins`, so a
 * web page the user visits cannot drive the API with a simple cross-site request.
 *
 * This file: the server, its options, dispatch, authorization and error answers. The routes
 * live by family in luns.ts, chassis.ts, mirrors.ts, groups.ts and events.ts; GET /metrics
 * (Prometheus text) is built by metrics.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { ArrayError, type StorageArray } from '../../array/index.js';
import type { MirrorControl } from '../../replication/mirror/types.js';
import type { GroupControl } from '../../replication/group/index.js';
import { hostPort, isLoopback, isWildcard, type NbdEndpoint } from './address.js';
import { chassisRoutes, type ChassisControl } from './chassis.js';
import { EventStreams } from './events.js';
import { groupRoutes } from './groups.js';
import { API_VERSION, ApiError, drain, route, sendJson, type Route } from './http.js';
import { lunRoutes, LunViews } from './luns.js';
import { mirrorRoutes } from './mirrors.js';
import { diskFaultRoutes } from './disk-faults.js';
import type { DiskFaultControl } from '../disk-faults.js';
import type { SnapshotManager } from '../../snapshot/index.js';
import { snapshotRoutes } from './snapshots.js';
import type { CloneManager } from '../../clone/index.js';
import { cloneRoutes } from './clones.js';
import { checkBrowserSafety } from '../../http-guard/index.js';
import { sendMetrics } from '../../metrics/index.js';
import { arrayMetrics, type ArrayMetricsSource } from './metrics.js';

/** Requests still running when the server closes get this long to answer; then their connections are cut. */
const CLOSE_GRACE_MS = 500;

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
  /** The LUNs' disk faults (routes /v1/faults/disk and /v1/luns/:ref/disk-fault; status field `diskFaults`). */
  diskFaults?: DiskFaultControl;
  /** The array's snapshots (routes under /v1/snapshots and /v1/luns/:ref/snapshots; 501 without). */
  snapshots?: SnapshotManager;
  /** The array's clones (routes under /v1/clones; 501 without). */
  clones?: CloneManager;
  /**
   * Web origins (e.g. `http://127.0.0.1:8480`) whose pages may change things through this API,
   * besides the API's own origin; default none. Requests with any other Origin are refused (403).
   */
  allowedOrigins?: string[];
  /** The LUNs' I/O counters and NBD sessions for GET /metrics (without: those metrics are absent). */
  metrics?: ArrayMetricsSource;
}

const ARRAY_ERROR_STATUS: Record<string, number> = {
  'invalid-argument': 400,
  refused: 409,
  'not-found': 404,
  exists: 409,
  busy: 409,
  'read-only': 409,
  closed: 503,
};

export class ControlServer {
  private readonly opts: ControlServerOptions;
  private readonly host: string;
  private readonly server: Server;
  private readonly routes: Route[];
  private readonly sockets = new Set<Socket>();
  private readonly tokenDigest: Buffer | undefined;
  private readonly views: LunViews;
  private readonly events: EventStreams;
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
        `refusing to serve the management API on non-loopback address ${this.host} without a token (give --api-token-file FILE, SANBOX_TOKEN or --api-token)`,
      );
    }
    this.tokenDigest = opts.token ? digest(opts.token) : undefined;
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.views = new LunViews(opts.nbd, opts.chassis);
    this.events = new EventStreams(opts.array);
    const R = route;
    this.routes = [
      R(/^\/$/, { GET: () => ({ api: 'sanbox', versions: [API_VERSION], status: `/${API_VERSION}/status` }) }),
      R(/^\/v1\/?$/, { GET: () => ({ api: 'sanbox', version: API_VERSION, routes: ROUTE_LIST }) }),
      R(/^\/v1\/status$/, { GET: (req) => this.status(req) }),
      ...lunRoutes(opts.array, this.views),
      R(/^\/v1\/events$/, { GET: (req, res, _p, url) => this.events.open(req, res, url) }),
      // Prometheus text format (docs/metrics.md); the same authorization as every other GET.
      R(/^\/metrics$/, {
        GET: async (req, res) => {
          await drain(req);
          const groups = opts.groups ?? (opts.mirrors as { groups?: GroupControl } | undefined)?.groups;
          await sendMetrics(res, await arrayMetrics({ array: opts.array, source: opts.metrics, chassis: opts.chassis, mirrors: opts.mirrors, groups }));
        },
      }),
    ];
    if (opts.chassis) this.routes.unshift(...chassisRoutes(opts.chassis));
    if (opts.diskFaults) this.routes.unshift(...diskFaultRoutes(opts.diskFaults));
    this.routes.unshift(...mirrorRoutes(opts.mirrors));
    this.routes.unshift(...snapshotRoutes(opts.snapshots));
    this.routes.unshift(...cloneRoutes(opts.clones));
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
    this.events.start();
    return this.bound;
  }

  get address(): { address: string; port: number; url: string } | undefined {
    return this.bound;
  }

  /** Ends event streams, stops listening and closes idle connections. */
  async close(): Promise<void> {
    this.events.close();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    // Requests still running get a moment to answer; then their connections are cut.
    const t = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, CLOSE_GRACE_MS);
    await closed;
    clearTimeout(t);
  }

  private async status(req: IncomingMessage): Promise<Record<string, unknown>> {
    const a = this.opts.array;
    const chassis = this.opts.chassis ? await this.opts.chassis.status() : {};
    const diskFaults = this.opts.diskFaults ? await this.opts.diskFaults.list() : [];
    return {
      ...(this.opts.info?.() ?? {}),
      array: a.name,
      dir: a.dir,
      readOnly: a.readOnly,
      metadata: { generation: a.metadataGeneration, copies: ['meta.A', 'meta.B'] },
      nbd: this.views.uriHosts(req).map((ep, i) => ({ ...ep, bind: this.opts.nbd?.()[i]?.host })),
      api: { url: this.bound?.url, tokenRequired: this.tokenDigest !== undefined },
      luns: a.listLuns().map((l) => this.views.view(l, req)),
      problems: [...a.openProblems],
      ...chassis,
      diskFaults,
      ...(this.opts.snapshots ? { snapshots: this.opts.snapshots.list() } : {}),
      ...(this.opts.clones ? { clones: this.opts.clones.list() } : {}),
      lastEventSeq: a.lastSeq,
    };
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
      // Before any handler reads or changes anything: what a web page could send is refused.
      const refused = checkBrowserSafety(req, this.opts.allowedOrigins);
      if (refused) throw new ApiError(refused.status, refused.code, refused.message);
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
      /* an unparsable Host header is no loopback name: refused just below */
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
  'GET /v1/groups/:ref/perf[?since=MS|10m|ISO] (the performance records, oldest first; on the primary)',
  'POST /v1/groups/:ref/mode {mode, nearSync?} | pause | resume | bypass {on} | refresh | backfresh {from?} | promote {force?, fromSnapshot?}',
  'POST /v1/groups/:ref/snapshot {name} (the members on this array at one write boundary; on a secondary between two applied batches: groupSeq)',
  'GET /v1/mirrors | POST /v1/mirrors {lun, name?, regionSize?, attributes?}',
  'GET /v1/mirrors/:ref | PATCH /v1/mirrors/:ref {attributes, or image + recoveryPolicy/imageSyncRate} | DELETE /v1/mirrors/:ref',
  'POST /v1/mirrors/:ref/secondaries {array, lun, synchronized?, recoveryPolicy?, syncRate?}',
  'DELETE /v1/mirrors/:ref/secondaries/:image[?force=true]',
  'POST /v1/mirrors/:ref/promote {force?, fromSnapshot?} | synchronize {image?, force?} | fracture {image?} | activate | deactivate {force?}',
  'POST /v1/mirrors/:ref/verify {image?} | resolve {survivor}',
  'POST /v1/mirrors/:ref/heartbeat {installed, by} (a heartbeat mirror: fracture, remove-secondary, deactivate, destroy, promote and group membership refused while installed)',
  'GET /v1/sps (two-SP arrays)',
  'POST /v1/faults/sp-crash {sp} | sp-restart {sp} | power-fail | power-restore | battery-fail {undetected?} | battery-repair',
  'POST /v1/battery {charge}',
  'GET /v1/faults/disk (every active disk fault with its counters)',
  'GET /v1/luns/:id|name/disk-fault | PUT {errors?, rate?, range?, errno?, delay?, seed?, loseUnflushed?, maxUnflushed?} | DELETE (clear)',
  'POST /v1/luns/:id|name/trespass {to?}',
  'POST /v1/luns/:id|name/recover {acceptDataLoss: true}',
  'GET /v1/snapshots | POST /v1/snapshot-groups {luns: [lun...], name, group?}',
  'GET /v1/luns/:id|name/snapshots | POST {name, note?} | PATCH {storeSize?, policy?: invalidate-oldest|refuse-writes}',
  'GET /v1/luns/:id|name/snapshots/:name | DELETE [?force=true] | POST .../rollback',
  'GET /v1/clones | POST /v1/clones {name, source: LUN | LUN@SNAP, rate?}',
  'GET /v1/clones/:name | PATCH {rate} | DELETE [?force=true][&keepLun=true] | POST .../resume',
  'GET /v1/status',
  'GET /v1/luns',
  'POST /v1/luns {name, size, blockSize?}',
  'GET /v1/luns/:id|name',
  'DELETE /v1/luns/:id|name[?force=true]',
  'POST /v1/luns/:id|name/grow {size} | {by}',
  'POST /v1/luns/:id|name/fence {fenced: true, reason, by} | {fenced: false, by} (host writes refused while fenced)',
  'GET /v1/events (text/event-stream; Last-Event-ID or ?since=SEQ replays)',
  'GET /metrics (Prometheus text format; docs/metrics.md)',
];

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
