/**
 * `sanbox group refresh` and `sanbox group backfresh`: the whole-image copies of a group, and
 * their progress on stderr while the verb waits (./progress). A refresh answers at once and is
 * followed by polling the group's `record.refresh`; a backfresh answers when done, and is
 * followed through the array's `group.backfresh-progress` events meanwhile.
 */
import type { ApiClient, GroupView, LunView } from '../control/index.js';
import { readSse } from '../events/index.js';
import { refreshWaits } from '../replication/group/index.js';
import { CliError, EXIT, printJson, sleep, usage } from './common.js';
import { arrayNameArg } from './group-args.js';
import { call, done, locateGroup } from './group-verbs.js';
import { ibytes } from './mirror-render.js';
import { startProgress, type ProgressFlags, type ProgressMeter } from './progress/index.js';
import type { TargetFlags } from './target.js';

/** Default pause between two progress polls of `group refresh` (--interval). */
const REFRESH_POLL_MS = 500;

export async function groupRefreshCommand(ref: string, f: TargetFlags & ProgressFlags & { wait?: boolean; interval?: string }): Promise<number> {
  let intervalMs = REFRESH_POLL_MS;
  if (f.interval !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(f.interval) || Number(f.interval) < 0.1) throw usage(`--interval must be seconds >= 0.1, not ${JSON.stringify(f.interval)}`);
    intervalMs = Number(f.interval) * 1000;
  }
  const t = await locateGroup(ref, f);
  const started = Date.now();
  let v = await call(() => t.client.refreshGroup(ref));
  const total = v.record.refresh?.bytesTotal ?? 0;
  if (f.wait === false) return done(f, v, `group ${v.record.name}: refresh started (${ibytes(total)} to copy; the secondaries are incoherent until it completes; sanbox group status ${v.record.name} --watch)`, t.array);
  const progress = startProgress(f, { label: `refreshing group ${v.record.name}`, total });
  let stop = false;
  const onInt = () => (stop = true);
  process.once('SIGINT', onInt);
  try {
    while (v.record.refresh?.running && !stop) {
      const r = v.record.refresh;
      // What it waits for says why it sits at 0 %; the meter gives it a line when a reason comes or goes.
      const waits = refreshWaits(v);
      progress.update(r.bytesDone, { total: r.bytesTotal, note: waits.length ? `waiting: ${waits.join('; ')}` : null });
      await sleep(intervalMs);
      if (stop) break;
      v = await call(() => t.client.getGroup(ref));
    }
    const r = v.record.refresh;
    if (stop) progress.finish('stopped');
    else if (r && !r.running) progress.finish('failed', r.bytesDone);
    else progress.finish('done', total);
  } finally {
    process.off('SIGINT', onInt);
    progress.finish('stopped'); // a poll threw: the wait ends here (the error says why), not the refresh
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (stop) {
    if (f.json) printJson(v);
    else process.stdout.write(`stopped waiting; the refresh of group ${v.record.name} goes on (sanbox group status ${v.record.name} --watch)\n`);
    return EXIT.OK;
  }
  if (v.record.refresh && !v.record.refresh.running) {
    const r = v.record.refresh;
    throw new CliError(
      EXIT.ERROR,
      'refresh-failed',
      `the refresh of group ${v.record.name} stopped at ${ibytes(r.bytesDone)} of ${ibytes(r.bytesTotal)} after ${secs} s (the reason is in the array's group.refresh-failed event; a group in bypass is resynchronized from the fracture logs instead)`,
    );
  }
  return done(f, v, `group ${v.record.name}: refresh done, ${ibytes(total)} copied in ${secs} s; the secondaries are coherent again`, t.array);
}

export async function groupBackfreshCommand(ref: string, f: TargetFlags & ProgressFlags & { from?: string }): Promise<number> {
  const from = f.from !== undefined ? arrayNameArg(f.from, '--from') : undefined;
  const t = await locateGroup(ref, f);
  const started = Date.now();
  const progress = startProgress(f, { label: `backfresh of group ${ref}${from ? ` from ${from}` : ''}` });
  let follow: BackfreshFollower | undefined;
  if (progress.mode !== 'off') {
    const view = (t.view as GroupView | undefined) ?? (await call(() => t.client.getGroup(ref)));
    follow = await followBackfresh(t.client, view, progress);
  }
  let v: GroupView;
  try {
    v = await call(() => t.client.backfreshGroup(ref, from !== undefined ? { from } : {}));
    progress.finish('done', follow?.total());
  } catch (e) {
    progress.finish('failed');
    throw e;
  } finally {
    follow?.stop();
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  return done(f, v, `group ${v.record.name}: backfresh${from ? ` from ${from}` : ''} done in ${secs} s; the primary holds the secondary's data and journals from a new base`, t.array);
}

interface BackfreshFollower {
  /** the bytes the backfresh copies, when known */
  total(): number | undefined;
  stop(): void;
}

/**
 * Follows the group's `group.backfresh-progress` events (one every 64 MiB) into the meter. The
 * stream is opened before the backfresh is asked for, so that no event is missed; the total is
 * the members' LUN sizes (what the array copies), else the events'. A stream that cannot be
 * opened, or drops, leaves the bar where it was and says why.
 */
async function followBackfresh(c: ApiClient, view: GroupView, progress: ProgressMeter): Promise<BackfreshFollower> {
  let offline = 'the members are offline to hosts meanwhile';
  let total: number | undefined;
  try {
    total = await memberBytes(c, view);
  } catch (e) {
    offline += `; total unknown until the first progress event (${(e as Error).message})`;
  }
  const stopping = new AbortController();
  const follower = { total: () => total, stop: () => stopping.abort() };
  let body: AsyncIterable<Uint8Array>;
  try {
    body = await c.eventStream(stopping.signal);
  } catch (e) {
    progress.update(0, { total, note: `${offline}; no progress: ${(e as Error).message}` });
    return follower;
  }
  progress.update(0, { total, note: offline });
  void (async () => {
    for await (const m of readSse(body)) {
      if (m.event !== 'group.backfresh-progress') continue;
      const e = JSON.parse(m.data) as { groupId?: unknown; bytesDone?: unknown; bytesTotal?: unknown };
      if (e.groupId !== view.record.groupId || typeof e.bytesDone !== 'number' || typeof e.bytesTotal !== 'number') continue;
      total ??= e.bytesTotal;
      progress.update(Math.min(e.bytesDone, total), { total });
    }
  })().catch((e: Error) => {
    if (!stopping.signal.aborted) progress.log(`(no more backfresh progress: ${e.message})`);
  });
  return follower;
}

/** The sum of the member LUNs' sizes on the primary array; undefined when one is not listed. */
async function memberBytes(c: ApiClient, view: GroupView): Promise<number | undefined> {
  const luns = new Map((await c.listLuns<LunView>()).luns.map((l) => [l.id, l.size]));
  let sum = 0;
  for (const m of view.members) {
    const size = luns.get(m.lun);
    if (size === undefined) return undefined;
    sum += size;
  }
  return sum;
}
