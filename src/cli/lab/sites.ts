/**
 * `sites:` and `restart:` of a lab file.
 *
 *     sites:                          # optional; an array in no site is its own site
 *       - { name: east, arrays: [alpha] }
 *       - { name: west, arrays: [bravo, charlie] }
 *     restart: never                  # default: a crashed array waits for the operator
 *     restart: on-failure             # or { policy: on-failure, backoffMs: 1000, limit: 3 }
 */
import { checkName } from '../../array/index.js';
import { isObj, type LabArray, type LabSite, type RestartPolicy } from './types.js';

export const DEFAULT_RESTART_POLICY: RestartPolicy = { mode: 'never', backoffMs: 1000, limit: 3 };
/** Longest backoff a lab file may ask for. */
const MAX_BACKOFF_MS = 3_600_000;

/** The declared sites, then one implicit site per array in none; every problem is listed. */
export function parseSites(v: unknown, arrays: LabArray[], problems: string[]): LabSite[] {
  const sites: LabSite[] = [];
  const arrayNames = arrays.map((a) => a.name);
  const siteOf = new Map<string, string>();
  if (v !== undefined && !Array.isArray(v)) problems.push('"sites" must be a list like [{ name: east, arrays: [alpha] }]');
  const names = new Set<string>();
  (Array.isArray(v) ? v : []).forEach((s: unknown, i: number) => {
    const where = `sites[${i}]`;
    if (!isObj(s)) return void problems.push(`${where} must be a mapping like { name: east, arrays: [alpha] }`);
    for (const k of Object.keys(s)) if (k !== 'name' && k !== 'arrays') problems.push(`${where}: unknown key "${k}" (expected name, arrays)`);
    const bad = checkName(s.name, `${where}.name`);
    if (bad) problems.push(bad);
    const at = bad ? where : `site ${s.name as string}`;
    if (!bad) {
      if (names.has(s.name as string)) problems.push(`${at}: duplicate site name`);
      names.add(s.name as string);
    }
    const members: string[] = [];
    if (!Array.isArray(s.arrays) || s.arrays.length === 0) problems.push(`${at}.arrays must be a non-empty list of array names`);
    else
      for (const n of s.arrays) {
        if (typeof n !== 'string' || !arrayNames.includes(n)) {
          problems.push(`${at}.arrays: no array ${JSON.stringify(n)} in this lab (arrays: ${arrayNames.join(', ')})`);
          continue;
        }
        const prev = siteOf.get(n);
        if (prev !== undefined) problems.push(`${at}.arrays: array ${n} is already in site ${prev} (an array is in one site)`);
        else {
          siteOf.set(n, bad ? where : (s.name as string));
          members.push(n);
        }
      }
    if (!bad) sites.push({ name: s.name as string, arrays: members, declared: true });
  });
  for (const a of arrays) {
    if (siteOf.has(a.name)) continue;
    if (names.has(a.name)) problems.push(`site ${a.name}: the name is taken by array ${a.name}, which is in no site and so is its own site (put it in the site, or rename the site)`);
    else sites.push({ name: a.name, arrays: [a.name], declared: false });
  }
  return sites;
}

/** `restart:` — never | on-failure | { policy, backoffMs, limit }. */
export function parseRestart(v: unknown, problems: string[]): RestartPolicy {
  const out: RestartPolicy = { ...DEFAULT_RESTART_POLICY };
  if (v === undefined) return out;
  const mode = (m: unknown, at: string) => {
    if (m === 'never' || m === 'on-failure') out.mode = m;
    else problems.push(`${at} must be never or on-failure, not ${JSON.stringify(m)}`);
  };
  if (!isObj(v)) {
    mode(v, 'restart');
    return out;
  }
  for (const k of Object.keys(v)) if (!['policy', 'backoffMs', 'limit'].includes(k)) problems.push(`restart: unknown key "${k}" (expected policy, backoffMs, limit)`);
  if (v.policy === undefined) problems.push('restart.policy is required (never or on-failure)');
  else mode(v.policy, 'restart.policy');
  if (v.backoffMs !== undefined) {
    if (!Number.isInteger(v.backoffMs) || (v.backoffMs as number) < 0 || (v.backoffMs as number) > MAX_BACKOFF_MS) problems.push(`restart.backoffMs must be an integer 0-${MAX_BACKOFF_MS}, not ${JSON.stringify(v.backoffMs)}`);
    else out.backoffMs = v.backoffMs as number;
  }
  if (v.limit !== undefined) {
    if (!Number.isInteger(v.limit) || (v.limit as number) < 0) problems.push(`restart.limit must be an integer >= 0 (automatic restarts per array), not ${JSON.stringify(v.limit)}`);
    else out.limit = v.limit as number;
  }
  return out;
}
