/**
 * The daemon's answers to the socket messages: each msgType onto the resource database's API
 * routines ([0036]) with the return codes of the source's tables. Nothing here changes anything
 * unless the whole request is valid (protocol.ts checked its fields).
 */
import { RC, reply, type Reply, type Request } from './protocol.js';
import type { ResourceDatabase } from './db.js';
import type { MonitorEvents } from './events.js';
import { redactInstance } from './access.js';
import type { PairState, ResourceEntry, ResourceSpec, ResourceView } from './types.js';
import { SOURCE_NAMES } from './types.js';

export interface HandlerContext {
  db: ResourceDatabase;
  events: MonitorEvents;
  /** a resource was added or changed: (re)start watching it */
  watch(e: ResourceEntry): void;
  unwatch(e: ResourceEntry): void;
  timeRemaining(e: ResourceEntry): number;
  /** REMOVEALL and SHUTDOWN: stop the daemon once the reply is sent */
  stopSoon(why: string): void;
  /** resolves when the resource is in one of `states`, or with false after `timeoutMs` */
  waitFor(appName: string, deviceGroup: string, states: PairState[], timeoutMs: number): Promise<boolean>;
}

export function viewOf(ctx: HandlerContext, e: ResourceEntry): ResourceView {
  return { ...e, instance: redactInstance(e.instance), timeRemaining: ctx.timeRemaining(e), sourceState: SOURCE_NAMES[e.pair] };
}

const who = (r: Request) => ({ appName: r.appName!, deviceGroup: r.deviceGroup! });
const missing = (r: Request): Reply => reply(RC.NOT_FOUND, { message: `${r.appName}/${r.deviceGroup} is not in the monitored list` });

/** SHOW of one resource: 0 in PAIR, 1 not, 100 when the array's last answer was an error. */
function showCode(e: ResourceEntry): (typeof RC)[keyof typeof RC] {
  if (e.lastError !== null) return RC.MIRROR_ERROR;
  return e.pair === 'connected' ? RC.OK : RC.NOT_PAIR;
}

export async function handle(ctx: HandlerContext, r: Request): Promise<Reply> {
  const { db, events } = ctx;
  switch (r.msgType) {
    case 'GETPID':
      return reply(RC.OK, { pid: db.getPid() });
    case 'ADD':
    case 'SET':
      return addOrSet(ctx, r);
    case 'LOAD': {
      const res = await db.addList(r.resources!);
      for (const s of r.resources!) {
        const e = db.showOne(s.appName, s.deviceGroup)!;
        ctx.watch(e);
      }
      events.emit('monitor.loaded', { added: res.added, updated: res.updated });
      return reply(RC.OK, { message: `${res.added} added, ${res.updated} updated`, resources: db.showAll().map((e) => viewOf(ctx, e)) });
    }
    case 'SAVE':
      return reply(RC.OK, { resources: db.showAll().map((e) => ({ ...e, timeRemaining: 0, sourceState: SOURCE_NAMES[e.pair] })) });
    case 'SHOW': {
      const e = db.showOne(r.appName!, r.deviceGroup!);
      return e ? reply(showCode(e), { resource: viewOf(ctx, e) }) : missing(r);
    }
    case 'SHOWALL':
      return reply(RC.OK, { resources: db.showAll().map((e) => viewOf(ctx, e)) });
    case 'CHANGE': {
      const e = await db.changeOneInterval(r.appName!, r.deviceGroup!, r.interval!);
      if (!e) return missing(r);
      events.emit('resource.changed', { ...who(r), intervalSeconds: r.interval });
      ctx.watch(e);
      return reply(RC.OK, { resource: viewOf(ctx, e) });
    }
    case 'CHANGEALL': {
      const all = await db.changeAllInterval(r.interval!);
      for (const e of all) ctx.watch(e);
      events.emit('monitor.changed-all', { intervalSeconds: r.interval, resources: all.length });
      return reply(RC.OK, { resources: all.map((e) => viewOf(ctx, e)) });
    }
    case 'START':
    case 'STOP': {
      const e = await db.setAutorecover(r.appName!, r.deviceGroup!, r.msgType === 'START');
      if (!e) return missing(r);
      events.emit('resource.autorecover', { ...who(r), autorecover: e.autorecover });
      ctx.watch(e);
      return reply(RC.OK, { resource: viewOf(ctx, e) });
    }
    case 'REMOVE': {
      const e = await db.removeOne(r.appName!, r.deviceGroup!);
      if (!e) return missing(r);
      ctx.unwatch(e);
      events.emit('resource.removed', { ...who(r) });
      return reply(RC.OK, { resource: viewOf(ctx, e) });
    }
    case 'REMOVEALL': {
      const all = await db.removeAll();
      for (const e of all) ctx.unwatch(e);
      events.emit('monitor.removed-all', { resources: all.length });
      ctx.stopSoon('REMOVEALL');
      return reply(RC.OK, { resources: all.map((e) => viewOf(ctx, e)) });
    }
    case 'WAIT': {
      if (!db.showOne(r.appName!, r.deviceGroup!)) return missing(r);
      const reached = await ctx.waitFor(r.appName!, r.deviceGroup!, r.states!, r.timeout! * 1000);
      const e = db.showOne(r.appName!, r.deviceGroup!);
      if (!e) return missing(r);
      return reached ? reply(RC.OK, { resource: viewOf(ctx, e) }) : reply(RC.NOT_PAIR, { resource: viewOf(ctx, e), timedOut: true, message: `${r.appName}/${r.deviceGroup} is ${e.pair}, not ${r.states!.join(' or ')}, after ${r.timeout} s` });
    }
    case 'SHUTDOWN':
      ctx.stopSoon('SHUTDOWN');
      return reply(RC.OK, { pid: db.getPid() });
    case 'EVENTS':
      throw new Error('EVENTS is served by the socket server');
  }
}

async function addOrSet(ctx: HandlerContext, r: Request): Promise<Reply> {
  const old = ctx.db.showOne(r.appName!, r.deviceGroup!);
  if (r.msgType === 'SET') {
    if (!old) return missing(r);
    const fields: Partial<ResourceSpec> = {};
    if (r.instance !== undefined) fields.instance = r.instance;
    if (r.interval !== undefined) fields.intervalSeconds = r.interval;
    if (r.resync !== undefined) fields.autorecover = r.resync === 'yes';
    if (r.resyncAdminFractures !== undefined) fields.resyncAdminFractures = r.resyncAdminFractures === 'yes';
    const e = (await ctx.db.set(r.appName!, r.deviceGroup!, fields))!;
    ctx.events.emit('resource.changed', { ...who(r), ...fields, ...(fields.instance ? { instance: redactInstance(fields.instance) } : {}) });
    ctx.watch(e);
    return reply(RC.OK, { resource: viewOf(ctx, e) });
  }
  const spec: ResourceSpec = { appName: r.appName!, deviceGroup: r.deviceGroup!, instance: r.instance!, intervalSeconds: r.interval!, autorecover: r.resync === 'yes', resyncAdminFractures: (r.resyncAdminFractures ?? (old?.resyncAdminFractures ? 'yes' : 'no')) === 'yes' };
  const { entry, added } = await ctx.db.addOne(spec);
  ctx.events.emit(added ? 'resource.added' : 'resource.changed', { ...who(r), instance: redactInstance(spec.instance), intervalSeconds: spec.intervalSeconds, autorecover: spec.autorecover });
  ctx.watch(entry);
  return reply(RC.OK, { resource: viewOf(ctx, entry) });
}
