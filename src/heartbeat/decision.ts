/**
 * The failover decision of the standby master (the source's step 740: neither Remote Group
 * Status 210 nor 230 is ALIVE) with what sanbox adds: every monitored path must say the peer is
 * dead, a path awaiting its first reading blocks, an all-DISABLE table is reported as suspended
 * monitoring, and a configured witness must confirm. And the fence decision of the production
 * master: isolated from the standby and from the witness, it fences itself before the standby's
 * timeout can expire. Both are pure; the reasons are stable (docs/heartbeat.md).
 */
import { deviceMonitored, type HeartbeatStatusTable } from './status-table.js';

export type FailoverWitness = 'not-configured' | 'peer-dead' | 'peer-alive' | 'unreachable';

export type FailoverReason =
  | 'already-failed-over'
  | 'monitoring-suspended'
  | 'peer-alive'
  | 'awaiting-readings'
  | 'starting'
  | 'path-recovering'
  | 'witness-sees-peer'
  | 'witness-unreachable'
  | 'all-paths-failed'
  | 'witness-confirms';

export interface FailoverDecision {
  action: 'none' | 'failover';
  reason: FailoverReason;
  detail: string;
}

export interface FailoverInput {
  table: HeartbeatStatusTable;
  witness: FailoverWitness;
  failedOver: boolean;
  /**
   * An agent that has heard no valid heartbeat since it started: how long ago it started (absent:
   * it has heard one). Its silence is believed only after two timeouts: the other site's agents
   * may be starting too (a lab's `up`), and a restarted standby must not fail over on its own
   * empty start.
   */
  unheardSinceMs?: number;
  /** The path timeout, with unheardSinceMs. */
  timeoutMs?: number;
}

interface PathView {
  name: string;
  status: 'ENABLE' | 'FAILED';
  alive: boolean;
  /** FAILED but valid heartbeats have started arriving again (not yet recoverAfter of them). */
  recovering: boolean;
}

/** The monitored paths of a table: the network unless DISABLE, and every monitored device. */
export function monitoredPaths(t: HeartbeatStatusTable): PathView[] {
  const out: PathView[] = [];
  if (t.networkEnable !== 'DISABLE') {
    const failed = t.networkEnable === 'FAILED';
    out.push({ name: 'network', status: t.networkEnable, alive: t.remoteGroupStatusByNetwork === 'ALIVE', recovering: failed && t.networkValidStreak > 0 });
  }
  for (const d of t.devices) {
    if (!deviceMonitored(t, d)) continue;
    const failed = d.status === 'FAILED';
    out.push({ name: `mirror ${d.mirror}`, status: failed ? 'FAILED' : 'ENABLE', alive: !failed && d.validStreak > 0, recovering: failed && d.validStreak > 0 });
  }
  return out;
}

const none = (reason: FailoverReason, detail: string): FailoverDecision => ({ action: 'none', reason, detail });

/** Whether the standby takes over now. Checked in the order of the decision table. */
export function failoverDecision(input: FailoverInput): FailoverDecision {
  const { table, witness, failedOver } = input;
  if (failedOver) return none('already-failed-over', 'the standby has already taken over');
  const paths = monitoredPaths(table);
  if (paths.length === 0) return none('monitoring-suspended', 'every heartbeat path is DISABLE (or none is installed): the peer is not monitored');
  if (table.remoteGroupStatusByNetwork === 'ALIVE' || table.remoteGroupStatusByMirror === 'ALIVE') {
    const alive = paths.filter((p) => p.alive).map((p) => p.name);
    return none('peer-alive', `valid heartbeats on ${alive.join(', ')}`);
  }
  const waiting = paths.filter((p) => p.status !== 'FAILED').map((p) => p.name);
  if (waiting.length > 0) return none('awaiting-readings', `no verdict yet on ${waiting.join(', ')}`);
  if (input.unheardSinceMs !== undefined && input.unheardSinceMs < 2 * (input.timeoutMs ?? Infinity)) {
    return none('starting', `nothing heard from the peer since this agent started ${Math.round(input.unheardSinceMs)} ms ago: waiting two timeouts before a failover`);
  }
  const recovering = paths.filter((p) => p.recovering).map((p) => p.name);
  if (recovering.length > 0) return none('path-recovering', `valid heartbeats are arriving again on ${recovering.join(', ')} (FAILED until the hysteresis is met)`);
  const names = paths.map((p) => p.name).join(', ');
  switch (witness) {
    case 'not-configured':
      return { action: 'failover', reason: 'all-paths-failed', detail: `every monitored path failed (${names}); no witness configured` };
    case 'peer-dead':
      return { action: 'failover', reason: 'witness-confirms', detail: `every monitored path failed (${names}) and the witness cannot see the peer either` };
    case 'peer-alive':
      return none('witness-sees-peer', `every monitored path failed (${names}) but the witness sees the peer: a partition, not a site loss`);
    case 'unreachable':
      return none('witness-unreachable', `every monitored path failed (${names}) but the witness is unreachable: this site may be the isolated one`);
    default:
      throw new Error(`unknown witness state ${String(witness)}`);
  }
}

// ---- fencing -------------------------------------------------------------------------------------

export type FenceWitness = 'not-configured' | 'reachable' | 'unreachable';

export type FenceReason = 'peer-reachable' | 'no-witness' | 'witness-reachable' | 'isolated' | 'peer-contact-restored' | 'witness-contact-restored' | 'still-isolated';

export interface FenceDecision {
  action: 'none' | 'fence' | 'unfence';
  reason: FenceReason;
  detail: string;
}

export interface FenceInput {
  /** Time since the last valid contact with the standby on any path; null when none yet. */
  lastPeerContactAgeMs: number | null;
  witness: FenceWitness;
  /** Must be configured strictly below the standby's timeout. */
  fenceAfterMs: number;
  fenced: boolean;
}

/**
 * Whether the production master fences itself (its arrays refuse host writes) or unfences.
 * Fences when it has lost every path to the standby for fenceAfterMs (or never had one) AND
 * cannot reach the witness. Unfences when a path to the peer or the witness is back; the agent
 * must still refuse to unfence when the standby has failed over meanwhile (policy, not here).
 * Without a witness it never fences: a full partition then leads to split brain (reported).
 */
export function fenceDecision(input: FenceInput): FenceDecision {
  const { lastPeerContactAgeMs: age, witness, fenceAfterMs, fenced } = input;
  if (!Number.isFinite(fenceAfterMs) || fenceAfterMs <= 0) throw new RangeError(`fenceAfterMs must be positive, got ${fenceAfterMs}`);
  if (age !== null && (!Number.isFinite(age) || age < 0)) throw new RangeError(`lastPeerContactAgeMs must be null or >= 0, got ${age}`);
  if (!['not-configured', 'reachable', 'unreachable'].includes(witness)) throw new Error(`unknown witness state ${String(witness)}`);
  const peerOk = age !== null && age < fenceAfterMs;
  const contact = age === null ? 'no contact with the standby yet' : `last contact with the standby ${age} ms ago`;
  if (fenced) {
    if (peerOk) return { action: 'unfence', reason: 'peer-contact-restored', detail: `${contact}: a path to the standby is back` };
    if (witness === 'reachable') return { action: 'unfence', reason: 'witness-contact-restored', detail: `the witness is reachable again (${contact})` };
    return { action: 'none', reason: 'still-isolated', detail: `${contact}; witness ${witness}: stays fenced` };
  }
  if (peerOk) return { action: 'none', reason: 'peer-reachable', detail: contact };
  if (witness === 'not-configured') return { action: 'none', reason: 'no-witness', detail: `${contact}; no witness configured: not fencing (a full partition leads to split brain)` };
  if (witness === 'reachable') return { action: 'none', reason: 'witness-reachable', detail: `${contact}, but the witness is reachable and tells the standby this site is alive` };
  return { action: 'fence', reason: 'isolated', detail: `${contact} (fence after ${fenceAfterMs} ms) and the witness is unreachable: fencing` };
}

// ---- invariant -----------------------------------------------------------------------------------

export interface SitesWritable {
  /** The production site is up and not fenced. */
  productionWritable: boolean;
  /** The standby site has failed over. */
  standbyWritable: boolean;
}

export class SplitBrainError extends Error {
  constructor(detail: string) {
    super(`split brain: both sites writable (${detail})`);
    this.name = 'SplitBrainError';
  }
}

/** True when both sites accept host writes. */
export function twoWritable(s: SitesWritable): boolean {
  return s.productionWritable && s.standbyWritable;
}

/** Throws SplitBrainError when both sites accept host writes. */
export function assertNoTwoWritable(s: SitesWritable, detail = ''): void {
  if (twoWritable(s)) throw new SplitBrainError(detail || 'production not fenced and standby failed over');
}

/** The configuration rule behind fencing: the production fences before the standby can fail over. */
export function assertFenceTiming(fenceAfterMs: number, standbyTimeoutMs: number): void {
  if (!(fenceAfterMs > 0 && fenceAfterMs < standbyTimeoutMs)) {
    throw new RangeError(`fenceAfterMs (${fenceAfterMs}) must be positive and strictly below the standby's timeout (${standbyTimeoutMs})`);
  }
}
