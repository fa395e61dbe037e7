/**
 * Storage-processor policy and state (issue 4), pure and deterministic; the SP processes,
 * chassis and CMI are assembled from these elsewhere.
 *
 * - `cacheModePolicy(input) -> { mode, reason, detail }`: write-through whenever protection is
 *   missing (configured off, peer SP down, battery failed, vault unusable, charge below `low`);
 *   back to write-back only above `high` (hysteresis: pass the previous mode). Re-evaluate on
 *   every input change and emit an event when the mode changes; apply with
 *   `WriteCache.setMode` (after `attachMirror` resolved when going to write-back).
 * - `transition(state, event)`: the SP lifecycle as an explicit table (`SP_TRANSITIONS`);
 *   throws `IllegalTransitionError` on anything not in it. `SpLifecycle` wraps one SP's state,
 *   history and 'transition' events. Only `up` serves host I/O; `inPowerFailure(state)` (dumping,
 *   resuming, off) is when an SP holds host I/O and refuses peer traffic.
 * - `OwnershipTable`: default and current owner per LUN, `trespass`, `takeOver(deadSp)`,
 *   `spUp`, `failback('automatic' | 'manual')`; asserts "at most one owner per LUN" (and that
 *   the per-SP views agree and owners are up) on every change; emits 'change' per move and
 *   returns the list of moves.
 *
 * Order of operations the assembly must keep (data safety, not enforced here):
 * - trespass: quiesce the LUN on the old owner, `destageAll()` its cache, clear the new
 *   owner's PeerMirrorStore entry for the LUN, then `trespass()`, then the new owner builds its
 *   WriteCache and attaches the mirror.
 * - takeover: `takeOver(dead)`, then for each moved LUN build a WriteCache on the survivor and
 *   `loadDirty(peerStore.take(lun))` before it serves; mode goes write-through (peer down).
 * - failback: the returning SP first drops its stale cache and marks superseded vault images
 *   consumed, `spUp(sp)`, then `failback(policy)`; each moved LUN is destaged on the current
 *   owner first, as for a trespass.
 */
export { cacheModePolicy, DEFAULT_BATTERY_THRESHOLDS, type BatteryThresholds, type CacheModeInput, type CacheModeDecision, type CacheModeReason } from './policy.js';
export {
  transition,
  canTransition,
  servesIo,
  inPowerFailure,
  SpLifecycle,
  IllegalTransitionError,
  SP_STATES,
  SP_EVENTS,
  SP_TRANSITIONS,
  type SpState,
  type SpEvent,
  type SpTransitionRecord,
} from './state.js';
export { OwnershipTable, OwnershipError, peerOf, SP_NAMES, type SpName, type OwnershipEvent, type OwnershipReason, type LunOwnership, type FailbackPolicy } from './ownership.js';
