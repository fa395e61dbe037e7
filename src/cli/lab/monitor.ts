/**
 * `monitor:` of a lab file: the pair resync monitor `sanbox up` starts for the lab, and the
 * mirrors and groups it watches (see docs/monitor.md).
 *
 *     monitor:
 *       resources:
 *         - { group: m0 }                  # a mirror or group of this lab, asked of its primary array
 *         - { group: g0, app: payroll, interval: 10, autorecover: yes, adminFractures: no, array: alpha }
 *
 * Defaults: app the lab's name, interval 30 s, autorecover yes, adminFractures no, array the
 * primary array of the mirror or group.
 */
import { isObj, type LabGroup, type LabMirror, type LabMonitor, type LabMonitorResource } from './types.js';

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$/;
const KEYS = ['group', 'app', 'interval', 'autorecover', 'adminFractures', 'array'];

function yes(v: unknown, at: string, dflt: boolean, problems: string[]): boolean {
  if (v === undefined) return dflt;
  if (v === true || v === 'yes') return true;
  if (v === false || v === 'no') return false;
  problems.push(`${at} must be yes or no, not ${JSON.stringify(v)}`);
  return dflt;
}

/** The lab's monitor, or undefined when the file has no `monitor:`; every problem is listed. */
export function parseMonitor(v: unknown, lab: { name: string; mirrors: LabMirror[]; groups: LabGroup[]; arrays: string[] }, problems: string[]): LabMonitor | undefined {
  if (v === undefined) return undefined;
  if (!isObj(v)) return void problems.push('"monitor" must be a mapping like { resources: [{ group: m0 }] }');
  for (const k of Object.keys(v)) if (k !== 'resources') problems.push(`monitor: unknown key "${k}" (expected resources)`);
  if (!Array.isArray(v.resources)) return void problems.push('monitor.resources must be a list like [{ group: m0 }]');
  const seen = new Set<string>();
  const resources: LabMonitorResource[] = [];
  v.resources.forEach((r: unknown, i: number) => {
    const at = `monitor.resources[${i}]`;
    if (!isObj(r)) return void problems.push(`${at} must be a mapping like { group: m0 }`);
    for (const k of Object.keys(r)) if (!KEYS.includes(k)) problems.push(`${at}: unknown key "${k}" (expected ${KEYS.join(', ')})`);
    const group = r.group;
    const primary = lab.mirrors.find((m) => m.name === group)?.primary.array ?? lab.groups.find((g) => g.name === group)?.primary;
    if (typeof group !== 'string' || primary === undefined) return void problems.push(`${at}.group: no mirror or group ${JSON.stringify(group)} in this lab`);
    const appName = r.app === undefined ? lab.name : r.app;
    if (typeof appName !== 'string' || !NAME_RE.test(appName)) return void problems.push(`${at}.app must be 1-64 of A-Z a-z 0-9 _ . : -, not ${JSON.stringify(appName)}`);
    const array = r.array === undefined ? primary : r.array;
    if (typeof array !== 'string' || !lab.arrays.includes(array)) return void problems.push(`${at}.array: no array ${JSON.stringify(array)} in this lab`);
    const interval = r.interval === undefined ? 30 : r.interval;
    if (!Number.isInteger(interval) || (interval as number) < 1 || (interval as number) > 86_400) problems.push(`${at}.interval must be whole seconds 1-86400, not ${JSON.stringify(interval)}`);
    const key = `${appName}/${group}`;
    if (seen.has(key)) problems.push(`${at}: ${key} is listed twice`);
    seen.add(key);
    resources.push({ appName, deviceGroup: group, array, intervalSeconds: interval as number, autorecover: yes(r.autorecover, `${at}.autorecover`, true, problems), resyncAdminFractures: yes(r.adminFractures, `${at}.adminFractures`, false, problems) });
  });
  return { resources };
}
