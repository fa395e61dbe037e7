/**
 * Master election within one site (the source: another host becomes master when the master sent
 * no heartbeat for the timeout, or sent an invalid one: wrong time, unknown id, expired
 * instance). The current master stays while it is valid, so a recovered host earlier in the
 * configured order does not take the role back (no flapping). Pure.
 */

export type MasterReason = 'master-alive' | 'initial-election' | 'master-failed' | 'master-not-configured';

export interface MasterDecision {
  master: string;
  changed: boolean;
  reason: MasterReason;
  detail: string;
}

/** A host's liveness as this host sees it (usually the validity verdict of its heartbeats). */
export interface HostLiveness {
  valid: boolean;
  reason: string;
}

function checkHosts(hosts: readonly string[], self: string, current: string | null): void {
  if (!Array.isArray(hosts) || hosts.length === 0) throw new RangeError('electMaster: hosts must list at least one host');
  if (new Set(hosts).size !== hosts.length) throw new RangeError(`electMaster: hosts are not unique: ${hosts.join(', ')}`);
  if (hosts.some((h) => typeof h !== 'string' || h === '')) throw new RangeError('electMaster: host names must be non-empty strings');
  if (!hosts.includes(self)) throw new RangeError(`electMaster: self ${self} is not among the configured hosts`);
  if (current !== null && typeof current !== 'string') throw new TypeError('electMaster: current must be a host name or null');
}

/**
 * The master of the site. `hosts`: configured order; `liveness`: per other host (a missing
 * entry counts as not valid); `self` always counts as valid; `current`: the master as known.
 */
export function electMaster(hosts: readonly string[], liveness: Readonly<Record<string, HostLiveness>>, self: string, current: string | null): MasterDecision {
  checkHosts(hosts, self, current);
  const valid = (h: string): boolean => h === self || liveness[h]?.valid === true;
  if (current !== null && hosts.includes(current) && valid(current)) {
    return { master: current, changed: false, reason: 'master-alive', detail: `${current} stays master` };
  }
  const next = hosts.find(valid);
  if (next === undefined) throw new Error('electMaster: no valid host, but self is always valid');
  if (current === null) return { master: next, changed: true, reason: 'initial-election', detail: `${next} is the first valid host in configured order` };
  if (!hosts.includes(current)) {
    return { master: next, changed: true, reason: 'master-not-configured', detail: `${current} is no longer a configured host; ${next} takes over` };
  }
  const why = liveness[current]?.reason ?? 'no heartbeat seen';
  return { master: next, changed: true, reason: 'master-failed', detail: `${current} is not valid (${why}); ${next} takes over` };
}
