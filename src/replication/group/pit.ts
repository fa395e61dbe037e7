/**
 * Point-in-time copies of a group's members on this array: a snapshot of every member at one
 * write boundary (on a secondary: between two batches of the receiver, so it is the group as of a
 * known journal record), and what the resync protection needs of a group (which members, whether
 * the group journals, the receiver's boundary).
 */
import type { GroupSnapshotResult } from './control.js';
import type { GroupContext, GroupEntry } from './entry.js';
import { GroupError } from './record.js';

/** A member's group, as the resync protection of the mirror driver sees it (GroupManager.memberGroup). */
export interface MemberGroup {
  groupId: string;
  name: string;
  members: string[];
  protectResync: boolean;
  /** the group journals: no bypass, no refresh (its secondaries are a point in time as a whole) */
  coherent: boolean;
  /** Runs `fn` between two batches of the group's receiver here (a secondary array with a receiver). */
  betweenBatches?: <T>(fn: (appliedThrough: number) => Promise<T>) => Promise<{ result: T; appliedThrough: number }>;
}

export function memberGroup(g: GroupEntry): MemberGroup {
  const r = g.receiver;
  return {
    groupId: g.record.groupId,
    name: g.record.name,
    members: [...g.record.members],
    protectResync: g.record.protectResync !== false,
    coherent: !g.record.bypass.on && !g.record.refresh?.running,
    ...(r ? { betweenBatches: <T>(fn: (appliedThrough: number) => Promise<T>) => r.betweenBatches(fn) } : {}),
  };
}

/**
 * `snapshot group G NAME`: every member LUN at one write boundary (the snapshot manager holds
 * all their gates: new writes wait, writes in flight finish). On a secondary with a receiver the
 * cut runs between two applied batches and records the last applied journal record (`groupSeq`).
 */
export async function snapshotGroup(ctx: GroupContext, ref: string, name: string): Promise<GroupSnapshotResult> {
  const g = ctx.find(ref);
  const snaps = ctx.host.snapshots;
  if (!snaps) throw new GroupError('unsupported', `array ${ctx.host.array} keeps no snapshots (a two-SP array in this release): no group snapshot`);
  const luns = g.record.members.map((id) => {
    const m = ctx.host.member(id);
    if (!m) throw new GroupError('not-found', `member ${id} of group ${g.record.name} has no image on ${ctx.host.array}`);
    return m.lunId;
  });
  const opts = { kind: 'group' as const, group: g.record.name, note: `group ${g.record.name} on ${ctx.host.array}` };
  const role = g.primary ? 'primary' : 'secondary';
  const receiver = g.receiver;
  if (receiver && !g.primary) {
    const { result, appliedThrough } = await receiver.betweenBatches((through) => snaps.create(luns, name, { ...opts, atBoundary: () => through }));
    ctx.event('snapshot', { groupId: g.record.groupId, name: g.record.name, snapshot: name, role, pauseMs: result.pauseMs, groupSeq: appliedThrough });
    return { group: g.record.name, snapshots: result.snapshots as unknown as GroupSnapshotResult['snapshots'], pauseMs: result.pauseMs, groupSeq: appliedThrough, role };
  }
  const made = await snaps.create(luns, name, opts);
  ctx.event('snapshot', { groupId: g.record.groupId, name: g.record.name, snapshot: name, role, pauseMs: made.pauseMs, groupSeq: null });
  return { group: g.record.name, snapshots: made.snapshots as unknown as GroupSnapshotResult['snapshots'], pauseMs: made.pauseMs, groupSeq: null, role };
}
