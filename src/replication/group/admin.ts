/**
 * The administrative verbs of a group (`sanbox group`, the management API): create, mode
 * changes without losing or reordering a write, pause and resume, bypass on and off,
 * attributes, delete and promote. Refresh and backfresh are in ./copy.ts.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { isPlainName } from '../../array/index.js';
import { requireNoHeartbeat } from '../state/index.js';
import { enterBypass, maybeLeaveBypass } from './bypass.js';
import type { GroupView, SettableGroupAttributes } from './control.js';
import { newEntry, openStore, type GroupContext } from './entry.js';
import { closePrimary, openPrimary, startTimers } from './primary-side.js';
import { attributeProblems, GroupError, newGroupRecord, withDefaults } from './record.js';
import type { GroupFallback } from './host.js';
import { promotionFacts, promotionReport } from './promotion.js';
import { parseThrottles } from './throttle.js';
import { settleRole } from './role.js';
import { inBypass } from './state.js';
import type { GroupAttributes, GroupMode, GroupRecord } from './types.js';

/** Leaving the synchronous mode waits this long for the journal to drain, then goes to bypass. */
const DRAIN_TIMEOUT_MS = 30_000;
const SETTABLE: readonly string[] = ['throttles', 'throttleEveryMs', 'perfEveryMs', 'perfMaxBytes', 'nearSync', 'protectResync', 'freeze'];

export async function createGroup(ctx: GroupContext, p: { name: string; members: string[]; attributes?: Partial<GroupAttributes> }): Promise<GroupView> {
  const { host } = ctx;
  if (!isPlainName(p.name)) throw new GroupError('invalid', `group name ${JSON.stringify(p.name)}: use 1-64 letters, digits, dot, dash, underscore (not . or ..)`);
  if ([...ctx.groups.values()].some((g) => g.record.name === p.name)) throw new GroupError('exists', `array ${host.array} already has a group named ${p.name}`);
  if (!Array.isArray(p.members) || p.members.length === 0) throw new GroupError('invalid', 'a group needs at least one member mirror');
  const infos = p.members.map((ref) => {
    const m = host.memberByName(ref);
    if (!m) throw new GroupError('not-found', `array ${host.array} has no mirror ${JSON.stringify(ref)}`);
    if (m.role !== 'primary') throw new GroupError('not-primary', `mirror ${ref}: this array holds a secondary image; create the group on ${m.primaryArray}`);
    requireNoHeartbeat(m, 'group-add');
    const other = ctx.groupOf(m.mirrorId);
    if (other) throw new GroupError('exists', `mirror ${ref} is already in group ${other.record.name}`);
    return m;
  });
  if (new Set(infos.map((m) => m.mirrorId)).size !== infos.length) throw new GroupError('invalid', 'a mirror is listed twice');
  const arrays = (m: { secondaryArrays: string[] }) => [...m.secondaryArrays].sort().join(',');
  if (infos.some((m) => arrays(m) !== arrays(infos[0]!))) throw new GroupError('state', `the members must replicate to the same arrays (${infos.map((m) => `${m.name}: ${arrays(m) || 'none'}`).join('; ')})`);
  if (!infos[0]!.secondaryArrays.length) throw new GroupError('state', 'the members have no secondary image yet');
  const attrs = withDefaults(p.attributes ?? {});
  const problems = attributeProblems(attrs);
  if (problems.length) throw new GroupError('invalid', problems.join('; '));
  const groupId = `${p.name}-${randomBytes(4).toString('hex')}`;
  const dir = join(ctx.dirRoot, groupId);
  await fsp.mkdir(dir, { recursive: true });
  const store = openStore(dir, host);
  await store.load();
  const record = newGroupRecord(groupId, p.name, infos.map((m) => m.mirrorId), attrs);
  record.epoch = ctx.epochOf(record);
  // Journaling starts only with every secondary in sync; until then the fracture logs cover it.
  if (record.mode !== 'synchronous' && !record.members.every((m) => host.inSync(m))) record.bypass = { on: true, reason: 'overflow', since: new Date().toISOString() };
  await store.save(record);
  const g = newEntry(record, dir, store);
  ctx.groups.set(groupId, g);
  await openPrimary(ctx, g, 'create');
  ctx.event('created', { groupId, name: p.name, mode: record.mode, members: record.members });
  return ctx.view(g);
}

/** Mode changes without losing or reordering a write (see docs). */
export function setMode(ctx: GroupContext, ref: string, mode: GroupMode, nearSync?: Partial<GroupRecord['nearSync']>): Promise<GroupView> {
  const g = ctx.find(ref);
  return ctx.exclusive(g, async () => {
    const pg = ctx.needPrimary(g, 'a mode change');
    const from = g.record.mode;
    const next = withDefaults({ ...g.record, mode, nearSync: { ...g.record.nearSync, ...(nearSync ?? {}) } });
    const problems = attributeProblems(next);
    if (problems.length) throw new GroupError('invalid', problems.join('; '));
    if (from === mode && !nearSync) return ctx.view(g);
    let release!: () => void;
    g.switched = new Promise<void>((r) => (release = r));
    ctx.apply(g, { op: 'switch-start' });
    try {
      if (from === 'synchronous' && !inBypass(g.state)) {
        // Writes sent directly must be in before the first journaled one can overtake them.
        for (const m of g.record.members) await ctx.host.idle(m);
        for (const s of pg.senders.values()) {
          s.baseOnHello = pg.writelog.next;
          s.client?.dropConnection();
        }
      } else if (mode === 'synchronous' && from !== 'synchronous' && !inBypass(g.state)) {
        // Journaled writes must reach the secondaries before direct ones start.
        // Journal writes already under way finish first (they may still append).
        for (const m of g.record.members) await ctx.host.idle(m);
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), DRAIN_TIMEOUT_MS)));
        const drained = await Promise.race([pg.drained().then(() => true), timeout]);
        clearTimeout(timer);
        if (!drained) await enterBypass(ctx, g, 'drain timeout');
      }
      await ctx.save(g, (r) => {
        r.mode = mode;
        r.nearSync = next.nearSync;
      });
      pg.record = g.record;
      ctx.publish(g, ctx.apply(g, { op: 'switch-done', from, to: mode }));
    } finally {
      if (g.state.modeChange === 'switching') ctx.apply(g, { op: 'switch-abort' });
      g.switched = null;
      release();
    }
    return ctx.view(g);
  });
}

export function pause(ctx: GroupContext, ref: string, paused: boolean): Promise<GroupView> {
  const g = ctx.find(ref);
  return ctx.exclusive(g, async () => {
    const pg = ctx.needPrimary(g, paused ? 'pause' : 'resume');
    const events = await ctx.save(g, (r) => (r.paused = paused), { op: paused ? 'pause' : 'resume' });
    for (const s of pg.senders.values()) s.setPaused(paused);
    ctx.publish(g, events);
    return ctx.view(g);
  });
}

export async function bypass(ctx: GroupContext, ref: string, on: boolean): Promise<GroupView> {
  const g = ctx.find(ref);
  ctx.needPrimary(g, 'bypass');
  if (on) await enterBypass(ctx, g, 'operator');
  else if (inBypass(g.state)) {
    await ctx.exclusive(g, () => ctx.save(g, (r) => (r.bypass = { ...r.bypass, reason: 'overflow' })));
    g.record.bypass.reason = 'overflow'; // leaves once the secondaries are resynchronized
    await maybeLeaveBypass(ctx, g);
  }
  return ctx.view(g);
}

export function setAttributes(ctx: GroupContext, ref: string, p: SettableGroupAttributes): Promise<GroupView> {
  const g = ctx.find(ref);
  return ctx.exclusive(g, async () => {
    ctx.needPrimary(g, 'changing attributes');
    for (const k of Object.keys(p)) if (!SETTABLE.includes(k)) throw new GroupError('invalid', `attribute ${JSON.stringify(k)} cannot be changed here (mode: setMode; writelog size: fixed at create)`);
    let throttles = g.record.throttles;
    if (p.throttles !== undefined) {
      const parsed = parseThrottles(p.throttles, 'throttles');
      if (parsed.problems.length) throw new GroupError('invalid', parsed.problems.join('; '));
      throttles = parsed.throttles;
    }
    const next = { ...g.record, ...p, throttles, nearSync: { ...g.record.nearSync, ...(p.nearSync ?? {}) } };
    const problems = attributeProblems(next);
    if (problems.length) throw new GroupError('invalid', problems.join('; '));
    await ctx.save(g, (r) => Object.assign(r, { throttles, throttleEveryMs: next.throttleEveryMs, perfEveryMs: next.perfEveryMs, perfMaxBytes: next.perfMaxBytes, nearSync: next.nearSync, protectResync: next.protectResync, freeze: next.freeze }));
    if (p.perfMaxBytes !== undefined && g.perf) {
      await g.perf.recorder.close();
      g.perf = null;
    }
    if (p.throttles !== undefined && throttles.length === 0 && g.primary) {
      // No throttle left to ease them off: back to no sleep and no delay.
      g.primary.senderSleepMs = 0;
      g.primary.ackDelayMs = 0;
    }
    startTimers(ctx, g);
    ctx.event('attributes', { groupId: g.record.groupId, changed: Object.keys(p) });
    return ctx.view(g);
  });
}

export async function deleteGroup(ctx: GroupContext, ref: string): Promise<void> {
  const g = ctx.find(ref);
  ctx.needPrimary(g, 'delete');
  // The journal must be empty: the members go on as synchronous mirrors.
  if (g.record.mode !== 'synchronous') await setMode(ctx, ref, 'synchronous');
  await ctx.exclusive(g, async () => {
    await ctx.save(g, (r) => (r.deleted = true));
    await ctx.push(g);
    await closePrimary(g, false);
    ctx.groups.delete(g.record.groupId);
    await fsp.rm(g.dir, { recursive: true, force: true });
    ctx.event('deleted', { groupId: g.record.groupId, name: g.record.name });
  });
}

/** A member image here that is a point in time (SYNCHRONIZED or CONSISTENT, and no group resync under way). */
const POINT_IN_TIME = new Set(['SYNCHRONIZED', 'CONSISTENT']);

function ageWords(s: number): string {
  return s < 10 ? `${s.toFixed(1)} s` : s < 120 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** Why promote refuses a group whose members here are not one point in time, and what it can do instead. */
function refusal(name: string, array: string, bad: { name: string; state: string | null }[], fb: GroupFallback | null): string {
  const which = bad.map((m) => `${m.name} ${m.state ?? 'unknown'}`).join(', ');
  const head = `group ${name} is NOT a consistent copy on ${array} (${which}): a resynchronization was under way, the images mix regions of different times; promotion refused.`;
  if (fb && fb.valid) {
    const seq = fb.groupSeq !== null ? `, through journal record ${fb.groupSeq}` : '';
    return `${head} Its last consistent point is snapshot ${fb.snapshot} of ${fb.members.join(', ')} (taken ${ageWords(fb.ageSeconds)} ago, when the resync began${seq}): --from-snapshot rolls every member back to it and promotes; --force promotes the members as they are.`;
  }
  if (fb) return `${head} Its fallback snapshot ${fb.snapshot} is no longer valid (invalidated by a full snapshot store, or deleted): --force promotes the members as they are.`;
  return `${head} No snapshot holds its last consistent point (protectResync off, or this array keeps no snapshots): --force promotes the members as they are.`;
}

/**
 * Promotes every member on this (secondary) array: the receiver stops after the batch it applies.
 * A copy that is not one point in time (a member being resynchronized) is refused, naming the
 * fallback snapshot, unless `force` (promote as it is) or `fromSnapshot` (every member rolled back
 * to the group's resync-protection snapshot first). The view and the `group.promoted` event say
 * how old the copy is (./promotion.ts).
 */
export async function promote(ctx: GroupContext, ref: string, p: { force?: boolean; fromSnapshot?: boolean } = {}): Promise<GroupView> {
  const g = ctx.find(ref);
  if (g.primary) throw new GroupError('state', `group ${g.record.name} is already primary on ${ctx.host.array}`);
  if (p.force && p.fromSnapshot) throw new GroupError('invalid', 'promote takes --force (the members as they are) or --from-snapshot (rolled back to the fallback), not both');
  const prot = ctx.host.protection;
  // a resync that just began may be cutting the members' fallback now: decide once it is there
  await prot?.settled(g.record.members);
  const memberStates = () => {
    const begun = new Set(prot?.resyncBegun(g.record.members) ?? []);
    return g.record.members.map((id) => {
      const m = ctx.host.member(id);
      const state = m?.localState ?? null;
      return { name: m?.name ?? id, state: begun.has(id) && state !== null && POINT_IN_TIME.has(state) ? `${state} (group resync under way)` : state };
    });
  };
  const fb = prot?.fallback(g.record.members) ?? null;
  const bad = memberStates().filter((m) => m.state === null || !POINT_IN_TIME.has(m.state));
  if (p.fromSnapshot) {
    if (!fb) throw new GroupError('not-found', `group ${g.record.name} has no resync-protection snapshot on ${ctx.host.array}: nothing to roll back to${bad.length ? ' (--force promotes the members as they are)' : ''}`);
    if (!fb.valid) throw new GroupError('state', `the fallback snapshot ${fb.snapshot} of group ${g.record.name} is no longer valid (invalidated by a full snapshot store, or deleted): it cannot be rolled back to`);
  } else if (bad.length && !p.force) throw new GroupError('inconsistent', refusal(g.record.name, ctx.host.array, bad, fb));
  // A plain promote: the old primary steps down first, for every member, before anything changes
  // here; one it cannot reach (a cut link) refuses the whole promote (never two primaries).
  const plain = !p.force && !p.fromSnapshot;
  if (plain) {
    const done: string[] = [];
    for (const m of g.record.members) {
      try {
        await ctx.host.stepDownOldPrimary(m);
      } catch (err) {
        const code = (err as { code?: string }).code;
        const already = done.length ? ` (the old primary stepped down already for ${done.join(', ')}: promote again once it can be reached)` : '';
        throw new GroupError(code === 'unreachable' || code === 'inconsistent' || code === 'not-found' ? code : 'state', `group ${g.record.name}: ${(err as Error).message}${already}`);
      }
      done.push(ctx.host.member(m)?.name ?? m);
    }
  }
  await g.receiver?.stop();
  // Taken now: nothing is applied after the stop, and promoting the members may close the
  // receiver (./role.ts) before the section below runs.
  const states = memberStates();
  const rolled = p.fromSnapshot ? await prot!.rollBack(g.record.members) : undefined;
  const report = promotionReport(g.receiver?.observed() ?? null, p.force === true, rolled ? states.map((m) => ({ ...m, state: 'CONSISTENT' })) : states);
  if (rolled && fb) report.fromSnapshot = { snapshot: fb.snapshot, created: fb.created, ageSeconds: fb.ageSeconds, groupSeq: fb.groupSeq };
  for (const m of g.record.members) await ctx.host.promoteMirror(m, p.force === true || rolled !== undefined, rolled?.get(m), plain);
  const events = await ctx.exclusive(g, async () => {
    await g.receiver?.close();
    g.receiver = null;
    // The old primary must be resynchronized before the journal can feed it.
    g.record.bypass = { on: true, reason: 'overflow', since: new Date().toISOString() };
    const promoted = ctx.apply(g, { op: 'promote', name: g.record.name, facts: promotionFacts(report) });
    g.promotion = report;
    await ctx.save(g, (r) => (r.bypass = g.record.bypass));
    await settleRole(ctx, g, 'promote');
    return promoted;
  });
  ctx.publish(g, events);
  if (rolled && fb) ctx.event('promoted-from-snapshot', { groupId: g.record.groupId, name: g.record.name, snapshot: fb.snapshot, created: fb.created, ageSeconds: fb.ageSeconds, groupSeq: fb.groupSeq, members: fb.members });
  return ctx.view(g);
}
