/**
 * The monitor's own lifecycle of a resource's automatic recovery, as a table (in the style of
 * src/replication/state/tables.ts): the table is data, anything absent is illegal, and
 * `nextPhase` is pure. The pair state is the array's; this is what the monitor is doing about it.
 *
 * - watching: polling; a suspended pair may be resynchronized.
 * - resyncing: the monitor started a resync and waits for the pair to be connected again.
 * - backoff: a resync failed; the next attempt waits until the resource's retryAt.
 * - held: the monitor gave up (too many failures, the direction changed); only an operator
 *   re-arms it (chkmon -a yes). Seeing the pair connected again does not: a person looks first.
 */
import type { RecoveryPhase } from './types.js';

export const RECOVERY_PHASES: readonly RecoveryPhase[] = ['watching', 'resyncing', 'backoff', 'held'];

/**
 * - resync-started: the monitor asked the array to resynchronize.
 * - resync-done: the pair is connected again after the monitor's resync.
 * - resync-failed: the request failed, or the resync ended without a connected pair.
 * - retry-due: the backoff is over.
 * - give-up: too many failures, or the pair changed direction.
 * - re-armed: the operator turned autorecover on (again).
 * - seen-connected: a poll found the pair connected (whoever made it so).
 */
export type RecoveryEvent = 'resync-started' | 'resync-done' | 'resync-failed' | 'retry-due' | 'give-up' | 're-armed' | 'seen-connected';
export const RECOVERY_EVENTS: readonly RecoveryEvent[] = ['resync-started', 'resync-done', 'resync-failed', 'retry-due', 'give-up', 're-armed', 'seen-connected'];

/** The whole table; anything absent is illegal. */
export const RECOVERY_TRANSITIONS: Readonly<Record<RecoveryPhase, Readonly<Partial<Record<RecoveryEvent, RecoveryPhase>>>>> = {
  watching: { 'resync-started': 'resyncing', 'give-up': 'held', 'seen-connected': 'watching', 're-armed': 'watching' },
  resyncing: { 'resync-done': 'watching', 'resync-failed': 'backoff', 'give-up': 'held', 'seen-connected': 'watching' },
  backoff: { 'retry-due': 'watching', 'resync-started': 'resyncing', 'give-up': 'held', 'seen-connected': 'watching', 're-armed': 'watching' },
  held: { 're-armed': 'watching', 'seen-connected': 'held' },
};

export class IllegalRecoveryTransitionError extends Error {
  constructor(
    readonly phase: RecoveryPhase,
    readonly event: RecoveryEvent,
  ) {
    const legal = Object.keys(RECOVERY_TRANSITIONS[phase] ?? {}).join(', ') || 'none';
    super(`illegal recovery transition: ${event} in phase ${phase} (legal there: ${legal})`);
    this.name = 'IllegalRecoveryTransitionError';
  }
}

/** The phase after `event`; throws IllegalRecoveryTransitionError when the table has no such row. */
export function nextPhase(phase: RecoveryPhase, event: RecoveryEvent): RecoveryPhase {
  const row = RECOVERY_TRANSITIONS[phase];
  if (!row) throw new Error(`unknown recovery phase ${String(phase)}`);
  const next = row[event];
  if (!next) throw new IllegalRecoveryTransitionError(phase, event);
  return next;
}

export function canRecoveryTransition(phase: RecoveryPhase, event: RecoveryEvent): boolean {
  return RECOVERY_TRANSITIONS[phase]?.[event] !== undefined;
}

/**
 * The wait before the next automatic attempt after `failures` failures: baseMs * 2^(failures-1),
 * at most maxMs (fewer than one failure counts as one).
 */
export function backoffMs(failures: number, baseMs: number, maxMs: number): number {
  if (!(baseMs >= 0 && maxMs >= 0)) throw new Error(`backoff base ${baseMs} and max ${maxMs} must be >= 0`);
  const n = Number.isNaN(failures) ? 1 : Math.max(Math.floor(failures), 1);
  const exponent = Math.min(n - 1, 60);
  return Math.min(baseMs * 2 ** exponent, maxMs);
}
