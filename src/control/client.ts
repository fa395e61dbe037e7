import { request as httpRequest } from 'node:http';
import type {
  AddSecondaryParams,
  ChangeAttributesParams,
  CreateMirrorParams,
  MirrorView,
  VerifyReport,
} from '../replication/mirror/types.js';
import type { GroupPerfRecords, GroupView } from '../replication/group/index.js';
import type { GroupMode, NearSyncBounds, ThrottleSpec, WritelogConfig } from '../replication/group/types.js';

/** Sizes and rates may be given as strings ("64K", "64M") to the API, which parses them. */
type Sized<T, K extends keyof T> = Omit<T, K> & { [P in K]?: T[P] | string };
export type CreateMirrorRequest = Sized<CreateMirrorParams, 'regionSize'> & {
  attributes?: Sized<NonNullable<CreateMirrorParams['attributes']>, 'syncRate' | 'writeBacklogSize'>;
};
export type AddSecondaryRequest = Sized<AddSecondaryParams, 'syncRate'>;
export type ChangeAttributesRequest = Sized<ChangeAttributesParams, 'syncRate' | 'writeBacklogSize' | 'imageSyncRate'>;

/** Consistency-group attributes as the API takes them: byte counts may be strings ("64M"). */
type SizeOr = number | string;
export interface GroupNearSyncRequest {
  maxEntries?: number;
  maxBytes?: SizeOr;
  lowEntries?: number;
  lowBytes?: SizeOr;
}
export interface GroupSettableRequest {
  throttles?: ThrottleSpec[];
  throttleEveryMs?: number;
  perfEveryMs?: number;
  perfMaxBytes?: SizeOr;
  nearSync?: GroupNearSyncRequest;
  protectResync?: boolean;
  /** the armed freeze of a synchronous group (docs/group.md#freeze) */
  freeze?: 'armed' | 'off';
}
export interface CreateGroupRequest {
  name: string;
  /** mirror names (or ids), all primary on the array asked */
  members: string[];
  attributes?: GroupSettableRequest & {
    mode?: GroupMode;
    writelog?: { [K in keyof WritelogConfig]?: K extends 'capacity' | 'extensionCapacity' ? SizeOr : WritelogConfig[K] };
  };
}
export type { GroupPerfRecords, GroupView, NearSyncBounds };

/**
 * Client of the management API, used by the CLI (and later the monitor and the automation).
 * Failures are ClientErrors: `unreachable` when no API answers (connection refused, timeout, bad
 * URL), otherwise the API's own error code and HTTP status.
 */
export class ClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ClientError';
  }
  /**
   * No API answered. An API that answers 503 "unreachable" (a mirror's peer cannot be reached)
   * did answer: the array refused the request, it was not out of reach.
   */
  get unreachable(): boolean {
    return this.code === 'unreachable' && this.status === undefined;
  }
}

/** A request's answer is awaited this long unless the client says otherwise. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Verbs that wait for a group's journal to drain or for a promotion (mode, promote, delete). */
const DRAIN_TIMEOUT_MS = 120_000;
/** Verbs that read every region of a mirror or group (verify, backfresh). */
const FULL_COPY_TIMEOUT_MS = 3_600_000;

export interface ApiClientOptions {
  /** Base URL, e.g. http://127.0.0.1:8470 */
  url: string;
  token?: string;
  timeoutMs?: number;
}

export class ApiClient {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  constructor(opts: ApiClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
  }

  async request<T = unknown>(method: string, path: string, body?: unknown, opts: { timeoutMs?: number } = {}): Promise<T> {
    let url: URL;
    try {
      url = new URL(this.url + path);
      if (url.protocol !== 'http:') throw new Error(`unsupported protocol ${url.protocol}`);
    } catch (e) {
      throw new ClientError('unreachable', `bad API URL ${JSON.stringify(this.url)}: ${(e as Error).message}`);
    }
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    // Every request that may change something says JSON, body or not: the servers refuse the
    // others (415), which is what a web page could send them (src/http-guard).
    if (body !== undefined || !['GET', 'HEAD'].includes(method.toUpperCase())) headers['Content-Type'] = 'application/json';
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    let res: { status: number; ok: boolean };
    let text: string;
    try {
      if (timeoutMs > LONG_REQUEST_MS) {
        // fetch gives up waiting for response headers after 300 s whatever the signal says.
        res = await longRequest(url, method, headers, body === undefined ? undefined : JSON.stringify(body), timeoutMs);
        text = (res as { text: string } & typeof res).text;
      } else {
        const r = await fetch(url, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
        res = r;
        text = await r.text();
      }
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new ClientError('unreachable', `cannot reach the sanbox API at ${this.url}: ${why}`);
    }
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ClientError('bad-response', `the API at ${this.url} answered ${res.status} with non-JSON: ${text.slice(0, 200)}`, res.status);
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ClientError(err?.code ?? 'http-' + res.status, err?.message ?? `HTTP ${res.status}`, res.status);
    }
    return json as T;
  }

  /**
   * The array's events from now on (GET /v1/events as server-sent events, no replay): the body
   * of the stream, to read until `signal` aborts. A verb that waits on one long request (group
   * backfresh) follows its progress events here. Failures are ClientErrors, as for request().
   */
  async eventStream(signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(`${this.url}/v1/events`, { headers, signal });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new ClientError('unreachable', `cannot reach the sanbox API at ${this.url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    if (!res.ok || !res.body) {
      const text = await res.text().catch((e: Error) => `(its body could not be read: ${e.message})`);
      throw new ClientError(`http-${res.status}`, `GET /v1/events answered ${res.status}: ${text.slice(0, 200)}`, res.status);
    }
    return res.body as unknown as AsyncIterable<Uint8Array>;
  }

  status<T = Record<string, unknown>>(): Promise<T> {
    return this.request<T>('GET', '/v1/status');
  }
  listLuns<T = unknown>(): Promise<{ luns: T[] }> {
    return this.request('GET', '/v1/luns');
  }
  createLun<T = unknown>(spec: { name: string; size: number | string; blockSize?: number }): Promise<{ lun: T }> {
    return this.request('POST', '/v1/luns', spec);
  }
  deleteLun<T = unknown>(ref: string | number, force = false): Promise<{ deleted: T }> {
    return this.request('DELETE', `/v1/luns/${encodeURIComponent(String(ref))}${force ? '?force=true' : ''}`);
  }
  /**
   * `{ size }` (or a bare size): grow to that size; `{ by }`: grow by that much, atomically on the
   * array (concurrent relative grows each add theirs).
   */
  growLun<T = unknown>(ref: string | number, p: number | string | { size: number | string } | { by: number | string }): Promise<{ lun: T }> {
    return this.request('POST', `/v1/luns/${encodeURIComponent(String(ref))}/grow`, typeof p === 'object' ? p : { size: p });
  }

  // ---- snapshots ----

  listSnapshots<T = unknown>(lun?: string): Promise<{ snapshots: T[]; store?: Record<string, unknown> }> {
    return this.request('GET', lun === undefined ? '/v1/snapshots' : `${lunPath(lun)}/snapshots`);
  }
  getSnapshot<T = unknown>(lun: string, name: string): Promise<{ snapshot: T }> {
    return this.request('GET', `${lunPath(lun)}/snapshots/${encodeURIComponent(name)}`);
  }
  createSnapshot<T = unknown>(lun: string, p: { name: string; note?: string }): Promise<{ snapshot: T; pauseMs: number }> {
    return this.request('POST', `${lunPath(lun)}/snapshots`, p);
  }
  createSnapshotGroup<T = unknown>(p: { luns: Array<string | number>; name: string; group?: string }): Promise<{ snapshots: T[]; pauseMs: number }> {
    return this.request('POST', '/v1/snapshot-groups', p);
  }
  deleteSnapshot<T = unknown>(lun: string, name: string, force = false): Promise<{ deleted: T }> {
    return this.request('DELETE', `${lunPath(lun)}/snapshots/${encodeURIComponent(name)}${force ? '?force=true' : ''}`);
  }
  rollbackSnapshot<T = unknown>(lun: string, name: string, opts: { timeoutMs?: number } = {}): Promise<{ rolledBack: T }> {
    return this.request('POST', `${lunPath(lun)}/snapshots/${encodeURIComponent(name)}/rollback`, {}, opts);
  }
  configureSnapshotStore(lun: string, p: { storeSize?: number; policy?: string }): Promise<{ store: Record<string, unknown> }> {
    return this.request('PATCH', `${lunPath(lun)}/snapshots`, p);
  }

  // ---- clones ----

  listClones<T = unknown>(): Promise<{ clones: T[] }> {
    return this.request('GET', '/v1/clones');
  }
  getClone<T = unknown>(name: string): Promise<{ clone: T }> {
    return this.request('GET', `/v1/clones/${encodeURIComponent(name)}`);
  }
  /** `source`: a LUN name or id, or LUN@SNAP; `rate`: bytes per second (or "64M"). */
  createClone<T = unknown>(p: { name: string; source: string | number; rate?: number | string }): Promise<{ clone: T }> {
    return this.request('POST', '/v1/clones', p);
  }
  setCloneRate<T = unknown>(name: string, rate: number | string): Promise<{ clone: T }> {
    return this.request('PATCH', `/v1/clones/${encodeURIComponent(name)}`, { rate });
  }
  resumeClone<T = unknown>(name: string): Promise<{ clone: T }> {
    return this.request('POST', `/v1/clones/${encodeURIComponent(name)}/resume`, {});
  }
  deleteClone<T = unknown>(name: string, p: { force?: boolean; keepLun?: boolean } = {}): Promise<{ deleted: T }> {
    const q = [p.force ? 'force=true' : '', p.keepLun ? 'keepLun=true' : ''].filter(Boolean).join('&');
    return this.request('DELETE', `/v1/clones/${encodeURIComponent(name)}${q ? `?${q}` : ''}`);
  }

  // ---- mirrors (404 no-mirror-driver when the array has no remote link) ----

  listMirrors(): Promise<{ mirrors: MirrorView[] }> {
    return this.request('GET', '/v1/mirrors');
  }
  getMirror(ref: string): Promise<MirrorView> {
    return this.request('GET', mirrorPath(ref));
  }
  createMirror(p: CreateMirrorRequest): Promise<MirrorView> {
    return this.request('POST', '/v1/mirrors', p);
  }
  addSecondary(ref: string, p: AddSecondaryRequest): Promise<MirrorView> {
    return this.request('POST', mirrorPath(ref, 'secondaries'), p);
  }
  /** `image`: an image id ("bravo:0") or an array name. */
  removeSecondary(ref: string, image: string, p: { force?: boolean } = {}): Promise<MirrorView> {
    return this.request('DELETE', `${mirrorPath(ref, 'secondaries')}/${encodeURIComponent(image)}${p.force ? '?force=true' : ''}`);
  }
  promoteMirror(ref: string, p: { force?: boolean; fromSnapshot?: boolean } = {}): Promise<MirrorView> {
    return this.request('POST', mirrorPath(ref, 'promote'), { ...(p.force ? { force: true } : {}), ...(p.fromSnapshot ? { fromSnapshot: true } : {}) });
  }
  synchronizeMirror(ref: string, p: { image?: string; force?: boolean; checksum?: boolean; full?: boolean } = {}): Promise<MirrorView> {
    return this.request('POST', mirrorPath(ref, 'synchronize'), clean(p));
  }
  fractureMirror(ref: string, p: { image?: string } = {}): Promise<MirrorView> {
    return this.request('POST', mirrorPath(ref, 'fracture'), clean(p));
  }
  activateMirror(ref: string): Promise<MirrorView> {
    return this.request('POST', mirrorPath(ref, 'activate'), {});
  }
  deactivateMirror(ref: string, p: { force?: boolean } = {}): Promise<MirrorView> {
    return this.request('POST', mirrorPath(ref, 'deactivate'), p.force ? { force: true } : {});
  }
  destroyMirror(ref: string): Promise<{ destroyed: { mirrorId: string; name: string } }> {
    return this.request('DELETE', mirrorPath(ref));
  }
  setMirrorAttributes(ref: string, p: ChangeAttributesRequest): Promise<MirrorView> {
    return this.request('PATCH', mirrorPath(ref), p);
  }
  /** Compares every region of the primary and the secondary: can take long (default timeout 1 h). */
  verifyMirror(ref: string, p: { image?: string } = {}, opts: { timeoutMs?: number } = {}): Promise<VerifyReport> {
    return this.request('POST', mirrorPath(ref, 'verify'), clean(p), { timeoutMs: opts.timeoutMs ?? FULL_COPY_TIMEOUT_MS });
  }
  resolveSplitBrain(ref: string, p: { survivor: string }): Promise<MirrorView> {
    return this.request('POST', mirrorPath(ref, 'resolve'), p);
  }

  // ---- consistency groups (404 no-mirror-driver when the array has no remote link) ----

  listGroups(): Promise<{ groups: GroupView[] }> {
    return this.request('GET', '/v1/groups');
  }
  getGroup(ref: string): Promise<GroupView> {
    return this.request('GET', groupPath(ref));
  }
  createGroup(p: CreateGroupRequest): Promise<GroupView> {
    return this.request('POST', '/v1/groups', p);
  }
  /** Leaving a journaling mode waits for the journal to drain (up to 30 s, then bypass). */
  setGroupMode(ref: string, mode: GroupMode, nearSync?: GroupNearSyncRequest): Promise<GroupView> {
    return this.request('POST', groupPath(ref, 'mode'), nearSync ? { mode, nearSync } : { mode }, { timeoutMs: DRAIN_TIMEOUT_MS });
  }
  setGroupAttributes(ref: string, p: GroupSettableRequest): Promise<GroupView> {
    return this.request('PATCH', groupPath(ref), p);
  }
  pauseGroup(ref: string): Promise<GroupView> {
    return this.request('POST', groupPath(ref, 'pause'), {});
  }
  resumeGroup(ref: string): Promise<GroupView> {
    return this.request('POST', groupPath(ref, 'resume'), {});
  }
  bypassGroup(ref: string, on: boolean): Promise<GroupView> {
    return this.request('POST', groupPath(ref, 'bypass'), { on });
  }
  /** Starts a refresh and answers at once; progress: the view's record.refresh. */
  refreshGroup(ref: string): Promise<GroupView> {
    return this.request('POST', groupPath(ref, 'refresh'), {});
  }
  /** Copies the secondary back: answers when done (default timeout 1 h). */
  backfreshGroup(ref: string, p: { from?: string } = {}, opts: { timeoutMs?: number } = {}): Promise<GroupView> {
    return this.request('POST', groupPath(ref, 'backfresh'), clean(p), { timeoutMs: opts.timeoutMs ?? FULL_COPY_TIMEOUT_MS });
  }
  /** Runs on a secondary array of the group. */
  promoteGroup(ref: string, p: { force?: boolean; fromSnapshot?: boolean } = {}): Promise<GroupView> {
    return this.request('POST', groupPath(ref, 'promote'), { ...(p.force ? { force: true } : {}), ...(p.fromSnapshot ? { fromSnapshot: true } : {}) }, { timeoutMs: DRAIN_TIMEOUT_MS });
  }
  /** The qdsinfo report: text and the view it was made from. */
  groupInfo(ref: string): Promise<{ text: string; view: GroupView }> {
    return this.request('GET', groupPath(ref, 'info'));
  }
  /**
   * The performance records, oldest first (on the primary). `since`: ms since the epoch, a
   * duration back from now on the array's clock ("10m"), or an ISO time.
   */
  groupPerf(ref: string, p: { since?: number | string } = {}): Promise<GroupPerfRecords> {
    return this.request('GET', `${groupPath(ref, 'perf')}${p.since !== undefined ? `?since=${encodeURIComponent(String(p.since))}` : ''}`);
  }
  /** Switches to synchronous first (the journal drains), then deletes; the mirrors stay. */
  deleteGroup(ref: string): Promise<{ deleted: { groupId: string; name: string } }> {
    return this.request('DELETE', groupPath(ref), undefined, { timeoutMs: DRAIN_TIMEOUT_MS });
  }

  shutdown(): Promise<unknown> {
    return this.request('POST', '/v1/shutdown');
  }
}

function mirrorPath(ref: string, sub?: string): string {
  return `/v1/mirrors/${encodeURIComponent(ref)}${sub ? `/${sub}` : ''}`;
}

function groupPath(ref: string, sub?: string): string {
  return `/v1/groups/${encodeURIComponent(ref)}${sub ? `/${sub}` : ''}`;
}

/** Drops undefined fields (the API refuses nothing for them, but the body stays minimal). */
function clean<T extends object>(p: T): Partial<T> {
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Beyond this, requests go through node:http (fetch's response-header timeout is 300 s). */
const LONG_REQUEST_MS = 290_000;

function longRequest(url: URL, method: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number): Promise<{ status: number; ok: boolean; text: string }> {
  return new Promise((resolve, reject) => {
    const h = { ...headers, ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}) };
    const req = httpRequest(url, { method, headers: h }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        resolve({ status, ok: status >= 200 && status < 300, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer in ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(e.message), { cause: e }));
    });
    req.end(body);
  });
}

function lunPath(ref: string): string {
  return `/v1/luns/${encodeURIComponent(ref)}`;
}
