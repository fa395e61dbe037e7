/**
 * What a controller does next to bring one volume set to the goal of an operation: one pure
 * decision from the set's reading (src/automation/vs-state.ts), returning an action, a stable
 * reason and a human detail (the model: src/array/sp/policy.ts). The executor acts, reads the set
 * again and asks again, until the action is `ready` or the storage timeout ends the operation.
 *
 * Never an action that makes two sides writable: a forced promote only at a recovery of a site
 * whose primary does not answer; a planned move only by a plain promote (the old primary steps
 * down first), and only of a set in sync.
 */
import type { VsReading } from '../vs-state.js';

export type StorageGoal =
  /** production at `site`, usable: bring a group online there */
  | { op: 'online'; site: string }
  /** production moved to `site` without any copy (planned swap): the sets in sync first */
  | { op: 'move'; site: string }
  /** production at `site` because the other site is declared lost */
  | { op: 'recover'; site: string; usePitCopy: boolean };

/** The recovery site's own image(s), as its array reports them: is it a point in time? */
export type SecondaryConsistency = 'consistent' | 'inconsistent' | 'unknown';

export type StorageAction =
  | 'ready'
  /** nothing to do but read again (a copy under way, an array that did not answer) */
  | 'wait'
  /** resume a paused asynchronous group */
  | 'resume'
  /** switch an asynchronous group to synchronous (drains its journal) before a swap */
  | 'switch-sync'
  /** promote at the goal site without asking the old primary (it does not answer) */
  | 'promote-forced'
  /** promote from the resync-protection snapshot (the policy allows a questionable point-in-time copy) */
  | 'promote-from-snapshot'
  /** plain promote: the old primary steps down first */
  | 'promote'
  | 'refuse';

export interface StorageDecision {
  action: StorageAction;
  /** stable keyword, for events and tests */
  reason: string;
  detail: string;
}

const decision = (action: StorageAction, reason: string, detail: string): StorageDecision => ({ action, reason, detail });

/** Copies at the goal site that a planned swap may promote without losing a write. */
const IN_SYNC = new Set(['duplex']);

export function storageDecision(r: VsReading, goal: StorageGoal, secondary: SecondaryConsistency = 'unknown'): StorageDecision {
  const set = `${r.kind} ${r.set}`;
  if (r.reason === 'split-brain') return decision('refuse', 'split-brain', `${set}: both sides took writes; resolve it first (sanbox mirror resolve)`);
  if (goal.op === 'recover') return recoverDecision(r, goal, secondary);
  if (r.productionSite === null) return decision('wait', r.reason, `${set}: ${r.state} (${r.detail})`);
  if (goal.op === 'online') return onlineDecision(r, goal.site);
  return moveDecision(r, goal.site);
}

function onlineDecision(r: VsReading, site: string): StorageDecision {
  const set = `${r.kind} ${r.set}`;
  if (r.productionSite !== site) return decision('refuse', 'production-elsewhere', `${set}: production is at site ${r.productionSite}, not ${site}; move the group (rg move) or recover the site (site recover) first`);
  if (r.state === 'Unknown') return decision('refuse', r.reason, `${set}: production at ${site} but not usable: ${r.detail}`);
  if (r.state === 'RecoverySiteForceSwap' && r.reason === 'two-primaries') return decision('refuse', 'two-primaries', `${set}: ${r.detail}; the old primary must step down before the group starts here`);
  return decision('ready', r.state, `${set}: ${r.state}, production at ${site}`);
}

function moveDecision(r: VsReading, site: string): StorageDecision {
  const set = `${r.kind} ${r.set}`;
  if (r.productionSite === site) return decision('ready', 'moved', `${set}: production at ${site} (${r.state})`);
  if (r.state === 'RecoverySiteForceSwap') return decision('refuse', 'force-swap', `${set}: ${r.detail}; a planned move needs both sides (site recover is the way when one is lost)`);
  if (r.state === 'Unknown') return decision('refuse', r.reason, `${set}: ${r.detail}`);
  switch (r.condition) {
    case 'copying':
    case 'refresh':
    case 'sender-down':
      return decision('wait', r.condition, `${set}: ${r.condition}, waiting until in sync (${r.detail})`);
    case 'suspended':
    case 'promote-fractured':
      // refused before anything stops: the host resources would stay down while a link is out
      return decision('refuse', 'out-of-sync', `${set}: ${r.state} (${r.detail}); a planned move swaps sets in sync only: resynchronize first (sanbox mirror sync, then sanbox vs wait ${r.set} InSync)`);
    case 'paused':
      return decision('resume', 'paused', `${set}: paused; resuming before the swap`);
    case 'journaling':
      return decision('switch-sync', 'asynchronous', `${set}: asynchronous; switching to synchronous (the journal drains) before the swap`);
    default:
  }
  if (r.mode === 'sync' && IN_SYNC.has(r.condition ?? '')) return decision('promote', 'in-sync', `${set}: in sync; promoting at ${site} (the old primary steps down, nothing is copied)`);
  return decision('refuse', r.condition ?? r.reason, `${set}: cannot swap from ${r.state} (${r.detail})`);
}

function recoverDecision(r: VsReading, goal: Extract<StorageGoal, { op: 'recover' }>, secondary: SecondaryConsistency): StorageDecision {
  const set = `${r.kind} ${r.set}`;
  if (r.productionSite === goal.site) return decision('ready', 'recovered', `${set}: production at ${goal.site} (${r.state})`);
  // The lost site's primary answers: it is not lost for this set. Only a plain promote (it steps down) is safe.
  if (r.productionSite !== null) {
    if (r.mode === 'sync' && r.condition === 'duplex') return decision('promote', 'production-site-answers', `${set}: its primary ${r.primaryArray} still answers and is in sync: a plain promote (it steps down first)`);
    return decision('refuse', 'production-site-answers', `${set}: its primary ${r.primaryArray} at site ${r.productionSite} still answers (${r.state}: ${r.detail}); a forced promote would make two writable sides: bring the set in sync and move it, or stop that array`);
  }
  if (secondary === 'consistent') return decision('promote-forced', 'site-lost', `${set}: the primary does not answer (${r.detail}); the copy at ${goal.site} is a point in time: promoting it without the old primary`);
  if (secondary === 'unknown') return decision('wait', 'secondary-unknown', `${set}: the copy at ${goal.site} did not say whether it is a point in time (${r.detail})`);
  if (goal.usePitCopy) return decision('promote-from-snapshot', 'inconsistent-secondary', `${set}: the copy at ${goal.site} is not a point in time (a resync was under way); the policy allows its point-in-time copy: promoting from the resync-protection snapshot`);
  return decision('refuse', 'inconsistent-secondary', `${set}: the copy at ${goal.site} is not a point in time (a resync was under way) and the policy does not allow a point-in-time copy (usePitCopy: no)`);
}
