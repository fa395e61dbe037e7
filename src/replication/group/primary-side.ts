/**
 * The primary side of a group as the manager runs it: PrimaryGroup opened with its senders,
 * replay after an unclean stop, and the periodic work (performance records, throttles, the
 * check whether bypass can end); closed on demotion, delete and shutdown.
 */
import { enterBypassLater, maybeLeaveBypass } from './bypass.js';
import { ignoreOnClose } from '../../errors/index.js';
import type { GroupContext, GroupEntry } from './entry.js';
import { PerfRecorder, perfPath } from './perf.js';
import { newWindow, PrimaryGroup } from './primary-group.js';
import { runThrottleCommand, THROTTLE_COMMAND_TIMEOUT_MS, throttleCommandEnv, ThrottleEngine, ThrottleState } from './throttle.js';

/** A host write that waited longer than this (near-synchronous admission) is an event. */
const WRITE_DELAYED_EVENT_MIN_MS = 50;
/** How often a group in bypass checks whether its secondaries are in sync again. */
const BYPASS_CHECK_EVERY_MS = 500;
/** Throttle actions that only turn a knob: firing without changing it is no state change. */
const KNOB_ACTIONS = new Set(['sleep-set', 'sleep-incr', 'sleep-decr', 'delay-set', 'delay-incr', 'delay-decr']);

export async function openPrimary(ctx: GroupContext, g: GroupEntry, why: string): Promise<void> {
  const { host } = ctx;
  const groupId = g.record.groupId;
  const members = g.record.members.map((id, index) => {
    const m = host.member(id)!;
    return { mirrorId: id, index, size: m.size, device: m.device };
  });
  const pg = PrimaryGroup.open(g.dir, g.record, members, { sync: host.sync });
  g.primary = pg;
  const rec = pg.writelog.recovery;
  if (rec && rec.records > 0) {
    // The last stop was not clean: the journal's records may be missing locally.
    const n = await pg.replayLocal();
    ctx.event('replayed', { groupId, records: n, firstSeq: rec.firstSeq, lastSeq: rec.lastSeq, torn: rec.torn });
  }
  pg.on('write-delayed', (ms: number) => {
    if (ms > WRITE_DELAYED_EVENT_MIN_MS) ctx.event('write-delayed', { groupId, ms: Math.round(ms) });
  });
  pg.on('gap', (s: { route: { array: string } }, expected: number, oldest: number) => {
    ctx.event('gap', { groupId, array: s.route.array, expected, oldest, action: 'bypass: the secondary is resynchronized from the fracture logs' });
    enterBypassLater(ctx, g, 'gap');
  });
  pg.on('sender-state', (s: { route: { array: string }; state: string; lastError?: string }) => ctx.event('sender', { groupId, array: s.route.array, state: s.state, error: s.lastError }));
  const arrays = new Set(members.flatMap((m) => host.member(m.mirrorId)!.secondaryArrays));
  for (const a of arrays) {
    const cfg = host.peerConfig(a);
    if (!cfg) {
      ctx.event('sender', { groupId, array: a, state: 'refused', error: `no remote link to array ${a} is configured` });
      continue;
    }
    const s = pg.startSender(cfg, host.array, { initialMs: host.timers.reconnectInitialMs, maxMs: host.timers.reconnectMaxMs });
    if (why !== 'load') s.baseOnHello = pg.writelog.next;
  }
  pg.on('host-write', (index: number, offset: number, length: number) => {
    const w = g.refreshJob?.window;
    if (w && w.index === index && offset < w.offset + w.length && w.offset < offset + length) w.touched = true;
  });
  startTimers(ctx, g);
  ctx.event('primary-started', { groupId, name: g.record.name, mode: g.record.mode, nextSeq: pg.writelog.next, why });
}

/** Throttle evaluation, performance records, the bypass check: restarted when intervals change. */
export function startTimers(ctx: GroupContext, g: GroupEntry): void {
  for (const t of g.timers) clearInterval(t);
  g.timers = [];
  // Which throttle raised the sleep stays known while the throttles are the same ones.
  const prev = g.throttle;
  const sleepRaisedBy = prev && JSON.stringify(prev.engine.throttles) === JSON.stringify(g.record.throttles) ? prev.state.sleepRaisedBy : null;
  g.throttle = { engine: new ThrottleEngine(g.record.throttles), state: new ThrottleState({ senderSleepMs: g.primary?.senderSleepMs, ackDelayMs: g.primary?.ackDelayMs, sleepRaisedBy }), win: newWindow() };
  if (!g.perf) g.perf = { recorder: new PerfRecorder(perfPath(g.dir), g.record.perfMaxBytes), win: newWindow() };
  g.timers.push(setInterval(() => sample(ctx, g), g.record.perfEveryMs));
  if (g.record.throttles.length) g.timers.push(setInterval(() => evaluateThrottles(ctx, g), g.record.throttleEveryMs));
  g.timers.push(setInterval(() => void maybeLeaveBypass(ctx, g), BYPASS_CHECK_EVERY_MS));
  for (const t of g.timers) t.unref();
}

/** The source's throttles: test a measurement, run up to sixteen actions. */
function evaluateThrottles(ctx: GroupContext, g: GroupEntry): void {
  const pg = g.primary;
  const t = g.throttle;
  if (!pg || !t) return;
  const groupId = g.record.groupId;
  const m = pg.metrics(t.win);
  const fired = t.engine.evaluate(m);
  if (!fired.length) return;
  const results = t.state.apply(
    fired,
    {
      chainExtension: () => pg.writelog.chainSpare(),
      releaseExtension: () => pg.writelog.releaseSpare(),
      log: (msg) => ctx.event('throttle-log', { groupId, message: msg }),
      event: (msg, d) => ctx.event('throttle', { groupId, message: msg, throttle: d.throttle }),
      command: (cmd) =>
        void runThrottleCommand(cmd, throttleCommandEnv(m, { SANBOX_GROUP: g.record.name }), THROTTLE_COMMAND_TIMEOUT_MS).then((r) =>
          ctx.event('throttle-command', { groupId, command: cmd, exitCode: r.code, timedOut: r.timedOut, ...(r.error ? { error: r.error } : {}) }),
        ),
    },
    m,
  );
  const changed = pg.senderSleepMs !== t.state.senderSleepMs || pg.ackDelayMs !== t.state.ackDelayMs;
  pg.senderSleepMs = t.state.senderSleepMs;
  pg.ackDelayMs = t.state.ackDelayMs;
  // A throttle that fires without effect (easing off a sleep that is already 0) is no state change.
  if (!changed && results.every((r) => r.ok && KNOB_ACTIONS.has(r.action.do))) return;
  ctx.event('throttled', { groupId, netkbps: Math.round(m.netkbps), pctcpu: Math.round(m.pctcpu), pctwl: Math.round(m.pctwl), senderSleepMs: pg.senderSleepMs, ackDelayMs: pg.ackDelayMs, actions: results.map((r) => ({ throttle: r.throttle, do: r.action.do, ok: r.ok, ...(r.error ? { error: r.error } : {}) })) });
}

/** A performance record: to the group's file (size-limited, one previous generation) and as an event. */
function sample(ctx: GroupContext, g: GroupEntry): void {
  if (!g.primary || !g.perf) return;
  g.lastMetrics = g.primary.metrics(g.perf.win);
  void g.perf.recorder.append(g.lastMetrics);
  ctx.event('metrics', { groupId: g.record.groupId, ...g.lastMetrics });
}

/** Stops the timers and a refresh, closes the writelog (`abandon`: as a crash would leave it). */
export async function closePrimary(g: GroupEntry, abandon: boolean): Promise<void> {
  for (const t of g.timers) clearInterval(t);
  g.timers = [];
  if (g.refreshJob) {
    g.refreshJob.stop = true;
    await ignoreOnClose(g.refreshJob.done, 'closing the primary side of a group (its refresh stops with it)');
  }
  await g.perf?.recorder.close();
  g.perf = null;
  g.throttle = null;
  const pg = g.primary;
  g.primary = null;
  await pg?.close({ abandon });
}
