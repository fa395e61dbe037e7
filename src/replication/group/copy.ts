/**
 * Whole-image copies of a group: refresh (primary -> secondaries through the writelog, host I/O
 * goes on) and backfresh (a secondary's image -> the primary, the members offline to hosts).
 * Phases: copy idle -> refresh | backfresh-offline -> idle (./state.ts).
 */
import type { GroupView } from './control.js';
import type { GroupContext, GroupEntry, RefreshJob } from './entry.js';
import type { PrimaryGroup } from './primary-group.js';
import { GroupError } from './record.js';
import { inBypass } from './state.js';

/** Refresh: records of at most this many bytes. */
const REFRESH_CHUNK_BYTES = 256 * 1024;
/** Refresh flow control: never fill the writelog past this percent (status says so when it waits)... */
export const REFRESH_MAX_WRITELOG_PERCENT = 50;
/** ...and look again this often while it is. */
const REFRESH_POLL_MS = 5;
const REFRESH_PROGRESS_EVERY_MS = 1000;
/** Block status is asked for at most this much at a time. */
const BLOCK_STATUS_MAX_BYTES = 1 << 30;
const BACKFRESH_CHUNK_BYTES = 4 * 1024 * 1024;
/** A backfresh-progress event every this many bytes. */
const BACKFRESH_PROGRESS_BYTES = 64 * 1024 * 1024;

type RefreshPlan = Array<{ index: number; offset: number; length: number; hole: boolean }>;

function refusePendingCopy(g: GroupEntry): void {
  if (g.state.copy !== 'idle') throw new GroupError('state', `a ${g.state.copy === 'refresh' ? 'refresh' : 'backfresh'} of group ${g.record.name} is running`);
}

/**
 * Refresh: every allocated region of every member goes through the writelog to the
 * secondaries while host I/O goes on, paced so the writelog stays below half full. The
 * secondaries are incoherent until it completes (the view says so).
 */
export function refresh(ctx: GroupContext, ref: string): Promise<GroupView> {
  const g = ctx.find(ref);
  return ctx.exclusive(g, async () => {
    const pg = ctx.needPrimary(g, 'refresh');
    refusePendingCopy(g);
    if (g.record.mode === 'synchronous' || inBypass(g.state)) throw new GroupError('state', `refresh goes through the writelog: the group must journal (asynchronous or near-synchronous, not in bypass), it is ${inBypass(g.state) ? 'in bypass' : g.record.mode}`);
    const { plan, total } = await planRefresh(pg, g.record.members.length);
    const events = await ctx.save(g, (r) => (r.refresh = { running: true, bytesDone: 0, bytesTotal: total }), { op: 'refresh-start', bytesTotal: total });
    const job: RefreshJob = { stop: false, done: Promise.resolve(), window: null };
    g.refreshJob = job;
    ctx.publish(g, events);
    job.done = refreshLoop(ctx, g, pg, job, plan, total).then(
      async () => {
        g.refreshJob = null;
        const done = ctx.apply(g, { op: 'refresh-done', bytes: total });
        await ctx.exclusive(g, () => ctx.save(g, (r) => (r.refresh = null)));
        ctx.publish(g, done);
      },
      async (err) => {
        g.refreshJob = null;
        const failed = ctx.apply(g, { op: 'refresh-failed', error: (err as Error).message });
        // The record keeps the progress, no longer running; when that cannot be saved, the event says so.
        await ctx.exclusive(g, () => ctx.save(g, (r) => (r.refresh = r.refresh ? { ...r.refresh, running: false } : null))).catch((e: unknown) => {
          for (const ev of failed) ev.details.saveError = (e as Error).message;
        });
        ctx.publish(g, failed);
      },
    );
    return ctx.view(g);
  });
}

async function planRefresh(pg: PrimaryGroup, members: number): Promise<{ plan: RefreshPlan; total: number }> {
  let total = 0;
  const plan: RefreshPlan = [];
  for (let index = 0; index < members; index++) {
    const m = pg.member(index);
    for (let off = 0; off < m.size; ) {
      const ext = await m.device.blockStatus(off, Math.min(m.size - off, BLOCK_STATUS_MAX_BYTES));
      if (!ext.length) break;
      for (const x of ext) {
        plan.push({ index, offset: off, length: x.length, hole: x.hole });
        if (!x.hole) total += x.length;
        off += x.length;
      }
    }
  }
  return { plan, total };
}

async function refreshLoop(ctx: GroupContext, g: GroupEntry, pg: PrimaryGroup, job: RefreshJob, plan: RefreshPlan, total: number): Promise<void> {
  let done = 0;
  let lastReport = performance.now();
  for (const run of plan) {
    for (let off = run.offset; off < run.offset + run.length; ) {
      if (job.stop || !g.primary) throw new Error('stopped');
      if (inBypass(g.state)) throw new Error('the group went to bypass: the fracture logs carry the rest');
      // Flow control: never fill the writelog past half.
      while (pg.writelog.usage().percent > REFRESH_MAX_WRITELOG_PERCENT) {
        if (job.stop || pg.closed) throw new Error('stopped');
        await new Promise((r) => setTimeout(r, REFRESH_POLL_MS));
      }
      const len = Math.min(REFRESH_CHUNK_BYTES, run.offset + run.length - off);
      if (run.hole) pg.appendCopy(run.index, off, len, null);
      else {
        // A host write that lands while the chunk is read would be overtaken by the older
        // copy: read again until none did (the append is in the same tick as the check).
        const w = { index: run.index, offset: off, length: len, touched: false };
        job.window = w;
        for (;;) {
          w.touched = false;
          const data = await pg.member(run.index).device.read(off, len);
          if (w.touched) continue;
          pg.appendCopy(run.index, off, len, data);
          break;
        }
        job.window = null;
        done += len;
      }
      off += len;
      if (performance.now() - lastReport > REFRESH_PROGRESS_EVERY_MS) {
        lastReport = performance.now();
        // Progress only (not saved): the record keeps running.
        g.record.refresh = { running: true, bytesDone: done, bytesTotal: total };
        ctx.event('refresh-progress', { groupId: g.record.groupId, bytesDone: done, bytesTotal: total });
      }
    }
  }
  await pg.drained();
}

/**
 * Backfresh: the secondary's image comes back to the primary. The members are offline to
 * hosts meanwhile; unsent journal records are dropped (the secondary's data wins); afterwards
 * primary and secondary are identical and the group journals again from a new base.
 */
export function backfresh(ctx: GroupContext, ref: string, p: { from?: string } = {}): Promise<GroupView> {
  const g = ctx.find(ref);
  return ctx.exclusive(g, async () => {
    const pg = ctx.needPrimary(g, 'backfresh');
    refusePendingCopy(g);
    const arrays = ctx.host.member(g.record.members[0]!)!.secondaryArrays;
    const from = p.from ?? arrays[0];
    if (!from || !arrays.includes(from)) throw new GroupError('state', `backfresh from ${JSON.stringify(p.from)}: the group replicates to ${arrays.join(', ')}`);
    ctx.publish(g, ctx.apply(g, { op: 'backfresh-start', from }));
    try {
      const bytes = await copyBack(ctx, g, pg, from);
      for (const s of pg.senders.values()) {
        s.baseOnHello = pg.writelog.next;
        s.client?.dropConnection();
      }
      ctx.publish(g, ctx.apply(g, { op: 'backfresh-done', from, bytes }));
    } finally {
      if (g.state.copy === 'backfresh-offline') ctx.apply(g, { op: 'backfresh-abort' });
    }
    return ctx.view(g);
  });
}

/** Reads every member's image from the secondary `from` and writes it locally; returns the bytes copied. */
async function copyBack(ctx: GroupContext, g: GroupEntry, pg: PrimaryGroup, from: string): Promise<number> {
  const { host } = ctx;
  for (const m of g.record.members) await host.idle(m);
  pg.discard();
  let total = 0;
  for (const id of g.record.members) total += host.member(id)!.size;
  let done = 0;
  for (let index = 0; index < g.record.members.length; index++) {
    const id = g.record.members[index]!;
    const m = pg.member(index);
    for (let off = 0; off < m.size; ) {
      const len = Math.min(BACKFRESH_CHUNK_BYTES, m.size - off);
      const data = await host.readSecondary(id, from, off, len);
      if (data.every((b) => b === 0)) await m.device.writeZeroes(off, len);
      else await m.device.write(off, data);
      off += len;
      done += len;
      if (done % BACKFRESH_PROGRESS_BYTES === 0) ctx.event('backfresh-progress', { groupId: g.record.groupId, bytesDone: done, bytesTotal: total });
    }
    await m.device.flush();
    await host.clearFractures(id);
  }
  return done;
}
