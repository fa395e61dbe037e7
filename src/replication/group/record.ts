import { DEFAULT_GROUP_ATTRIBUTES, GROUP_FORMAT, GROUP_FREEZE_VALUES, type GroupAttributes, type GroupRecord, type NearSyncBounds, type WritelogConfig } from './types.js';

export class GroupError extends Error {
  constructor(
    readonly code: 'invalid' | 'not-found' | 'exists' | 'state' | 'not-primary' | 'unreachable' | 'inconsistent' | 'unsupported',
    message: string,
  ) {
    super(message);
    this.name = 'GroupError';
  }
  get httpStatus(): number {
    return this.code === 'not-found' ? 404 : this.code === 'invalid' ? 400 : this.code === 'unreachable' ? 503 : this.code === 'unsupported' ? 501 : 409;
  }
}

const int = (x: unknown, min: number, max = Number.MAX_SAFE_INTEGER) => typeof x === 'number' && Number.isSafeInteger(x) && x >= min && x <= max;

/** Checks attributes (a whole set); returns the problems, empty when valid. */
export function attributeProblems(a: GroupAttributes): string[] {
  const p: string[] = [];
  if (!['synchronous', 'asynchronous', 'near-synchronous'].includes(a.mode)) p.push(`mode must be synchronous, asynchronous or near-synchronous, not ${JSON.stringify(a.mode)}`);
  const n = a.nearSync as NearSyncBounds;
  if (!n || !int(n.maxEntries, 0) || !int(n.maxBytes, 0) || !int(n.lowEntries, 0) || !int(n.lowBytes, 0)) p.push('nearSync: maxEntries, maxBytes, lowEntries, lowBytes must be integers >= 0');
  else {
    if (a.mode === 'near-synchronous' && n.maxEntries === 0 && n.maxBytes === 0) p.push('near-synchronous needs a bound: nearSync.maxEntries or nearSync.maxBytes');
    if (n.maxEntries && n.lowEntries >= n.maxEntries) p.push('nearSync.lowEntries must be below maxEntries');
    if (n.maxBytes && n.lowBytes >= n.maxBytes) p.push('nearSync.lowBytes must be below maxBytes');
  }
  const w = a.writelog as WritelogConfig;
  if (!w || !int(w.capacity, 64 * 1024) || w.capacity % 8 !== 0) p.push('writelog.capacity must be at least 64K and a multiple of 8 bytes');
  else if (!int(w.extensions, 0, 128) || !int(w.extensionCapacity, 64 * 1024) || w.extensionCapacity % 8 !== 0 || !int(w.extendAtPercent, 1, 100))
    p.push('writelog: extensions 0..128, extensionCapacity >= 64K (multiple of 8), extendAtPercent 1..100');
  if (!Array.isArray(a.throttles)) p.push('throttles must be a list');
  if (!int(a.throttleEveryMs, 100)) p.push('throttleEveryMs must be an integer >= 100');
  if (!int(a.perfEveryMs, 100)) p.push('perfEveryMs must be an integer >= 100');
  if (!int(a.perfMaxBytes, 4096)) p.push('perfMaxBytes must be an integer >= 4096');
  if (typeof a.protectResync !== 'boolean') p.push('protectResync must be true or false');
  if (!GROUP_FREEZE_VALUES.includes(a.freeze)) p.push(`freeze must be armed or off, not ${JSON.stringify(a.freeze)}`);
  return p;
}

/** Fills defaults for near-synchronous low marks: half the bounds. */
export function withDefaults(a: Partial<GroupAttributes>): GroupAttributes {
  const nearSync = { ...DEFAULT_GROUP_ATTRIBUTES.nearSync, ...(a.nearSync ?? {}) };
  if (a.nearSync && a.nearSync.lowEntries === undefined) nearSync.lowEntries = Math.floor(nearSync.maxEntries / 2);
  if (a.nearSync && a.nearSync.lowBytes === undefined) nearSync.lowBytes = Math.floor(nearSync.maxBytes / 2);
  return {
    ...DEFAULT_GROUP_ATTRIBUTES,
    ...a,
    nearSync,
    writelog: { ...DEFAULT_GROUP_ATTRIBUTES.writelog, ...(a.writelog ?? {}) },
    throttles: a.throttles ?? [],
  };
}

export function newGroupRecord(groupId: string, name: string, members: string[], attrs: GroupAttributes): GroupRecord {
  return { format: GROUP_FORMAT, version: 1, groupId, name, members, epoch: 0, generation: 1, paused: false, bypass: { on: false, reason: null, since: null }, refresh: null, ...attrs };
}

/** Validates a record read from disk or the wire (throws GroupError 'invalid'). */
export function parseGroupRecord(v: unknown): GroupRecord {
  const bad = (why: string): never => {
    throw new GroupError('invalid', `invalid group record: ${why}`);
  };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('not an object');
  const r = v as GroupRecord;
  if (r.format !== GROUP_FORMAT || r.version !== 1) bad(`format ${JSON.stringify(r.format)} version ${JSON.stringify(r.version)}`);
  if (typeof r.groupId !== 'string' || !r.groupId || typeof r.name !== 'string' || !r.name) bad('groupId/name');
  if (!Array.isArray(r.members) || r.members.length === 0 || r.members.some((m) => typeof m !== 'string')) bad('members');
  if (!int(r.generation, 1) || !int(r.epoch, 0)) bad('generation/epoch');
  if (typeof r.paused !== 'boolean' || typeof r.bypass !== 'object' || r.bypass === null || typeof r.bypass.on !== 'boolean') bad('paused/bypass');
  if (r.protectResync === undefined) r.protectResync = true; // a record from before the attribute
  if (r.freeze === undefined) r.freeze = 'off'; // likewise
  const p = attributeProblems(r);
  if (p.length) bad(p.join('; '));
  return r;
}
