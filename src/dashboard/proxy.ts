/**
 * The dashboard's proxy to the lab's APIs: the page calls `/api/arrays/...` and `/api/links/...`
 * on its own origin, and the dashboard forwards the few calls on its allow list to the array,
 * the link emulator or the supervisor, with their tokens (which never reach the page). The page
 * sends no body: each allowed call has its fixed upstream method, path and body, built from the
 * path's names, so the proxy cannot be used to reach anything else (a LUN delete, a promote...).
 */
import { arrayOf, linkOf, type DashboardLab, type Upstream } from './lab.js';

export interface ProxyTarget {
  upstream: Upstream;
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
}

export type ProxyResolution = { ok: true; target: ProxyTarget } | { ok: false; status: 403 | 404; code: string; message: string };

interface AllowedCall {
  method: 'GET' | 'POST';
  /** Matched against the path after /api/; its groups are the names. */
  pattern: RegExp;
  to: (lab: DashboardLab, names: string[]) => ProxyTarget | string;
}

const NAME = '([A-Za-z0-9._-]{1,64})';
const SP = '(A|B)';
/** The one-way link delays the page offers (ms, both directions); nothing else passes. */
export const LINK_LATENCIES_MS = [0, 1, 5, 20, 50] as const;
const LATENCY = `(${LINK_LATENCIES_MS.join('|')})`;

const array = (lab: DashboardLab, name: string) => arrayOf(lab, name)?.api ?? `no array ${name}`;
const link = (lab: DashboardLab, name: string) => linkOf(lab, name)?.api ?? `no link ${name}`;
const supervisor = (lab: DashboardLab) => (lab.control ? { url: lab.control.url, token: lab.control.token } : 'the supervisor has no control API');

function on(up: Upstream | string, method: 'GET' | 'POST', path: string, body?: unknown): ProxyTarget | string {
  return typeof up === 'string' ? up : { upstream: up, method, path, ...(body !== undefined ? { body } : {}) };
}

/** The whole allow list (docs/dashboard.md lists it too). */
export const ALLOWED_CALLS: readonly AllowedCall[] = [
  { method: 'GET', pattern: new RegExp(`^arrays/${NAME}/status$`), to: (lab, [a]) => on(array(lab, a!), 'GET', '/v1/status') },
  { method: 'GET', pattern: new RegExp(`^arrays/${NAME}/mirrors$`), to: (lab, [a]) => on(array(lab, a!), 'GET', '/v1/mirrors') },
  { method: 'GET', pattern: new RegExp(`^arrays/${NAME}/groups$`), to: (lab, [a]) => on(array(lab, a!), 'GET', '/v1/groups') },
  { method: 'GET', pattern: new RegExp(`^arrays/${NAME}/metrics$`), to: (lab, [a]) => on(array(lab, a!), 'GET', '/metrics') },
  { method: 'GET', pattern: new RegExp(`^links/${NAME}/status$`), to: (lab, [l]) => on(link(lab, l!), 'GET', '/v1/status') },
  { method: 'POST', pattern: new RegExp(`^links/${NAME}/cut$`), to: (lab, [l]) => on(link(lab, l!), 'POST', '/v1/cut', {}) },
  { method: 'POST', pattern: new RegExp(`^links/${NAME}/restore$`), to: (lab, [l]) => on(link(lab, l!), 'POST', '/v1/restore', {}) },
  { method: 'POST', pattern: new RegExp(`^links/${NAME}/latency/${LATENCY}$`), to: (lab, [l, ms]) => on(link(lab, l!), 'POST', '/v1/set', { latencyMs: Number(ms) }) },
  { method: 'POST', pattern: new RegExp(`^arrays/${NAME}/power-fail$`), to: (lab, [a]) => on(array(lab, a!), 'POST', '/v1/faults/power-fail', {}) },
  { method: 'POST', pattern: new RegExp(`^arrays/${NAME}/power-restore$`), to: (lab, [a]) => on(array(lab, a!), 'POST', '/v1/faults/power-restore', {}) },
  { method: 'POST', pattern: new RegExp(`^arrays/${NAME}/sps/${SP}/crash$`), to: (lab, [a, sp]) => on(array(lab, a!), 'POST', '/v1/faults/sp-crash', { sp }) },
  { method: 'POST', pattern: new RegExp(`^arrays/${NAME}/sps/${SP}/restart$`), to: (lab, [a, sp]) => on(array(lab, a!), 'POST', '/v1/faults/sp-restart', { sp }) },
  { method: 'POST', pattern: new RegExp(`^arrays/${NAME}/crash$`), to: (lab, [a]) => (arrayOf(lab, a!) ? on(supervisor(lab), 'POST', `/v1/arrays/${a}/crash`) : `no array ${a}`) },
  { method: 'POST', pattern: new RegExp(`^arrays/${NAME}/restart$`), to: (lab, [a]) => (arrayOf(lab, a!) ? on(supervisor(lab), 'POST', `/v1/arrays/${a}/restart`) : `no array ${a}`) },
];

/** What `METHOD /api/<rest>` forwards to, or why it is refused (403: not on the list; 404: no such array or link). */
export function resolveProxy(lab: DashboardLab, method: string, rest: string): ProxyResolution {
  for (const c of ALLOWED_CALLS) {
    const m = c.pattern.exec(rest);
    if (!m || c.method !== method) continue;
    const t = c.to(lab, m.slice(1));
    if (typeof t === 'string') return { ok: false, status: 404, code: 'not-found', message: t };
    return { ok: true, target: t };
  }
  return { ok: false, status: 403, code: 'not-allowed', message: `the dashboard does not pass ${method} /api/${rest} on (see docs/dashboard.md for what it does)` };
}
