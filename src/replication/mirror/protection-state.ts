/**
 * What this array knows of the data of its own image of a mirror, for resync protection: whether
 * it is a point in time that a snapshot can keep while a resync rewrites the image. A table, like
 * the record's state tables (src/replication/state/tables.ts): anything absent is illegal.
 *
 * States:
 * - unknown: no known point in time (a new secondary that never finished its first
 *   synchronization).
 * - consistent: a point in time: the record says CONSISTENT or SYNCHRONIZED (for a group member:
 *   and the group is coherent), or the image was the primary here until it was demoted.
 * - protected: a resync is rewriting the image (or was, and stopped); a resync-protection snapshot
 *   holds its last consistent point.
 * - unprotected: a resync is rewriting the image (or was) and no snapshot holds its last
 *   consistent point (protection off, the array keeps no snapshots, the snapshot failed or was
 *   invalidated, or there was none to keep).
 * - primary: the image is the mirror's primary here; nothing to protect.
 *
 * Events:
 * - in-sync: the record says the image is CONSISTENT or SYNCHRONIZED (a group member: every
 *   member is, and the group journals again).
 * - resync: a resync begins on the image (the record says SYNCHRONIZING, or a resync write
 *   arrives) and protection is on and possible.
 * - resync-bare: the same with protection off or impossible (no snapshot manager).
 * - lost: the protection snapshot could not be taken, or was invalidated or deleted.
 * - demoted: the image was the primary here and is a secondary now.
 * - promoted: the image becomes the primary here.
 */
import type { GroupFallback } from '../group/index.js';

export type ProtectionState = 'unknown' | 'consistent' | 'protected' | 'unprotected' | 'primary';
export const PROTECTION_STATES: readonly ProtectionState[] = ['unknown', 'consistent', 'protected', 'unprotected', 'primary'];

export type ProtectionEvent = 'in-sync' | 'resync' | 'resync-bare' | 'lost' | 'demoted' | 'promoted';
export const PROTECTION_EVENTS: readonly ProtectionEvent[] = ['in-sync', 'resync', 'resync-bare', 'lost', 'demoted', 'promoted'];

/** take: cut the protection snapshot (before any resync write lands); release: delete it. */
export type ProtectionAction = 'take' | 'release' | null;

export interface ProtectionRule {
  to: ProtectionState;
  action: ProtectionAction;
}

const go = (to: ProtectionState, action: ProtectionAction = null): ProtectionRule => ({ to, action });

/** The whole table; anything absent is illegal. */
export const PROTECTION_TRANSITIONS: Readonly<Record<ProtectionState, Readonly<Partial<Record<ProtectionEvent, ProtectionRule>>>>> = {
  unknown: { 'in-sync': go('consistent'), resync: go('unprotected'), 'resync-bare': go('unprotected'), demoted: go('consistent'), promoted: go('primary') },
  consistent: { 'in-sync': go('consistent'), resync: go('protected', 'take'), 'resync-bare': go('unprotected'), demoted: go('consistent'), promoted: go('primary') },
  // A resync that stops and starts again keeps the first snapshot: it is the last consistent point.
  protected: { 'in-sync': go('consistent', 'release'), resync: go('protected'), 'resync-bare': go('protected'), lost: go('unprotected'), demoted: go('consistent', 'release'), promoted: go('primary') },
  unprotected: { 'in-sync': go('consistent'), resync: go('unprotected'), 'resync-bare': go('unprotected'), demoted: go('consistent'), promoted: go('primary') },
  primary: { demoted: go('consistent'), promoted: go('primary') },
};

export class IllegalProtectionTransitionError extends Error {
  constructor(
    readonly state: ProtectionState,
    readonly event: ProtectionEvent,
  ) {
    super(`illegal resync-protection transition: ${event} in state ${state}`);
    this.name = 'IllegalProtectionTransitionError';
  }
}

export function protectionTransition(state: ProtectionState, event: ProtectionEvent): ProtectionRule {
  const rule = PROTECTION_TRANSITIONS[state]?.[event];
  if (!rule) throw new IllegalProtectionTransitionError(state, event);
  return rule;
}

export function canProtectionTransition(state: ProtectionState, event: ProtectionEvent): boolean {
  return PROTECTION_TRANSITIONS[state]?.[event] !== undefined;
}

/** The state of an image this array has no protection file for (a record from before protection, a join). */
export function initialProtectionState(img: { role: 'primary' | 'secondary'; state: string | null; fractured: boolean; fractureReason: string | null }): ProtectionState {
  if (img.role === 'primary') return 'primary';
  if (img.state === 'CONSISTENT' || img.state === 'SYNCHRONIZED') return 'consistent';
  // a former primary, demoted by a promote elsewhere, holds its own last point in time
  if (img.fractured && img.fractureReason === 'promote') return 'consistent';
  return 'unknown';
}

/** What the API shows of an image's resync protection (MirrorView.protection). */
export interface ProtectionView {
  /** protectResync of the mirror (or of its group) */
  enabled: boolean;
  state: ProtectionState;
  /** the snapshot holding the image's last consistent point while a resync rewrites it (a group's: of all members) */
  fallback: (GroupFallback & { lun: number; export: string }) | null;
}
