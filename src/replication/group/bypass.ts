/**
 * Bypass: journaling stops, the members' changes go to the fracture logs, and the secondaries
 * are resynchronized from them; back to journaling once they are in sync (unless the operator
 * holds bypass on). Phases: bypass off -> entering -> resyncing -> on -> off (./state.ts).
 */
import type { GroupContext, GroupEntry } from './entry.js';

/**
 * Stops journaling: the regions of every record not yet acknowledged go into the members'
 * fracture logs, the journal is dropped, and the secondaries are resynchronized from the logs
 * (they are not a point-in-time copy until that finishes). Host writes never wait for it.
 */
export function enterBypass(ctx: GroupContext, g: GroupEntry, reason: string): Promise<void> {
  if (g.state.bypass === 'entering' || g.state.bypass === 'resyncing') return g.bypassEntry!;
  if (!g.primary || g.state.bypass === 'on') return Promise.resolve();
  const pg = g.primary;
  // All in this tick: from here on member writes take the bypass route, and every record not
  // yet acknowledged is in the fracture logs before anything else can look at them.
  const ranges = pg.pendingRanges();
  g.record.bypass = { on: true, reason: reason === 'operator' ? 'operator' : 'overflow', since: new Date().toISOString() };
  ctx.apply(g, { op: 'enter-bypass', reason });
  for (const r of ranges) ctx.host.markFracturesNow(g.record.members[r.index]!, r.offset, r.length);
  pg.discard();
  for (const s of pg.senders.values()) s.baseOnHello = pg.writelog.next;
  const bypass = g.record.bypass;
  g.bypassEntry = (async () => {
    for (const m of g.record.members) await ctx.host.persistFractures(m);
    const events = await ctx.exclusive(g, () => ctx.save(g, (r) => (r.bypass = bypass), { op: 'bypass-saved', reason, records: ranges.length }));
    ctx.publish(g, events);
    for (const m of g.record.members) await ctx.host.resyncDirty(m);
  })().finally(() => {
    // Saved or not, the group is in bypass now (in memory at least) and leaves it like any other.
    ctx.apply(g, { op: 'bypass-settled' });
    g.bypassEntry = null;
  });
  return g.bypassEntry;
}

/** Enters bypass from a path that cannot wait (a gap, a failed local write): a failure becomes an event. */
export function enterBypassLater(ctx: GroupContext, g: GroupEntry, reason: string): void {
  enterBypass(ctx, g, reason).catch((e: unknown) => ctx.event('bypass-failed', { groupId: g.record.groupId, reason, error: (e as Error).message }));
}

/** Back to journaling once every member's secondaries are resynchronized (unless the operator holds bypass on). */
export async function maybeLeaveBypass(ctx: GroupContext, g: GroupEntry): Promise<void> {
  if (!g.primary || g.state.bypass !== 'on' || g.record.bypass.reason === 'operator') return;
  if (g.record.mode === 'synchronous') return leaveBypass(ctx, g, 'synchronous mode');
  if (!g.record.members.every((m) => ctx.host.inSync(m))) {
    // Host writes during bypass mark the fracture logs again: keep resynchronizing them.
    for (const m of g.record.members) await ctx.host.resyncDirty(m);
    return;
  }
  await leaveBypass(ctx, g, 'secondaries resynchronized');
}

async function leaveBypass(ctx: GroupContext, g: GroupEntry, why: string): Promise<void> {
  const pg = g.primary!;
  // Same tick as the check: a member write after this point is journaled.
  g.record.bypass = { on: false, reason: null, since: null };
  const events = ctx.apply(g, { op: 'leave-bypass', why });
  for (const s of pg.senders.values()) {
    s.baseOnHello = pg.writelog.next;
    s.client?.dropConnection();
  }
  await ctx.exclusive(g, () => ctx.save(g, (r) => (r.bypass = { on: false, reason: null, since: null })));
  ctx.publish(g, events);
  // Leaving for the synchronous mode, the fracture logs may still hold regions: resync them.
  for (const m of g.record.members) await ctx.host.resyncDirty(m);
}
