/**
 * `dashboard:` of a lab file: where `sanbox up` serves the lab's web dashboard (docs/dashboard.md).
 *
 *     dashboard: { bind: 127.0.0.1, port: 8480 }   # default: 127.0.0.1, any free port
 *     dashboard: { bind: 0.0.0.0, port: 8480, token: ... }   # a token is required off loopback
 *     dashboard: off                               # no dashboard
 */
import { isLoopback } from '../../control/index.js';
import { isObj, type LabDashboard } from './types.js';

const KEYS = ['bind', 'port', 'token'];

/** The lab's dashboard (absent key: on, loopback, any port), or false for `off`; every problem is listed. */
export function parseDashboard(v: unknown, problems: string[], usePort: (port: number, what: string) => void): LabDashboard | false {
  const d: LabDashboard = { bind: '127.0.0.1', port: 0 };
  if (v === undefined) return d;
  if (v === false || v === 'off') return false;
  if (!isObj(v)) {
    problems.push('"dashboard" must be a mapping like { port: 8480 }, or off');
    return d;
  }
  for (const k of Object.keys(v)) if (!KEYS.includes(k)) problems.push(`dashboard: unknown key "${k}" (expected ${KEYS.join(', ')})`);
  if (v.bind !== undefined) {
    if (typeof v.bind !== 'string' || v.bind === '') problems.push(`dashboard.bind must be an address, not ${JSON.stringify(v.bind)}`);
    else d.bind = v.bind;
  }
  if (v.port !== undefined) {
    if (!Number.isInteger(v.port) || (v.port as number) < 0 || (v.port as number) > 65535) problems.push(`dashboard.port must be a port 0-65535 (0: any free one), not ${JSON.stringify(v.port)}`);
    else {
      d.port = v.port as number;
      usePort(d.port, 'dashboard');
    }
  }
  if (v.token !== undefined) {
    if (typeof v.token !== 'string' || v.token.length < 8) problems.push('dashboard.token must be a string of at least 8 characters');
    else d.token = v.token;
  }
  if (!isLoopback(d.bind) && !d.token) problems.push(`dashboard: binding ${d.bind} (not loopback) needs a token`);
  return d;
}
