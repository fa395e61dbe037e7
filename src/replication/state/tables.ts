/**
 * The mirror and secondary-image state machines of the source document (002, Figures 4 and 5),
 * as explicit tables. Pure: `mirrorTransition` / `imageTransition` return the next state or throw.
 */

// ---- mirror (Figure 4) -----------------------------------------------------------------------

/**
 * - ACTIVE: normal operation; the host reads and writes the primary image.
 * - INACTIVE: the host may neither read nor write the primary (administrative control).
 * - ATTENTION: a problem keeps the mirror from operating normally (the minimum conditions —
 *   minimum images required, maximum missing images — are not met).
 */
export type MirrorState = 'ACTIVE' | 'INACTIVE' | 'ATTENTION';
export const MIRROR_STATES: readonly MirrorState[] = ['ACTIVE', 'INACTIVE', 'ATTENTION'];

/** ATTENTION -> ACTIVE (automatic) or ATTENTION -> INACTIVE (manual) once the problem is gone. */
export type ActivationPolicy = 'automatic' | 'manual';
export const ACTIVATION_POLICIES: readonly ActivationPolicy[] = ['automatic', 'manual'];

/**
 * - activate: the administrator activates and the minimum conditions are met.
 * - activate-unmet: the administrator activates but the minimum conditions are not met.
 * - deactivate: the administrator deactivates (optionally forced).
 * - requirements-lost: the mirror stops meeting the minimum conditions (automatic).
 * - requirements-met: the minimum conditions are met again (automatic).
 */
export type MirrorEvent = 'activate' | 'activate-unmet' | 'deactivate' | 'requirements-lost' | 'requirements-met';
export const MIRROR_EVENTS: readonly MirrorEvent[] = ['activate', 'activate-unmet', 'deactivate', 'requirements-lost', 'requirements-met'];

/** The whole table per activation policy; anything absent is illegal. */
export const MIRROR_TRANSITIONS: Readonly<Record<ActivationPolicy, Readonly<Record<MirrorState, Readonly<Partial<Record<MirrorEvent, MirrorState>>>>>>> = {
  automatic: {
    INACTIVE: { activate: 'ACTIVE', 'activate-unmet': 'ATTENTION' },
    ACTIVE: { 'requirements-lost': 'ATTENTION', deactivate: 'INACTIVE' },
    ATTENTION: { 'requirements-met': 'ACTIVE', deactivate: 'INACTIVE' },
  },
  manual: {
    INACTIVE: { activate: 'ACTIVE', 'activate-unmet': 'ATTENTION' },
    ACTIVE: { 'requirements-lost': 'ATTENTION', deactivate: 'INACTIVE' },
    ATTENTION: { 'requirements-met': 'INACTIVE', deactivate: 'INACTIVE' },
  },
};

export class IllegalMirrorTransitionError extends Error {
  constructor(
    readonly state: MirrorState,
    readonly event: MirrorEvent,
    readonly policy: ActivationPolicy,
  ) {
    super(`illegal mirror transition: ${event} in state ${state} (activation policy ${policy})`);
    this.name = 'IllegalMirrorTransitionError';
  }
}

export function mirrorTransition(state: MirrorState, event: MirrorEvent, policy: ActivationPolicy): MirrorState {
  const row = MIRROR_TRANSITIONS[policy]?.[state];
  if (!row) throw new Error(`unknown mirror state ${String(state)} or policy ${String(policy)}`);
  const next = row[event];
  if (!next) throw new IllegalMirrorTransitionError(state, event, policy);
  return next;
}

export function canMirrorTransition(state: MirrorState, event: MirrorEvent, policy: ActivationPolicy): boolean {
  return MIRROR_TRANSITIONS[policy]?.[state]?.[event] !== undefined;
}

// ---- secondary image (Figure 5) ---------------------------------------------------------------

/**
 * From the secondary image's perspective:
 * - UNSYNCHRONIZED: no known relationship with the primary's data (e.g. just added).
 * - SYNCHRONIZING: being explicitly updated from the primary (not as a consequence of host writes).
 * - CONSISTENT: a byte-for-byte duplicate of the primary at some determinable point in time.
 * - SYNCHRONIZED: a byte-for-byte duplicate of the primary now (no outstanding writes).
 */
export type ImageState = 'UNSYNCHRONIZED' | 'SYNCHRONIZING' | 'CONSISTENT' | 'SYNCHRONIZED';
export const IMAGE_STATES: readonly ImageState[] = ['UNSYNCHRONIZED', 'SYNCHRONIZING', 'CONSISTENT', 'SYNCHRONIZED'];

/**
 * - sync-start: UNSYNCHRONIZED -> SYNCHRONIZING when the mirror is ACTIVE (implicit) [0061].
 * - mark-synchronized: the administrator copied the image out of band and marks it SYNCHRONIZED
 *   (mirror ACTIVE) [0062].
 * - primary-write: the primary commits a host write: SYNCHRONIZED -> CONSISTENT (mirror ACTIVE) [0064].
 * - quiesced: no outstanding writes on either side: CONSISTENT -> SYNCHRONIZED (mirror ACTIVE,
 *   under the primary's control) [0066].
 * - force-sync: the administrator forces a CONSISTENT image to SYNCHRONIZING while the mirror is
 *   INACTIVE [0067 (1)].
 * - updates-lost: the secondary determines that write updates were lost in transit (a fracture):
 *   CONSISTENT -> SYNCHRONIZING (mirror ACTIVE) [0067 (2)].
 * - history-lost: the primary's write history is corrupt or lost: CONSISTENT -> UNSYNCHRONIZED
 *   (mirror ACTIVE) [0068].
 * - sync-failed: SYNCHRONIZING -> UNSYNCHRONIZED, for any reason (any mirror state) [0070].
 * - sync-done: SYNCHRONIZING -> CONSISTENT, whatever the method (any mirror state) [0071].
 */
export type ImageEvent =
  | 'sync-start'
  | 'mark-synchronized'
  | 'primary-write'
  | 'quiesced'
  | 'force-sync'
  | 'updates-lost'
  | 'history-lost'
  | 'sync-failed'
  | 'sync-done';
export const IMAGE_EVENTS: readonly ImageEvent[] = ['sync-start', 'mark-synchronized', 'primary-write', 'quiesced', 'force-sync', 'updates-lost', 'history-lost', 'sync-failed', 'sync-done'];

export interface ImageTransitionRule {
  to: ImageState;
  /** the mirror states in which the transition may happen */
  mirror: readonly MirrorState[];
}
const ANY: readonly MirrorState[] = MIRROR_STATES;
const ACTIVE_ONLY: readonly MirrorState[] = ['ACTIVE'];

/** The whole table; anything absent (or in another mirror state) is illegal. */
export const IMAGE_TRANSITIONS: Readonly<Record<ImageState, Readonly<Partial<Record<ImageEvent, ImageTransitionRule>>>>> = {
  UNSYNCHRONIZED: {
    'sync-start': { to: 'SYNCHRONIZING', mirror: ACTIVE_ONLY },
    'mark-synchronized': { to: 'SYNCHRONIZED', mirror: ACTIVE_ONLY },
  },
  SYNCHRONIZED: {
    'primary-write': { to: 'CONSISTENT', mirror: ACTIVE_ONLY },
  },
  CONSISTENT: {
    quiesced: { to: 'SYNCHRONIZED', mirror: ACTIVE_ONLY },
    'force-sync': { to: 'SYNCHRONIZING', mirror: ['INACTIVE'] },
    'updates-lost': { to: 'SYNCHRONIZING', mirror: ACTIVE_ONLY },
    'history-lost': { to: 'UNSYNCHRONIZED', mirror: ACTIVE_ONLY },
  },
  SYNCHRONIZING: {
    'sync-failed': { to: 'UNSYNCHRONIZED', mirror: ANY },
    'sync-done': { to: 'CONSISTENT', mirror: ANY },
  },
};

export class IllegalImageTransitionError extends Error {
  constructor(
    readonly state: ImageState,
    readonly event: ImageEvent,
    readonly mirrorState: MirrorState,
  ) {
    super(`illegal secondary image transition: ${event} in state ${state} (mirror ${mirrorState})`);
    this.name = 'IllegalImageTransitionError';
  }
}

export function imageTransition(state: ImageState, event: ImageEvent, mirrorState: MirrorState): ImageState {
  const row = IMAGE_TRANSITIONS[state];
  if (!row) throw new Error(`unknown image state ${String(state)}`);
  const rule = row[event];
  if (!rule || !rule.mirror.includes(mirrorState)) throw new IllegalImageTransitionError(state, event, mirrorState);
  return rule.to;
}

export function canImageTransition(state: ImageState, event: ImageEvent, mirrorState: MirrorState): boolean {
  const rule = IMAGE_TRANSITIONS[state]?.[event];
  return rule !== undefined && rule.mirror.includes(mirrorState);
}

/** Promotion needs a CONSISTENT or SYNCHRONIZED image, unless forced [0102]. */
export function promotable(state: ImageState): boolean {
  return state === 'CONSISTENT' || state === 'SYNCHRONIZED';
}
