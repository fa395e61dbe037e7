/**
 * What `promote` says about the copy it makes primary: the last journal record the receiver
 * applied and when, and when it last heard from the sender. These are the secondary's own
 * observations on its own clock: the copy's point in time is at or before the last apply, so the
 * seconds since are a lower bound of its age; the writes the old primary acknowledged after the
 * link was cut never reached this array, and it cannot know how many there were. The report lives
 * in memory (GroupEntry.promotion) and is not persisted.
 */
import type { ReceiverObservations } from './receiver.js';

/** The `group.promoted` event's details (besides groupId and name). */
export interface PromotionFacts {
  /** promote was given --force */
  forced: boolean;
  /** the last journal record applied here (0: none ever); null when no receiver was open */
  appliedThrough: number | null;
  /** ISO time a record was last applied here; null: none since this array's process started */
  lastAppliedAt: string | null;
  /** ISO time the sender last sent a hello or a batch; null: not since the process started */
  lastContactAt: string | null;
  /** from lastAppliedAt to the moment the receiver stopped; null when lastAppliedAt is */
  secondsSinceLastApply: number | null;
  /**
   * Every member's image here was SYNCHRONIZED or CONSISTENT at the promote: the copy is one
   * point in time. False when a member was being resynchronized (after a writelog overflow and
   * the link's return) or never synchronized: a forced promote then makes primary an image that
   * mixes old and new regions, not a point in time.
   */
  consistent: boolean;
  /** the members that made it inconsistent, with their image state */
  inconsistentMembers: { name: string; state: string | null }[];
  /**
   * `promote --from-snapshot`: every member was rolled back to the group's resync-protection
   * snapshot first (cut when the resync began, through journal record `groupSeq`): the copy is
   * that point in time, `ageSeconds` old at least.
   */
  fromSnapshot?: { snapshot: string; created: string; ageSeconds: number; groupSeq: number | null } | null;
}

/** GroupView.promotion: the facts and when the receiver stopped (nothing was applied after `at`). */
export interface PromotionReport extends PromotionFacts {
  at: string;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Image states of a point-in-time copy. */
const CONSISTENT_STATES = new Set(['SYNCHRONIZED', 'CONSISTENT']);

/**
 * The report of a promote whose receiver stopped at `now` (`obs` null: no receiver was open);
 * `members`: each member's local image state just before the members were promoted.
 */
export function promotionReport(obs: ReceiverObservations | null, forced: boolean, members: { name: string; state: string | null }[], now = Date.now()): PromotionReport {
  const last = obs?.lastAppliedAt ?? null;
  const inconsistentMembers = members.filter((m) => m.state === null || !CONSISTENT_STATES.has(m.state));
  return {
    consistent: inconsistentMembers.length === 0,
    inconsistentMembers,
    at: new Date(now).toISOString(),
    forced,
    appliedThrough: obs ? obs.appliedThrough : null,
    lastAppliedAt: iso(last),
    lastContactAt: iso(obs?.lastContactAt ?? null),
    // milliseconds kept: a fraction of a second matters after a short cut
    secondsSinceLastApply: last === null ? null : Math.max(0, now - last) / 1000,
  };
}

/** The event's part of a report (the event carries its own time). */
export function promotionFacts(r: PromotionReport): PromotionFacts {
  const { at: _at, ...facts } = r;
  return facts;
}
