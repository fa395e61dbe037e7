/** `groups:` of a lab file: the consistency groups `sanbox up` creates after the mirrors. */
import { checkName, formatSize, parseSize } from '../../array/index.js';
import { attributeProblems, parseThrottles, withDefaults, type GroupAttributes, type GroupMode } from '../../replication/group/index.js';
import { isObj, type LabGroup, type LabMirror, type Obj } from './types.js';
import { parseDuration } from './values.js';

const GROUP_KEYS = ['name', 'members', 'mode', 'nearSync', 'writelog', 'throttleEvery', 'throttles', 'perf', 'protectResync', 'freeze'];
const GROUP_MODES: GroupMode[] = ['asynchronous', 'near-synchronous', 'synchronous'];

/**
 * `groups:` — each { name, members: [mirror names of mirrors:], mode, nearSync: { maxEntries,
 * maxBytes, lowEntries, lowBytes }, writelog: { capacity, extensions, extensionSize, extendAt },
 * throttleEvery, throttles (parseThrottles), perf: { every, maxSize }, protectResync, freeze: armed | off }. Every problem is
 * reported: unknown keys, members that are not mirrors of the file, members with different primary
 * or secondary arrays, a mirror in two groups, bad sizes, counts, durations and throttles.
 */
export function parseGroups(v: unknown, mirrors: LabMirror[], rawMirrors: unknown, problems: string[]): LabGroup[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    problems.push('"groups" must be a list');
    return [];
  }
  // A mirror of the file that is invalid has its own problems; do not also call it missing.
  const declared = new Set<string>();
  if (Array.isArray(rawMirrors)) for (const m of rawMirrors) if (isObj(m) && typeof m.name === 'string') declared.add(m.name);
  const out: LabGroup[] = [];
  const names = new Set<string>();
  /** mirror name -> the group it is in */
  const taken = new Map<string, string>();
  v.forEach((g: unknown, i: number) => {
    const where = `groups[${i}]`;
    if (!isObj(g)) return void problems.push(`${where} must be a mapping (${GROUP_KEYS.join(', ')})`);
    const before = problems.length;
    for (const k of Object.keys(g)) if (!GROUP_KEYS.includes(k)) problems.push(`${where}: unknown key "${k}" (expected ${GROUP_KEYS.join(', ')})`);
    const bad = checkName(g.name, `${where}.name`);
    if (bad) problems.push(g.name === undefined ? `${where}.name is required (the group's name on the arrays)` : bad);
    const at = bad ? where : `group ${g.name as string}`;
    if (!bad) {
      if (names.has(g.name as string)) problems.push(`${at}: duplicate group name`);
      names.add(g.name as string);
    }

    // members
    const members: LabMirror[] = [];
    let memberProblem = false;
    if (!Array.isArray(g.members) || g.members.length === 0) {
      problems.push(`${at}.members must be a non-empty list of mirror names (from mirrors:), e.g. [m1, m2]`);
      memberProblem = true;
    } else {
      const seen = new Set<string>();
      g.members.forEach((x: unknown, j: number) => {
        const mw = `${at}.members[${j}]`;
        if (typeof x !== 'string' || x === '') return void ((memberProblem = true), problems.push(`${mw} must be a mirror name, not ${JSON.stringify(x)}`));
        if (seen.has(x)) return void ((memberProblem = true), problems.push(`${mw}: mirror ${x} is listed twice`));
        seen.add(x);
        const m = mirrors.find((y) => y.name === x);
        if (!m) {
          memberProblem = true;
          if (!declared.has(x)) problems.push(`${mw}: no mirror ${JSON.stringify(x)} under mirrors: (mirrors: ${mirrors.map((y) => y.name).join(', ') || 'none'})`);
          return;
        }
        const prev = taken.get(x);
        if (prev !== undefined) problems.push(`${mw}: mirror ${x} is already in group ${prev} (a mirror belongs to at most one group)`);
        else taken.set(x, bad ? where : (g.name as string));
        members.push(m);
      });
    }
    const secs = (m: LabMirror) => [...new Set(m.secondaries.map((s) => s.array))].sort();
    if (members.length > 1) {
      const primaries = [...new Set(members.map((m) => m.primary.array))];
      if (primaries.length > 1) problems.push(`${at}.members: every member must have its primary on the same array (${members.map((m) => `${m.name}: ${m.primary.array}`).join(', ')})`);
      const s0 = secs(members[0]!).join(',');
      if (members.some((m) => secs(m).join(',') !== s0)) {
        problems.push(`${at}.members: every member must replicate to the same arrays (${members.map((m) => `${m.name}: ${secs(m).join(', ')}`).join('; ')})`);
      }
    }

    const attributes: Partial<GroupAttributes> = {};
    const size = (x: unknown, what: string, min: number, multipleOf = 1): number | undefined => {
      const n = typeof x === 'string' || typeof x === 'number' ? parseSize(x) : undefined;
      if (n === undefined || n < min || n % multipleOf !== 0) {
        problems.push(`${at}.${what} must be a size like 64M${min > 0 ? ` of at least ${formatSize(min)}` : ''}${multipleOf > 1 ? ` (a multiple of ${multipleOf} bytes)` : ''}, not ${JSON.stringify(x)}`);
        return undefined;
      }
      return n;
    };
    const int = (x: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined => {
      if (!Number.isSafeInteger(x) || (x as number) < min || (x as number) > max) {
        problems.push(`${at}.${what} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, not ${JSON.stringify(x)}`);
        return undefined;
      }
      return x as number;
    };
    const duration = (x: unknown, what: string): number | undefined => {
      const ms = parseDuration(x);
      if (ms === undefined || ms < 100) {
        problems.push(`${at}.${what} must be a duration of at least 100ms like 10s, 500ms or 1m (a bare number is seconds), not ${JSON.stringify(x)}`);
        return undefined;
      }
      return ms;
    };
    const sub = (key: string, keys: string[]): Obj | undefined => {
      const x = g[key];
      if (x === undefined || x === null) return undefined;
      if (!isObj(x)) return void problems.push(`${at}.${key} must be a mapping (${keys.join(', ')})`);
      for (const k of Object.keys(x)) if (!keys.includes(k)) problems.push(`${at}.${key}: unknown key "${k}" (expected ${keys.join(', ')})`);
      return x;
    };

    let mode: GroupMode = 'asynchronous';
    if (g.mode !== undefined) {
      if (!GROUP_MODES.includes(g.mode as GroupMode)) problems.push(`${at}.mode must be asynchronous, near-synchronous or synchronous, not ${JSON.stringify(g.mode)}`);
      else mode = attributes.mode = g.mode as GroupMode;
    }

    const ns = sub('nearSync', ['maxEntries', 'maxBytes', 'lowEntries', 'lowBytes']);
    if (ns) {
      const n: Partial<GroupAttributes['nearSync']> = {};
      if (ns.maxEntries !== undefined) n.maxEntries = int(ns.maxEntries, 'nearSync.maxEntries', 0);
      if (ns.maxBytes !== undefined) n.maxBytes = size(ns.maxBytes, 'nearSync.maxBytes', 0);
      if (ns.lowEntries !== undefined) n.lowEntries = int(ns.lowEntries, 'nearSync.lowEntries', 0);
      if (ns.lowBytes !== undefined) n.lowBytes = size(ns.lowBytes, 'nearSync.lowBytes', 0);
      if (!(Object.values(n) as unknown[]).includes(undefined)) {
        const maxE = n.maxEntries ?? 0;
        const maxB = n.maxBytes ?? 0;
        if (maxE === 0 && maxB === 0) problems.push(`${at}.nearSync needs a bound: maxEntries and/or maxBytes above 0`);
        if (n.lowEntries !== undefined && (maxE === 0 ? n.lowEntries > 0 : n.lowEntries >= maxE)) problems.push(`${at}.nearSync.lowEntries (${n.lowEntries}) must be below maxEntries (${maxE})`);
        if (n.lowBytes !== undefined && (maxB === 0 ? n.lowBytes > 0 : n.lowBytes >= maxB)) problems.push(`${at}.nearSync.lowBytes (${formatSize(n.lowBytes)}) must be below maxBytes (${formatSize(maxB)})`);
        // An unbounded measure has no low mark.
        attributes.nearSync = { maxEntries: maxE, maxBytes: maxB, ...(n.lowEntries !== undefined ? { lowEntries: n.lowEntries } : maxE === 0 ? { lowEntries: 0 } : {}), ...(n.lowBytes !== undefined ? { lowBytes: n.lowBytes } : maxB === 0 ? { lowBytes: 0 } : {}) } as GroupAttributes['nearSync'];
      }
    } else if (mode === 'near-synchronous' && g.nearSync === undefined) {
      problems.push(`${at}: near-synchronous needs nearSync: { maxEntries: N and/or maxBytes: SIZE } (the backlog at which host writes wait)`);
    }

    const wl = sub('writelog', ['capacity', 'extensions', 'extensionSize', 'extendAt']);
    if (wl) {
      const w: Partial<GroupAttributes['writelog']> = {};
      if (wl.capacity !== undefined) w.capacity = size(wl.capacity, 'writelog.capacity', 64 * 1024, 8);
      if (wl.extensions !== undefined) w.extensions = int(wl.extensions, 'writelog.extensions', 0, 128);
      if (wl.extensionSize !== undefined) w.extensionCapacity = size(wl.extensionSize, 'writelog.extensionSize', 64 * 1024, 8);
      if (wl.extendAt !== undefined) {
        const x = typeof wl.extendAt === 'string' && /^\d+%$/.test(wl.extendAt) ? Number(wl.extendAt.slice(0, -1)) : wl.extendAt;
        w.extendAtPercent = int(x, 'writelog.extendAt (percent in use)', 1, 100);
      }
      attributes.writelog = w as GroupAttributes['writelog'];
    }

    if (g.throttleEvery !== undefined) attributes.throttleEveryMs = duration(g.throttleEvery, 'throttleEvery');
    if (g.throttles !== undefined && g.throttles !== null) {
      const t = parseThrottles(g.throttles, `${at}.throttles`);
      problems.push(...t.problems);
      attributes.throttles = t.throttles;
    }
    const perf = sub('perf', ['every', 'maxSize']);
    if (perf) {
      if (perf.every !== undefined) attributes.perfEveryMs = duration(perf.every, 'perf.every');
      if (perf.maxSize !== undefined) attributes.perfMaxBytes = size(perf.maxSize, 'perf.maxSize', 4096);
    }

    if (g.protectResync !== undefined) {
      if (typeof g.protectResync !== 'boolean') problems.push(`${at}.protectResync must be true or false (snapshot the secondaries before a resync rewrites them; default true)`);
      else attributes.protectResync = g.protectResync;
    }
    if (g.freeze !== undefined) {
      if (g.freeze !== 'armed' && g.freeze !== 'off') problems.push(`${at}.freeze must be armed or off, not ${JSON.stringify(g.freeze)} (synchronous mode: when one member stops replicating to an array, every member stops sending to it; default off)`);
      else attributes.freeze = g.freeze;
    }
    if (problems.length > before || memberProblem || members.length === 0) return;
    // Whatever the driver would still refuse (a safety net: the checks above cover its rules).
    const left = attributeProblems(withDefaults(attributes));
    if (left.length) return void problems.push(...left.map((p) => `${at}: ${p}`));
    out.push({ name: g.name as string, members: members.map((m) => m.name), primary: members[0]!.primary.array, secondaries: secs(members[0]!), attributes });
  });
  return out;
}
