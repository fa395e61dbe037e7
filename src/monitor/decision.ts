/**
 * What the monitor does about one reading of a resource (seed 000: resynchronize a suspended pair
 * when autorecover is on). One pure decision, like src/array/sp/policy.ts: a stable reason for
 * status and tests, and a sentence for a person.
 *
 * Only a suspended pair is ever resynchronized, and only when nothing says a person or another
 * array is in charge: autorecover off, an operator's suspension, a held resource (chkmon -a yes
 * re-arms it), this instance holding the secondary, a changed direction (a promote happened:
 * resyncing would overwrite the new primary's data with the old one's), too many failures, a
 * link still down, a backoff not yet over. Error-suspended pairs are reported, never resynced.
 */
import type { PairReading, ResourceEntry } from './types.js';

/** Every reason a decision can give, stable (status, history, tests). */
export const DECISION_REASONS = [
  'connected',
  'in-progress',
  'unknown',
  'autorecover-off',
  'operator-suspension',
  'held',
  'not-primary',
  'direction-changed',
  'too-many-failures',
  'link-down',
  'backoff',
  'error-suspended',
  'deleted',
  'resync',
] as const;
export type DecisionReason = (typeof DECISION_REASONS)[number];

/**
 * - none: nothing to do. record: report the state (an entry and its history), do nothing else.
 * - wait: look again at the next poll. resync: start a resynchronization.
 * - hold: stop automatic recovery of the resource until an operator re-arms it.
 */
export type DecisionAction = 'none' | 'record' | 'wait' | 'resync' | 'hold';
export const DECISION_ACTIONS: readonly DecisionAction[] = ['none', 'record', 'wait', 'resync', 'hold'];

/** The action of each reason: data, so that a reason always means one thing. */
export const REASON_ACTIONS: Readonly<Record<DecisionReason, DecisionAction>> = {
  connected: 'none',
  'in-progress': 'none',
  unknown: 'none',
  'autorecover-off': 'record',
  'operator-suspension': 'record',
  held: 'record',
  'not-primary': 'record',
  'direction-changed': 'hold',
  'too-many-failures': 'hold',
  'link-down': 'wait',
  backoff: 'wait',
  'error-suspended': 'record',
  deleted: 'record',
  resync: 'resync',
};

export interface DecisionInput {
  entry: Pick<ResourceEntry, 'autorecover' | 'resyncAdminFractures' | 'phase' | 'direction' | 'failures' | 'retryAt'>;
  reading: PairReading;
  now: Date;
  /** this many failures inside the window hold the resource */
  maxFailures: number;
}

export interface Decision {
  action: DecisionAction;
  reason: DecisionReason;
  detail: string;
}

const decision = (reason: DecisionReason, detail: string): Decision => ({ action: REASON_ACTIONS[reason], reason, detail });

/** Decides what to do about a reading. Pure; the checks for a suspended pair run in the order of the header. */
export function decideRecovery(input: DecisionInput): Decision {
  const { reading } = input;
  switch (reading.pair) {
    case 'connected':
      return decision('connected', `connected: ${reading.detail}`);
    case 'resync':
      return decision('in-progress', `resynchronizing, let it run: ${reading.detail}`);
    case 'error-suspended':
      return decision('error-suspended', `error-suspended (${reading.reason}), an operator must repair it: ${reading.detail}`);
    case 'deleted':
      return decision('deleted', `deleted (${reading.reason}): ${reading.detail}`);
    case 'suspended':
      return decideSuspended(input);
    default:
      return decision('unknown', `pair state ${reading.pair} (${reading.reason}): nothing to decide`);
  }
}

function decideSuspended(input: DecisionInput): Decision {
  const { entry, reading } = input;
  const why = `suspended (${reading.reason})`;
  if (!entry.autorecover) return decision('autorecover-off', `${why}; autorecover is off`);
  if (reading.byOperator && !entry.resyncAdminFractures) return decision('operator-suspension', `${why} by the operator; resyncAdminFractures is off`);
  if (entry.phase === 'held') return decision('held', `${why}; automatic recovery is held until re-armed (chkmon -a yes)`);
  if (reading.role !== 'primary') return decision('not-primary', `${why}; this instance holds the ${reading.role ?? 'no'} side, the primary's monitor resynchronizes`);
  const turned = directionChange(entry.direction, reading);
  if (turned) return decision('direction-changed', `${why}; ${turned}`);
  if (entry.failures.length >= input.maxFailures) return decision('too-many-failures', `${why}; ${entry.failures.length} automatic resyncs failed (limit ${input.maxFailures})`);
  if (!reading.linkUp) return decision('link-down', `${why}; waiting for the link to the secondary`);
  const retry = entry.retryAt === null ? NaN : Date.parse(entry.retryAt);
  if (retry > input.now.getTime()) return decision('backoff', `${why}; next attempt at ${entry.retryAt}`);
  return decision('resync', `${why}; resynchronizing from ${reading.primaryArray ?? '?'} (epoch ${reading.epoch ?? '?'})`);
}

/** Why the pair no longer runs the way it was last seen connected, or null when it still does. */
function directionChange(direction: DecisionInput['entry']['direction'], reading: PairReading): string | null {
  if (direction === null) return null;
  if (reading.primaryArray === direction.primaryArray && reading.epoch === direction.epoch) return null;
  return `the primary was ${direction.primaryArray} (epoch ${direction.epoch}), now ${reading.primaryArray ?? '?'} (epoch ${reading.epoch ?? '?'}): a person decides`;
}
