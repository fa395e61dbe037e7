/**
 * One check of one resource, Fig. 4: poll the instance (step 320), store the status (330), and
 * when the pair is suspended (340) either record it (355: autorecover off, an operator's
 * suspension, the link still down, ...; decision.ts says which) or resynchronize it through the
 * array's API (360), wait until it is connected again and record that the monitor did it.
 * Failed attempts back off; too many inside the window hold the resource as error-suspended for
 * a person to look at.
 */
import type { ResourceDatabase } from './db.js';
import { recordHistory } from './db.js';
import type { MonitorEvents } from './events.js';
import type { InstanceResolver } from './access.js';
import { pollResource, resynchronize } from './poll.js';
import { decideRecovery, type Decision } from './decision.js';
import { backoffMs, nextPhase } from './recovery-state.js';
import type { PairReading, ResourceEntry } from './types.js';

export interface CheckerOptions {
  /** automatic resync failures inside `failureWindowMs` that hold the resource */
  maxFailures: number;
  failureWindowMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** how long a resync may take to bring the pair back before it counts as failed */
  resyncTimeoutMs: number;
  /** how often (at most) the pair is polled while a resync runs */
  resyncPollMs: number;
}

export const DEFAULT_CHECKER_OPTIONS: CheckerOptions = {
  maxFailures: 3,
  failureWindowMs: 600_000,
  backoffBaseMs: 5_000,
  backoffMaxMs: 60_000,
  resyncTimeoutMs: 3_600_000,
  resyncPollMs: 500,
};

export interface CheckContext {
  db: ResourceDatabase;
  events: MonitorEvents;
  resolve: InstanceResolver;
  opts: CheckerOptions;
  /** aborted when the daemon stops: a resync's wait ends at once, without a verdict */
  signal?: AbortSignal;
}

type Key = { appName: string; deviceGroup: string };
const who = (e: Key) => ({ appName: e.appName, deviceGroup: e.deviceGroup });

/** Runs one check; never throws for what the array says (that is stored as the resource's status). */
export async function checkResource(ctx: CheckContext, key: Key): Promise<void> {
  const entry = ctx.db.showOne(key.appName, key.deviceGroup);
  if (!entry) return;
  const reading = await readPair(ctx, entry);
  if (!reading) return;
  const now = new Date();
  let after = await ctx.db.update(key.appName, key.deviceGroup, (e) => pruneFailures(e, now, ctx.opts.failureWindowMs));
  if (!after) return;
  if (after.phase === 'resyncing' && (reading.pair === 'suspended' || reading.pair === 'error-suspended' || reading.pair === 'deleted')) {
    // One check per resource at a time: a resync phase found here is one an earlier daemon started
    // and stopped (or died) waiting for. A copy still running is left to run (connected ends the
    // phase); a pair that is not coming back is that resync failed, else no resync ever starts again.
    await failed(ctx, after, `the resync started before the monitor stopped did not bring the pair back: ${reading.pair} (${reading.reason})`);
    after = ctx.db.showOne(key.appName, key.deviceGroup);
    if (!after) return;
  }
  const decision = decideRecovery({ entry: after, reading, now, maxFailures: ctx.opts.maxFailures });
  await act(ctx, after, reading, decision);
}

/** Polls and stores the reading (or the error); the reading, or undefined when the poll failed. */
async function readPair(ctx: CheckContext, entry: ResourceEntry): Promise<PairReading | undefined> {
  let result;
  try {
    result = await pollResource((await ctx.resolve(entry.instance)).client, entry);
  } catch (e) {
    result = { ok: false as const, error: (e as Error).message };
  }
  const time = new Date().toISOString();
  if (!result.ok) {
    const error = result.error;
    await ctx.db.update(entry.appName, entry.deviceGroup, (e) => {
      if (e.lastError !== error) ctx.events.emit('resource.poll-failed', { ...who(e), error });
      e.lastPoll = time;
      e.lastError = error;
    });
    return undefined;
  }
  await storeReading(ctx, entry, result.reading, time);
  return result.reading;
}

async function storeReading(ctx: CheckContext, entry: Key, r: PairReading, time: string): Promise<void> {
  await ctx.db.update(entry.appName, entry.deviceGroup, (e) => {
    if (e.lastError !== null) ctx.events.emit('resource.poll-recovered', { ...who(e) });
    const pair = e.phase === 'held' && r.pair === 'suspended' ? 'error-suspended' : r.pair;
    const reason = pair === r.pair ? r.reason : `held by the monitor (${r.reason})`;
    if (pair !== e.pair || reason !== e.reason) {
      ctx.events.emit('resource.state', { ...who(e), from: e.pair, to: pair, reason, detail: r.detail });
      recordHistory(e, 'pair-state', `${e.pair} -> ${pair}: ${reason} (${r.detail})`);
    }
    Object.assign(e, { pair, reason, detail: r.detail, pvol: r.pvol, svol: r.svol, kind: r.kind, lastPoll: time, lastError: null });
    if (r.pair === 'connected' && r.role === 'primary' && e.phase !== 'held' && r.primaryArray !== null && r.epoch !== null) {
      e.direction = { primaryArray: r.primaryArray, epoch: r.epoch };
    }
    if (r.pair === 'connected' && (e.phase === 'backoff' || e.phase === 'resyncing')) e.phase = nextPhase(e.phase, 'seen-connected');
  });
}

function pruneFailures(e: ResourceEntry, now: Date, windowMs: number): void {
  e.failures = e.failures.filter((t) => now.getTime() - Date.parse(t) < windowMs);
  if (e.phase === 'backoff' && e.retryAt !== null && Date.parse(e.retryAt) <= now.getTime()) {
    e.phase = nextPhase(e.phase, 'retry-due');
    e.retryAt = null;
  }
}

async function act(ctx: CheckContext, e: ResourceEntry, r: PairReading, d: Decision): Promise<void> {
  if (d.action === 'resync') return autoResync(ctx, e);
  if (d.action === 'hold') {
    await ctx.db.update(e.appName, e.deviceGroup, (x) => {
      x.phase = nextPhase(x.phase, 'give-up');
      x.pair = 'error-suspended';
      x.reason = d.reason;
      recordHistory(x, 'held', `${d.reason}: ${d.detail}`);
    });
    ctx.events.emit('resource.held', { ...who(e), reason: d.reason, detail: d.detail });
    return;
  }
  if (r.pair === 'suspended' || r.pair === 'error-suspended' || r.pair === 'deleted') await noteOnce(ctx, e, d);
}

/** Step 355: the suspension and why it is left alone, once per distinct reason. */
async function noteOnce(ctx: CheckContext, e: ResourceEntry, d: Decision): Promise<void> {
  const text = `${e.pair}: ${d.reason} (${d.detail})`;
  if (e.history.at(-1)?.text === text) return;
  await ctx.db.update(e.appName, e.deviceGroup, (x) => recordHistory(x, 'suspension-noted', text));
  ctx.events.emit('resource.suspension-noted', { ...who(e), pair: e.pair, decision: d.reason, detail: d.detail });
}

/** Step 360: resynchronize, wait until connected, record it; a failure backs off or holds. */
async function autoResync(ctx: CheckContext, e: ResourceEntry): Promise<void> {
  const started = Date.now();
  await ctx.db.update(e.appName, e.deviceGroup, (x) => (x.phase = nextPhase(x.phase, 'resync-started')));
  let failure: string | undefined;
  try {
    const { client } = await ctx.resolve(e.instance);
    const asked = await resynchronize(client, e, e.resyncAdminFractures);
    ctx.events.emit('resource.resync-started', { ...who(e), asked });
    const waited = await waitConnected(ctx, e, started);
    if (waited === STOPPED) return; // the phase stays resyncing: the next daemon's first check sees how it went
    failure = waited;
  } catch (err) {
    failure = (err as Error).message;
  }
  const seconds = Math.round((Date.now() - started) / 100) / 10;
  if (failure === undefined) {
    await ctx.db.update(e.appName, e.deviceGroup, (x) => {
      if (x.phase === 'resyncing') x.phase = nextPhase(x.phase, 'resync-done');
      x.lastAutoResync = { time: new Date().toISOString(), seconds };
      recordHistory(x, 'resync', `resynchronized automatically in ${seconds} s`);
    });
    ctx.events.emit('resource.resync-done', { ...who(e), seconds });
    return;
  }
  await failed(ctx, e, failure);
}

async function failed(ctx: CheckContext, e: ResourceEntry, why: string): Promise<void> {
  let gaveUp = false;
  await ctx.db.update(e.appName, e.deviceGroup, (x) => {
    x.failures.push(new Date().toISOString());
    recordHistory(x, 'resync-failed', why);
    if (x.phase !== 'resyncing') return; // the operator or a connected poll moved it meanwhile
    x.phase = nextPhase(x.phase, 'resync-failed');
    x.retryAt = new Date(Date.now() + backoffMs(x.failures.length, ctx.opts.backoffBaseMs, ctx.opts.backoffMaxMs)).toISOString();
    if (x.failures.length >= ctx.opts.maxFailures) {
      x.phase = nextPhase(x.phase, 'give-up');
      x.retryAt = null;
      x.pair = 'error-suspended';
      x.reason = 'too-many-failures';
      gaveUp = true;
    }
  });
  ctx.events.emit('resource.resync-failed', { ...who(e), error: why });
  if (gaveUp) ctx.events.emit('resource.held', { ...who(e), reason: 'too-many-failures', detail: `${ctx.opts.maxFailures} automatic resyncs failed within ${ctx.opts.failureWindowMs / 1000} s; last: ${why}` });
}

/** What waitConnected answers when the daemon stops while it waits. */
const STOPPED = Symbol('stopped');

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done);
  });
}

/**
 * Polls until connected (undefined) or a reason it will not be: error-suspended, deleted, still
 * suspended, timeout; STOPPED when the daemon stops first (a resync may take an hour, stop must not).
 */
async function waitConnected(ctx: CheckContext, e: ResourceEntry, started: number): Promise<string | undefined | typeof STOPPED> {
  let suspendedSince: number | undefined;
  // Small resyncs end in milliseconds: poll soon, then back off to resyncPollMs.
  let pollMs = Math.min(50, ctx.opts.resyncPollMs);
  for (;;) {
    await pause(pollMs, ctx.signal);
    if (ctx.signal?.aborted) return STOPPED;
    pollMs = Math.min(ctx.opts.resyncPollMs, pollMs * 2);
    const cur = ctx.db.showOne(e.appName, e.deviceGroup);
    if (!cur) return 'removed from the database during the resync';
    const r = await readPair(ctx, cur);
    const now = Date.now();
    if (r?.pair === 'connected') return undefined;
    if (r?.pair === 'error-suspended' || r?.pair === 'deleted') return `the pair became ${r.pair} (${r.reason})`;
    if (r?.pair === 'suspended') suspendedSince ??= now;
    else suspendedSince = undefined;
    // A resync the array accepted shows as COPY at once; still PSUS after a while means it did not start.
    if (suspendedSince !== undefined && now - suspendedSince > Math.max(5000, 10 * ctx.opts.resyncPollMs)) return `still suspended after the resync request (${r?.reason})`;
    if (now - started > ctx.opts.resyncTimeoutMs) return `not connected within ${ctx.opts.resyncTimeoutMs / 1000} s`;
  }
}
