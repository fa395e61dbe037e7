/**
 * The source's wait-for-state utility (clwait4ERCMFstate), decided purely: whether a reading of a
 * volume set has reached the state waited for, can never reach it, or may still.
 *
 * "Never" is conservative, only what no action can change:
 * - the set is on none of its arrays (`not-found`): nothing brings it back while we wait;
 * - a plain mirror waited for XDMode or XDModeOutOfSync: this build replicates mirrors
 *   synchronously only (asynchronous is a group mode), so no mirror is ever in them.
 * A state that needs an operator's action (a promote for RecoverySite, a resync for InSync) is
 * NOT never: an operator or another controller may act while we wait; that ends in a timeout.
 * (A set that is not in the lab at all is never too: the CLI says so before any reading.)
 */
import type { VsReading, VsState } from './vs-state.js';

export type WaitVerdict = { outcome: 'reached' } | { outcome: 'waiting' } | { outcome: 'never'; reason: string; detail: string };

const ASYNC_ONLY: readonly VsState[] = ['XDMode', 'XDModeOutOfSync'];

export function waitVerdict(reading: VsReading, target: VsState): WaitVerdict {
  if (reading.state === target) return { outcome: 'reached' };
  if (reading.reason === 'not-found') return { outcome: 'never', reason: 'not-found', detail: reading.detail };
  if (reading.kind === 'mirror' && ASYNC_ONLY.includes(target))
    return { outcome: 'never', reason: 'mirror-is-synchronous', detail: `${reading.set} is a plain mirror: mirrors replicate synchronously only, never ${target} (asynchronous is a group mode)` };
  return { outcome: 'waiting' };
}
