/** Routes of the mirror driver: /v1/mirrors (404 no-mirror-driver on an array without one). */
import type { IncomingMessage } from 'node:http';
import { checkName } from '../../array/index.js';
import type { AddSecondaryParams, ChangeAttributesParams, CreateMirrorParams, MirrorControl } from '../../replication/mirror/types.js';
import { MAX_MAP_BUCKETS } from '../../replication/mirror/index.js';
import { C, checkFields, checkQuery, invalid, optional, type Check } from './fields.js';
import { API_VERSION, ApiError, discardBody, drain, parseBool, readJson, readOptionalJson, route, type Handler, type Route } from './http.js';

const ATTRIBUTE_FIELDS: Record<string, Check> = {
  activationPolicy: C.oneOf('automatic', 'manual'),
  minImagesRequired: C.limit,
  maxMissingImages: C.limit,
  writePolicy: C.oneOf('synchronous', 'asynchronous', 'near-synchronous'),
  writeBacklogSize: C.size,
  syncPriority: C.oneOf('low', 'medium', 'high'),
  syncRate: C.rate,
  allowSecondaryReads: C.boolean,
  protectResync: C.boolean,
  resyncChecksums: C.oneOf('auto', 'always', 'never'),
  syncController: C.oneOf('fixed', 'adaptive'),
};

export const NO_MIRROR_DRIVER = 'this array runs no mirror driver (no remoteLink configured)';

export function mirrorRoutes(m: MirrorControl | undefined): Route[] {
  const R = route;
  if (!m) {
    const none: Handler = async (req) => {
      await discardBody(req);
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
          'imageResyncChecksums?': (v, k) => (v === null ? null : C.oneOf('auto', 'always', 'never')(v, k)),
        });
        if (Object.keys(b).length === 0) throw invalid('nothing to change: give mirror attributes, or image with recoveryPolicy / imageSyncRate');
        const perImage = b.recoveryPolicy !== undefined || b.imageSyncRate !== undefined || b.imageResyncChecksums !== undefined;
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
    R(/^\/v1\/mirrors\/([^/]+)\/regions$/, {
      GET: async (req, _res, [ref], url) => {
        checkQuery(url, ['buckets']);
        await drain(req);
        return m.regionMap(ref!, bucketsOf(url));
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
        // force: the image as it is; fromSnapshot: rolled back to its resync-protection snapshot first
        const b = await body(req, url, { 'force?': C.boolean, 'fromSnapshot?': C.boolean });
        if (b.force && b.fromSnapshot) throw invalid('give force (promote the image as it is) or fromSnapshot (roll it back to its fallback snapshot first), not both');
        // a rollback rewrites every region changed since the snapshot: no idle time-out
        if (b.fromSnapshot) req.socket.setTimeout(0);
        return m.promote(ref!, b.force ? { force: true } : b.fromSnapshot ? { fromSnapshot: true } : undefined);
      },
    }),
    R(/^\/v1\/mirrors\/([^/]+)\/synchronize$/, {
      POST: async (req, _res, [ref], url) => {
        // checksum: compare checksums everywhere, send what differs; full: every allocated region
        const b = await body(req, url, { 'image?': C.string, 'force?': C.boolean, 'checksum?': C.boolean, 'full?': C.boolean });
        const opts = { ...(b.force ? { force: true } : {}), ...(b.checksum ? { checksum: true } : {}), ...(b.full ? { full: true } : {}) };
        return m.synchronize(ref!, b.image as string | undefined, Object.keys(opts).length ? opts : undefined);
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
    R(/^\/v1\/mirrors\/([^/]+)\/heartbeat$/, {
      // a heartbeat mirror: while installed, the verbs that would stop its heartbeats are refused (409 heartbeat-installed)
      POST: async (req, _res, [ref], url) => {
        checkQuery(url, []);
        const b = checkFields(await readJson(req), { installed: C.boolean, by: C.string });
        if (!m.heartbeat) throw new ApiError(501, 'unsupported', 'this mirror driver has no heartbeat mirrors');
        return m.heartbeat(ref!, { installed: b.installed as boolean, by: b.by as string });
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

/** `?buckets=N` of a region map: 1..MAX_MAP_BUCKETS, 256 when absent. */
function bucketsOf(url: URL): number {
  const raw = url.searchParams.get('buckets');
  if (raw === null) return 256;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_MAP_BUCKETS) throw invalid(`buckets must be a whole number from 1 to ${MAX_MAP_BUCKETS}, not ${JSON.stringify(raw)}`);
  return n;
}
