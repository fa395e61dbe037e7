/**
 * Power of a chassis as an explicit table (like the SP lifecycle in ../sp/state.ts): the table
 * is data, anything absent is illegal, `powerTransition()` is pure.
 *
 * States:
 * - off: no power; both SPs are stopped (their dirty cache is in the vaults, or lost).
 * - restoring: power is back; the SPs boot and replay their vaults; no host I/O yet.
 * - on: both SPs (or the survivors) serve.
 * - failing: power lost; the SPs hold host I/O on battery and dump their caches to the vaults.
 */
export type PowerState = 'on' | 'failing' | 'off' | 'restoring';

export const POWER_STATES: readonly PowerState[] = ['on', 'failing', 'off', 'restoring'];

/**
 * - power-fail: mains power lost while on.
 * - dump-done: every SP that dumped completed its vault copy; the SPs stopped.
 * - dump-torn: the hold-up ran out (or an SP failed) before a dump was complete; the SPs stopped.
 * - no-hold-up: the battery had nothing to give (failed or empty): the SPs stopped at once
 *   without dumping.
 * - power-restore: power back; from off the SPs boot; while failing (mid-dump) they abandon
 *   the dump and go on serving (they never lost their memory).
 * - restore-done: every SP restored its vault and serves.
 * - restore-interrupted: a second power failure (or an SP dying) during the restore; nothing
 *   was consumed yet, so the next power-up replays the same images.
 */
export type PowerEvent = 'power-fail' | 'dump-done' | 'dump-torn' | 'no-hold-up' | 'power-restore' | 'restore-done' | 'restore-interrupted';

export const POWER_EVENTS: readonly PowerEvent[] = ['power-fail', 'dump-done', 'dump-torn', 'no-hold-up', 'power-restore', 'restore-done', 'restore-interrupted'];

/**
 * The whole table; anything absent is illegal. A power failure during the restore is not a row
 * of its own: the chassis cuts the booting SPs, and the restore ends in `restore-interrupted`.
 */
export const POWER_TRANSITIONS: Readonly<Record<PowerState, Readonly<Partial<Record<PowerEvent, PowerState>>>>> = {
  off: { 'power-restore': 'restoring' },
  restoring: { 'restore-done': 'on', 'restore-interrupted': 'off' },
  on: { 'power-fail': 'failing' },
  failing: { 'dump-done': 'off', 'dump-torn': 'off', 'no-hold-up': 'off', 'power-restore': 'on' },
};

export class IllegalPowerTransitionError extends Error {
  constructor(
    readonly state: PowerState,
    readonly event: PowerEvent,
  ) {
    super(`illegal chassis power transition: ${event} while power is ${state}`);
    this.name = 'IllegalPowerTransitionError';
  }
}

/** Pure: the next power state, or throws IllegalPowerTransitionError. */
export function powerTransition(state: PowerState, event: PowerEvent): PowerState {
  const row = POWER_TRANSITIONS[state];
  if (!row) throw new Error(`unknown chassis power state ${String(state)}`);
  const next = row[event];
  if (!next) throw new IllegalPowerTransitionError(state, event);
  return next;
}

export function canPowerTransition(state: PowerState, event: PowerEvent): boolean {
  return POWER_TRANSITIONS[state]?.[event] !== undefined;
}

/** One SP's answer to a power failure, as the chassis collects them. */
export interface SpDumpResult {
  /** The SP completed its vault copy. */
  dumped?: boolean;
  /** Why it did not dump at all (it was not serving, or had no hold-up). */
  reason?: string;
  /** The SP failed while it dumped. */
  error?: string;
  /** The SP was not running. */
  state?: string;
}

/**
 * Pure: how the power failure ended once the SPs stopped: no hold-up at all, a torn dump (an
 * SP that dumped did not finish, or failed), or a complete one.
 */
export function dumpOutcome(holdUpMs: number, results: readonly SpDumpResult[]): 'dump-done' | 'dump-torn' | 'no-hold-up' {
  if (holdUpMs <= 0) return 'no-hold-up';
  const torn = results.some((r) => r.error !== undefined || (r.dumped === false && r.reason === undefined));
  return torn ? 'dump-torn' : 'dump-done';
}
