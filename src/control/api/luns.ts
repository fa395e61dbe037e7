/** LUNs as the API shows them (with their NBD URIs, and SP paths on a two-SP array), and the /v1/luns routes. */
import type { IncomingMessage } from 'node:http';
import type { LunInfo, StorageArray } from '../../array/index.js';
import { isWildcard, nbdUri, type NbdEndpoint } from './address.js';
import type { ChassisControl } from './chassis.js';
import { C, checkBody, checkFields, invalid } from './fields.js';
import { API_VERSION, ApiError, drain, parseBool, readJson, route, type Route } from './http.js';

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
  /** Fenced: host writes refused (`POST /v1/luns/REF/fence`); absent when not. */
  fenced?: { reason: string; by: string; sinceMs: number };
}

/** Builds LUN views: the URIs a client can use, seen from the address it used to reach the API. */
export class LunViews {
  constructor(
    private readonly nbd: (() => NbdEndpoint[]) | undefined,
    private readonly chassis: ChassisControl | undefined,
  ) {}

  uriHosts(req: IncomingMessage): NbdEndpoint[] {
    const eps = this.nbd?.() ?? [];
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
      return { host, port: ep.port, ...(ep.tls ? { tls: ep.tls } : {}) };
    });
  }

  view(l: LunInfo, req: IncomingMessage): LunView {
    const eps = l.state === 'online' ? this.uriHosts(req) : [];
    const ch = this.chassis;
    if (ch) {
      const x = ch.lunView(l.id);
      const sps = this.nbd?.() ?? [];
      return {
        ...this.baseView(l, eps),
        ...x,
        state: x.cacheDirty ? 'cache-dirty' : l.state,
        paths: eps.map((ep, i) => {
          const sp = (sps[i] as { sp?: string } | undefined)?.sp ?? String(i);
          return { sp, uri: nbdUri(ep.host, ep.port, l.name, ep.tls), optimized: sp === x.currentOwner };
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
      uris: eps.map((ep) => nbdUri(ep.host, ep.port, l.name, ep.tls)),
      size: l.size,
      blockSize: l.blockSize,
      image: l.imagePath,
      state: l.state,
      ...(l.problem ? { problem: l.problem } : {}),
      readOnly: l.readOnly,
      sessions: l.sessions,
      created: l.created,
      ...(l.fenced ? { fenced: { ...l.fenced } } : {}),
    };
  }
}

/**
 * The body of `POST /v1/luns/REF/fence`: `{fenced: true, reason, by}` or `{fenced: false, by}`;
 * anything else is a 400 and nothing changes.
 */
export function fenceBody(body: unknown): { fence: { reason: string; by: string } | null; by: string } {
  const b = checkFields(body, { fenced: C.boolean, 'reason?': C.string, by: C.string });
  const by = b.by as string;
  if (!b.fenced) {
    if (b.reason !== undefined) throw invalid('reason goes with fenced: true (lifting a fence takes {"fenced": false, "by"})');
    return { fence: null, by };
  }
  if (b.reason === undefined) throw invalid('missing field reason: say why the LUN is fenced ({"fenced": true, "reason", "by"})');
  return { fence: { reason: b.reason as string, by }, by };
}

/** /v1/luns: list, create, show, delete, grow, fence. */
export function lunRoutes(a: StorageArray, views: LunViews): Route[] {
  const R = route;
  return [
    R(/^\/v1\/luns$/, {
      GET: (req) => ({ luns: a.listLuns().map((l) => views.view(l, req)) }),
      POST: async (req, res) => {
        const body = await readJson(req);
        const { name, size, blockSize } = checkBody(body, { name: 'string', size: 'size', blockSize: 'number?' });
        const lun = await a.createLun({ name: name as string, size: size as number, blockSize: blockSize as number | undefined });
        res.statusCode = 201;
        res.setHeader('Location', `/${API_VERSION}/luns/${lun.id}`);
        return { lun: views.view(lun, req) };
      },
    }),
    R(/^\/v1\/luns\/([^/]+)$/, {
      GET: (req, _res, [ref]) => {
        const lun = a.getLun(ref!);
        if (!lun) throw new ApiError(404, 'not-found', `no LUN ${JSON.stringify(ref)} in array ${a.name}`);
        return { lun: views.view(lun, req) };
      },
      DELETE: async (req, _res, [ref], url) => {
        const force = parseBool(url.searchParams.get('force'), 'force');
        await drain(req);
        const lun = await a.deleteLun(ref!, { force });
        return { deleted: views.view(lun, req) };
      },
    }),
    R(/^\/v1\/luns\/([^/]+)\/fence$/, {
      // host writes, trims and zeroes refused while fenced (src/block/admission.ts fenceRefusal)
      POST: async (req, _res, [ref]) => {
        const { fence, by } = fenceBody(await readJson(req));
        return { lun: views.view(await a.fenceLun(ref!, fence, by), req) };
      },
    }),
    R(/^\/v1\/luns\/([^/]+)\/grow$/, {
      // {"size": SIZE}: the new size; {"by": SIZE}: how much to add, applied by the array under
      // its serialization of LUN changes (concurrent relative grows each add theirs).
      POST: async (req, _res, [ref]) => {
        const body = await readJson(req);
        const obj = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
        const given = (k: string): boolean => obj !== undefined && Object.hasOwn(obj, k) && obj[k] !== undefined;
        if (given('size') && given('by')) throw new ApiError(400, 'invalid-argument', 'give size (the new size) or by (how much to add), not both');
        if (obj && !given('size') && !given('by')) throw new ApiError(400, 'invalid-argument', 'give size (the new size) or by (how much to add)');
        if (given('by')) {
          const v = obj!.by;
          if ((typeof v === 'number' && v <= 0) || (typeof v === 'string' && /^\s*-/.test(v))) {
            throw new ApiError(400, 'invalid-argument', `by must be greater than 0: a LUN can only grow (asked ${JSON.stringify(v)})`);
          }
          const { by } = checkBody(body, { by: 'size' });
          return { lun: views.view(await a.growLun(ref!, { by: by as number }), req) };
        }
        const { size } = checkBody(body, { size: 'size' });
        const lun = await a.growLun(ref!, size as number);
        return { lun: views.view(lun, req) };
      },
    }),
  ];
}
