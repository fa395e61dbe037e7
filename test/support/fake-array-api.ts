// A stand-in for an array's management API (src/control/api) on 127.0.0.1, small enough to
// script: the routes the pair resync monitor uses (GET /v1/groups/NAME, GET /v1/mirrors/NAME,
// POST /v1/mirrors/NAME/synchronize, GET /v1/events as server-sent events), every request
// recorded. `stall` accepts connections and never answers anything.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ImageView, MirrorView } from '../../src/replication/mirror/types.js';
import { DEFAULT_ATTRIBUTES, DEFAULT_REGION_SIZE, MIRROR_DB_FORMAT, MIRROR_DB_VERSION } from '../../src/replication/state/db.js';

export interface SeenRequest {
  method: string;
  path: string;
  body: unknown;
  at: number;
}

/** What a synchronize POST answers: a status and a JSON body. */
export type SyncAnswer = { status: number; body: unknown };

export interface FakeArrayOptions {
  /** accept connections, never answer (default false) */
  stall?: boolean;
}

export interface FakeArrayApi {
  /** http://127.0.0.1:PORT, a monitor instance */
  url: string;
  requests: SeenRequest[];
  /** mirror views by name; an absent name answers 404 not-found */
  mirrors: Map<string, MirrorView>;
  /** answers POST /v1/mirrors/NAME/synchronize (default: 200 with the mirror's view) */
  onSynchronize: (name: string, body: unknown) => SyncAnswer;
  /** requests other than GET /v1/events not yet answered, now and at most so far */
  inFlight(): number;
  maxInFlight(): number;
  /** open GET /v1/events streams */
  streams(): number;
  /** writes one event to every open stream, in the array API's format */
  push(type: string, data?: Record<string, unknown>): void;
  /** GET /v1/mirrors/NAME requests so far (one per poll once the monitor knows it is a mirror) */
  mirrorGets(name: string): number;
  /** POST /v1/mirrors/NAME/synchronize requests so far */
  syncPosts(name?: string): SeenRequest[];
  /** drops every connection (a stalled request fails at once) and stops listening */
  close(): Promise<void>;
}

const notFound = (what: string) => ({ status: 404, body: { error: { code: 'not-found', message: `no ${what}` } } });

export async function startFakeArrayApi(opts: FakeArrayOptions = {}): Promise<FakeArrayApi> {
  const requests: SeenRequest[] = [];
  const mirrors = new Map<string, MirrorView>();
  const streams = new Set<ServerResponse>();
  let inFlight = 0;
  let maxInFlight = 0;
  let seq = 0;

  const api: FakeArrayApi = {
    url: '',
    requests,
    mirrors,
    onSynchronize: (name) => {
      const v = mirrors.get(name);
      return v ? { status: 200, body: v } : notFound(`mirror ${name}`);
    },
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
    streams: () => streams.size,
    push(type, data = {}) {
      seq++;
      for (const s of streams) s.write(`id: ${seq}\nevent: ${type}\ndata: ${JSON.stringify({ seq, type, time: new Date().toISOString(), ...data })}\n\n`);
    },
    mirrorGets: (name) => requests.filter((r) => r.method === 'GET' && r.path === `/v1/mirrors/${name}`).length,
    syncPosts: (name) => requests.filter((r) => r.method === 'POST' && /^\/v1\/mirrors\/[^/]+\/synchronize$/.test(r.path) && (name === undefined || r.path === `/v1/mirrors/${name}/synchronize`)),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const answer = (res: ServerResponse, a: SyncAnswer): void => {
    const text = JSON.stringify(a.body);
    res.writeHead(a.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };

  const route = (req: IncomingMessage, res: ServerResponse, path: string, body: unknown): void => {
    if (req.method === 'GET' && path === '/v1/events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      res.write('retry: 2000\n\n');
      streams.add(res);
      res.on('close', () => streams.delete(res));
      return;
    }
    let m: RegExpExecArray | null;
    if (req.method === 'GET' && (m = /^\/v1\/groups\/([^/]+)$/.exec(path))) return answer(res, notFound(`group ${decodeURIComponent(m[1]!)}`));
    if (req.method === 'GET' && (m = /^\/v1\/mirrors\/([^/]+)$/.exec(path))) {
      const v = mirrors.get(decodeURIComponent(m[1]!));
      return answer(res, v ? { status: 200, body: v } : notFound(`mirror ${decodeURIComponent(m[1]!)}`));
    }
    if (req.method === 'POST' && (m = /^\/v1\/mirrors\/([^/]+)\/synchronize$/.exec(path))) return answer(res, api.onSynchronize(decodeURIComponent(m[1]!), body));
    answer(res, { status: 404, body: { error: { code: 'not-found', message: `no route ${req.method} ${path}` } } });
  };

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const counted = path !== '/v1/events';
    if (counted) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      res.on('close', () => inFlight--);
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      requests.push({ method: req.method ?? '?', path, body, at: Date.now() });
      if (opts.stall) return; // never answered: the connection stays open until close()
      route(req, res, path, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}

/**
 * A mirror as its primary array shows it, with one secondary (bravo:0) whose link is up:
 * in sync, or fractured by a link failure (the monitor's autorecover case).
 */
export function mirrorView(name: string, secondary: { fractured: boolean }): MirrorView {
  const primary: ImageView = { imageId: 'alpha:0', array: 'alpha', lun: 0, size: 64 << 20, role: 'primary', state: null, epoch: 1, reachability: 'REACHABLE', fractured: false, fractureReason: null, recoveryPolicy: 'auto', syncRate: null, syncProgress: null, link: 'local', fractureLog: null, resync: null, recordGeneration: 1 };
  const sec: ImageView = {
    ...primary,
    imageId: 'bravo:0',
    array: 'bravo',
    role: 'secondary',
    state: 'CONSISTENT',
    epoch: 0,
    link: 'connected',
    fractured: secondary.fractured,
    fractureReason: secondary.fractured ? 'link' : null,
    fractureLog: { regions: secondary.fractured ? 4 : 0, bytes: secondary.fractured ? 4 * DEFAULT_REGION_SIZE : 0 },
  };
  const images = [primary, sec];
  return {
    record: { format: MIRROR_DB_FORMAT, version: MIRROR_DB_VERSION, ...DEFAULT_ATTRIBUTES, name, mirrorId: `id-${name}`, generation: 1, state: 'ACTIVE', epoch: 1, regionSize: DEFAULT_REGION_SIZE, images },
    local: { imageId: 'alpha:0', role: 'primary', lun: 0, lunName: 'disk0' },
    images,
    writeIntentLog: null,
    splitBrain: false,
    protection: { enabled: true, state: 'primary', fallback: null },
  };
}
