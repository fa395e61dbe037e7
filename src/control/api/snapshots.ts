/**
 * Routes of the snapshots: /v1/snapshots (every LUN's), /v1/luns/:lun/snapshots (one LUN's,
 * create, delete, rollback, store settings) and /v1/snapshot-groups (several LUNs at one write
 * boundary). 501 on an array that has no snapshot manager (a two-SP array in this release).
 */
import type { SnapshotManager } from '../../snapshot/index.js';
import { C, checkFields, checkQuery } from './fields.js';
import { API_VERSION, ApiError, discardBody, drain, parseBool, readJson, readOptionalJson, route, type Handler, type Route } from './http.js';

export const NO_SNAPSHOTS = 'this API server was started without the array\'s snapshots';

const lunList = (v: unknown, k: string): unknown => {
  if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string' && typeof x !== 'number')) throw new ApiError(400, 'invalid-argument', `${k} must be a non-empty list of LUN names or ids`);
  return v;
};

export function snapshotRoutes(m: SnapshotManager | undefined): Route[] {
  const R = route;
  if (!m) {
    const none: Handler = async (req) => {
      await discardBody(req);
      throw new ApiError(501, 'unsupported', NO_SNAPSHOTS);
    };
    return [
      R(/^\/v1\/snapshots$/, { GET: none }),
      R(/^\/v1\/snapshot-groups$/, { POST: none }),
      R(/^\/v1\/luns\/[^/]+\/snapshots(?:\/.*)?$/, { GET: none, POST: none, PATCH: none, DELETE: none }),
    ];
  }
  const enc = encodeURIComponent;
  return [
    R(/^\/v1\/snapshots$/, {
      GET: async (req, _res, _p, url) => {
        checkQuery(url, []);
        await drain(req);
        return { snapshots: m.list() };
      },
    }),
    R(/^\/v1\/snapshot-groups$/, {
      POST: async (req, res, _p, url) => {
        checkQuery(url, []);
        const b = checkFields(await readJson(req), { luns: lunList, name: C.string, 'group?': C.string });
        const made = await m.create(b.luns as Array<string | number>, b.name as string, { kind: 'group', ...(b.group ? { group: b.group as string } : {}) });
        res.statusCode = 201;
        return made;
      },
    }),
    R(/^\/v1\/luns\/([^/]+)\/snapshots$/, {
      GET: async (req, _res, [lun], url) => {
        checkQuery(url, []);
        await drain(req);
        return { snapshots: m.list(lun!), store: m.storeOf(lun!) };
      },
      POST: async (req, res, [lun], url) => {
        checkQuery(url, []);
        const b = checkFields(await readJson(req), { name: C.string, 'note?': C.string });
        const made = await m.create([lun!], b.name as string, b.note ? { note: b.note as string } : {});
        res.statusCode = 201;
        res.setHeader('Location', `/${API_VERSION}/luns/${enc(lun!)}/snapshots/${enc(b.name as string)}`);
        return { snapshot: made.snapshots[0], pauseMs: made.pauseMs };
      },
      PATCH: async (req, _res, [lun], url) => {
        checkQuery(url, []);
        const b = checkFields(await readJson(req), { 'storeSize?': C.size, 'policy?': C.oneOf('invalidate-oldest', 'refuse-writes') });
        const settings = await m.configure(lun!, { ...(b.storeSize !== undefined ? { storeBytes: b.storeSize as number } : {}), ...(b.policy ? { policy: b.policy as 'invalidate-oldest' | 'refuse-writes' } : {}) });
        return { store: { ...m.storeOf(lun!), ...settings } };
      },
    }),
    R(/^\/v1\/luns\/([^/]+)\/snapshots\/([^/]+)$/, {
      GET: async (req, _res, [lun, name], url) => {
        checkQuery(url, []);
        await drain(req);
        return { snapshot: m.get(lun!, name!) };
      },
      DELETE: async (req, _res, [lun, name], url) => {
        checkQuery(url, ['force']);
        const force = parseBool(url.searchParams.get('force'), 'force');
        await drain(req);
        return { deleted: await m.delete(lun!, name!, { force }) };
      },
    }),
    R(/^\/v1\/luns\/([^/]+)\/snapshots\/([^/]+)\/rollback$/, {
      POST: async (req, _res, [lun, name], url) => {
        checkQuery(url, []);
        checkFields((await readOptionalJson(req)) ?? {}, {});
        return { rolledBack: await m.rollback(lun!, name!) };
      },
    }),
  ];
}
