/** Routes of the consistency groups: /v1/groups (404 no-mirror-driver on an array without a mirror driver). */
import type { IncomingMessage } from 'node:http';
import { checkName } from '../../array/index.js';
import type { GroupControl } from '../../replication/group/index.js';
import { attributeProblems, parseThrottles, withDefaults, type GroupAttributes, type GroupMode, type NearSyncBounds } from '../../replication/group/index.js';
import { C, checkFields, checkQuery, count, invalid, sizeAtLeast, type Check } from './fields.js';
import { API_VERSION, ApiError, discardBody, drain, readJson, readOptionalJson, route, type Handler, type Route } from './http.js';
import { NO_MIRROR_DRIVER } from './mirrors.js';

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
  'protectResync?': C.boolean,
  'freeze?': C.oneOf('armed', 'off'),
};

const GROUP_ATTRIBUTE_FIELDS: Record<string, Check> = {
  'mode?': C.oneOf('asynchronous', 'near-synchronous', 'synchronous'),
  'writelog?': (v, k) => checkFields(v, WRITELOG_FIELDS, k),
  ...GROUP_SETTABLE,
};

const MAX_DATE_MS = 8.64e15;
const SINCE_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `?since=` of the performance records: ms since the epoch (digits), a duration back from now
 * (`10m`, `30s`, `500ms`, `2h`, `1d`: on this array's clock, the one the records carry), or an
 * ISO time. Absent: null (every record kept).
 */
function sinceParam(url: URL, nowMs: number): number | null {
  const v = url.searchParams.get('since');
  if (v === null) return null;
  const bad = () => invalid(`since must be ms since the epoch, a duration like 10m, 30s or 2h, or an ISO time, not ${JSON.stringify(v)}`);
  let ms = NaN;
  const d = /^(\d+(?:\.\d+)?)(ms|s|min|m|h|d)$/.exec(v);
  if (/^\d{1,16}$/.test(v)) ms = Number(v);
  else if (d) ms = nowMs - Math.round(Number(d[1]) * SINCE_UNIT_MS[d[2]!]!);
  else if (/^\d{4}-\d{2}-\d{2}T/.test(v)) ms = Date.parse(v);
  // beyond what a Date holds (about 275,000 years either side of 1970) there is no time to answer
  if (!(Math.abs(ms) <= MAX_DATE_MS)) throw bad();
  return ms;
}

export function groupRoutes(g: GroupControl | undefined): Route[] {
  const R = route;
  if (!g) {
    const none: Handler = async (req) => {
      await discardBody(req);
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
    R(/^\/v1\/groups\/([^/]+)\/perf$/, {
      // the performance records of both generations, oldest first; on the primary (where they are written)
      GET: async (req, _res, [ref], url) => {
        checkQuery(url, ['since']);
        const sinceMs = sinceParam(url, Date.now());
        await drain(req);
        return g.perf(ref!, sinceMs === null ? {} : { sinceMs });
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
        // force: the members as they are; fromSnapshot: every member rolled back to the group's resync-protection snapshot first
        const b = await body(req, url, { 'force?': C.boolean, 'fromSnapshot?': C.boolean });
        if (b.force && b.fromSnapshot) throw invalid('give force (promote the members as they are) or fromSnapshot (roll them back to the fallback snapshot first), not both');
        req.socket.setTimeout(0);
        return g.promote(ref!, b.force ? { force: true } : b.fromSnapshot ? { fromSnapshot: true } : undefined);
      },
    }),
    R(/^\/v1\/groups\/([^/]+)\/snapshot$/, {
      // every member LUN on this array at one write boundary; a secondary: between two applied batches (groupSeq)
      POST: async (req, res, [ref], url) => {
        checkQuery(url, []);
        const b = checkFields(await readJson(req), { name: C.string });
        const made = await g.snapshot(ref!, b.name as string);
        res.statusCode = 201;
        return made;
      },
    }),
  ];
}
