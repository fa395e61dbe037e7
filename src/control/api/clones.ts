/**
 * Routes of the clones: /v1/clones (list, create) and /v1/clones/:name (status, rate, delete,
 * resume). 501 on an array that has no clone manager (a two-SP array in this release).
 */
import type { CloneManager } from '../../clone/index.js';
import { C, checkFields, checkQuery, invalid, type Check } from './fields.js';
import { API_VERSION, ApiError, discardBody, drain, parseBool, readJson, readOptionalJson, route, type Handler, type Route } from './http.js';

export const NO_CLONES = 'this API server was started without the array\'s clones';

/** A LUN name or id, or LUN@SNAP. */
const source: Check = (v, k) => {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && v !== '' && v.length <= 130) return v;
  throw invalid(`${k} must be a LUN name or id, or LUN@SNAPSHOT`);
};

export function cloneRoutes(m: CloneManager | undefined): Route[] {
  const R = route;
  if (!m) {
    const none: Handler = async (req) => {
      await discardBody(req);
      throw new ApiError(501, 'unsupported', NO_CLONES);
    };
    return [R(/^\/v1\/clones(?:\/.*)?$/, { GET: none, POST: none, PATCH: none, DELETE: none })];
  }
  return [
    R(/^\/v1\/clones$/, {
      GET: async (req, _res, _p, url) => {
        checkQuery(url, []);
        await drain(req);
        return { clones: m.list() };
      },
      POST: async (req, res, _p, url) => {
        checkQuery(url, []);
        const b = checkFields(await readJson(req), { name: C.string, source, 'rate?': C.rate });
        const clone = await m.create(b.name as string, b.source as string | number, b.rate !== undefined ? { rateBytesPerSec: b.rate as number } : {});
        res.statusCode = 201;
        res.setHeader('Location', `/${API_VERSION}/clones/${encodeURIComponent(clone.name)}`);
        return { clone };
      },
    }),
    R(/^\/v1\/clones\/([^/]+)$/, {
      GET: async (req, _res, [name], url) => {
        checkQuery(url, []);
        await drain(req);
        return { clone: m.get(name!) };
      },
      PATCH: async (req, _res, [name], url) => {
        checkQuery(url, []);
        const b = checkFields(await readJson(req), { rate: C.rate });
        return { clone: await m.setRate(name!, b.rate as number) };
      },
      DELETE: async (req, _res, [name], url) => {
        checkQuery(url, ['force', 'keepLun']);
        const force = parseBool(url.searchParams.get('force'), 'force');
        const keepLun = parseBool(url.searchParams.get('keepLun'), 'keepLun');
        await drain(req);
        return { deleted: await m.delete(name!, { force, keepLun }) };
      },
    }),
    R(/^\/v1\/clones\/([^/]+)\/resume$/, {
      POST: async (req, _res, [name], url) => {
        checkQuery(url, []);
        checkFields((await readOptionalJson(req)) ?? {}, {});
        return { clone: await m.resume(name!) };
      },
    }),
  ];
}
