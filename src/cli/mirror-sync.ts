/**
 * `sanbox mirror sync [--wait]` and `sanbox mirror wait`: start a synchronization, and wait
 * until the secondaries are in sync again (a sync just asked for, or a resync under way after a
 * link came back), with the resyncs' progress on stderr (./progress). The wait polls the
 * primary's view: an image is in sync when it is CONSISTENT or SYNCHRONIZED, unfractured and no
 * resync runs; it stopped when nothing will resume it: unreachable or fractured with manual
 * recovery, or UNSYNCHRONIZED with no resync. Exit 1 then, with the image and why. With automatic
 * recovery an unreachable or fractured image is waited for: it resyncs when its link is back.
 */
import type { ApiClient } from '../control/index.js';
import type { ImageView, MirrorView } from '../replication/mirror/types.js';
import { CliError, EXIT, printJson, sleep } from './common.js';
import { ibytes } from './mirror-render.js';
import { call, done, locate, lunNames } from './mirror-verbs.js';
import { startProgress, type ProgressFlags } from './progress/index.js';
import type { TargetFlags } from './target.js';

/** How often the wait reads the primary's view. */
const WAIT_POLL_MS = 500;
/**
 * A stop is believed after this many readings in a row: between a link's return and its resync's
 * start an image may look stopped for a moment (reachable again, no resync yet).
 */
const STOP_READINGS = 2;

export type SyncWaitFlags = TargetFlags & ProgressFlags & { wait?: boolean };

/** Where one secondary stands for the wait. */
export type ImageWait =
  | { kind: 'in-sync' }
  /** a resync runs: its bytes */
  | { kind: 'syncing'; done: number; total: number }
  /** about to start or resume (SYNCHRONIZING, or unreachable or fractured with automatic recovery) */
  | { kind: 'pending' }
  | { kind: 'stopped'; why: string };

export function imageWait(i: ImageView): ImageWait {
  if (i.resync) return { kind: 'syncing', done: Math.min(i.resync.bytesDone, i.resync.bytesTotal), total: i.resync.bytesTotal };
  const unreachable = i.reachability === 'UNREACHABLE';
  if (unreachable || i.fractured) {
    if (i.recoveryPolicy === 'auto') return { kind: 'pending' };
    const what = unreachable ? `unreachable${i.linkError ? ` (${i.linkError})` : ''}` : `fractured (${i.fractureReason ?? '?'})`;
    return { kind: 'stopped', why: `${what}, recovery manual: sanbox mirror sync starts it once it is reachable` };
  }
  if (i.state === 'SYNCHRONIZED' || i.state === 'CONSISTENT') return { kind: 'in-sync' };
  if (i.state === 'SYNCHRONIZING') return { kind: 'pending' };
  return { kind: 'stopped', why: `${i.state ?? 'no state'} with no synchronization running (it failed, or was never started: sanbox mirror sync)` };
}

/** The secondaries the wait is about: `image` (an image id or an array name), else all. */
function targets(v: MirrorView, image: string | undefined): ImageView[] {
  const list = v.images.filter((i) => i.role === 'secondary' && (image === undefined || i.imageId === image || i.array === image));
  if (!list.length) throw new CliError(EXIT.ERROR, 'not-found', image === undefined ? `mirror ${v.record.name} has no secondary image` : `mirror ${v.record.name} has no secondary image ${JSON.stringify(image)}`);
  return list;
}

type WaitEnd = { view: MirrorView; end: 'in-sync' | 'interrupted' } | { view: MirrorView; end: 'stopped'; why: string };

/** One reading of the targets, as the wait sees it. */
interface Reading {
  /** the resyncs' bytes; total undefined before a resync was seen (an empty total would read as 100 %) */
  done: number;
  total: number | undefined;
  /** the images not in sync yet: `bravo:0 SYNCHRONIZING` */
  pending: string[];
  /** `bravo:0: why`, once an image said it stopped STOP_READINGS times in a row */
  stopped?: string;
}

/**
 * What the wait learns reading after reading: each image's last resync (it stays counted, as
 * done, once it finished, so the bar never drops), and how many readings in a row it stopped.
 */
export class SyncTally {
  private readonly seen = new Map<string, { done: number; total: number }>();
  private readonly stops = new Map<string, number>();

  read(images: ImageView[]): Reading {
    const pending: string[] = [];
    let stopped: string | undefined;
    for (const i of images) {
      const w = imageWait(i);
      const s = this.seen.get(i.imageId);
      if (w.kind === 'syncing') this.seen.set(i.imageId, { done: w.done, total: w.total });
      else if (w.kind === 'in-sync' && s) s.done = s.total;
      if (w.kind !== 'in-sync') pending.push(`${i.imageId} ${i.state ?? '-'}${i.fractured ? ' fractured' : ''}${i.reachability === 'UNREACHABLE' ? ' UNREACHABLE' : ''}`);
      const stops = w.kind === 'stopped' ? (this.stops.get(i.imageId) ?? 0) + 1 : 0;
      this.stops.set(i.imageId, stops);
      if (w.kind === 'stopped' && stops >= STOP_READINGS) stopped ??= `${i.imageId}: ${w.why}`;
    }
    let done = 0;
    let total = 0;
    for (const x of this.seen.values()) (done += x.done), (total += x.total);
    return { done, total: this.seen.size ? total : undefined, pending, ...(stopped ? { stopped } : {}) };
  }
}

/** Polls the primary until every target is in sync or one stopped, or Ctrl-C; the bar counts the resyncs' bytes. */
async function waitForSync(c: ApiClient, ref: string, image: string | undefined, first: MirrorView, f: ProgressFlags): Promise<WaitEnd & { /** the resyncs' bytes */ bytes: number }> {
  const progress = startProgress(f, { label: `synchronizing mirror ${first.record.name}` });
  const tally = new SyncTally();
  let interrupted = false;
  const onInt = () => (interrupted = true);
  process.once('SIGINT', onInt);
  let v = first;
  try {
    for (;;) {
      const r = tally.read(targets(v, image));
      progress.update(r.done, { total: r.total, note: r.pending.length ? `waiting for ${r.pending.join(', ')}` : null });
      const bytes = r.total ?? 0;
      if (r.stopped) {
        progress.finish('failed');
        return { view: v, end: 'stopped', why: r.stopped, bytes };
      }
      if (!r.pending.length) {
        progress.finish('done');
        return { view: v, end: 'in-sync', bytes };
      }
      await sleep(WAIT_POLL_MS);
      if (interrupted) {
        progress.finish('stopped');
        return { view: v, end: 'interrupted', bytes };
      }
      v = await call(() => c.getMirror(ref));
    }
  } finally {
    process.off('SIGINT', onInt);
    progress.finish('stopped'); // a poll threw: the wait ends here (the error says why), not the sync
  }
}

/** Runs the wait and prints its end: the view (or JSON), or exit 1 when a secondary stopped. */
async function waitAndReport(c: ApiClient, ref: string, image: string | undefined, first: MirrorView, f: SyncWaitFlags): Promise<number> {
  const started = Date.now();
  const w = await waitForSync(c, ref, image, first, f);
  const name = w.view.record.name;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (w.end === 'stopped') throw new CliError(EXIT.ERROR, 'sync-stopped', `mirror ${name}: the synchronization stopped after ${secs} s: ${w.why}`);
  const names = await lunNames(f, [w.view]);
  if (w.end === 'interrupted') {
    if (f.json) printJson(w.view);
    else process.stdout.write(`stopped waiting; the synchronization of mirror ${name} goes on (sanbox mirror status ${name} --watch)\n`);
    return EXIT.OK;
  }
  const which = image === undefined ? 'every secondary' : (names.get(targets(w.view, image)[0]!.imageId) ?? image);
  return done(f, w.view, `mirror ${name}: ${which} in sync after ${secs} s${w.bytes ? ` (the resyncs seen covered ${ibytes(w.bytes)})` : ''}`, names);
}

export async function mirrorSyncCommand(ref: string, image: string | undefined, f: SyncWaitFlags & { force?: boolean; checksum?: boolean; full?: boolean }): Promise<number> {
  const t = await locate(ref, f, { role: 'primary' });
  const v = await call(() => t.client.synchronizeMirror(ref, { image, force: f.force === true || undefined, checksum: f.checksum === true || undefined, full: f.full === true || undefined }));
  if (f.wait) return waitAndReport(t.client, ref, image, v, f);
  return done(f, v, `synchronizing ${image ?? 'every fractured or unsynchronized secondary'} of mirror ${v.record.name} (sanbox mirror status ${v.record.name} --watch, or sanbox mirror wait ${v.record.name})`, await lunNames(f, [v]));
}

export async function mirrorWaitCommand(ref: string, image: string | undefined, f: SyncWaitFlags): Promise<number> {
  const t = await locate(ref, f, { role: 'primary' });
  const v = t.view ?? (await call(() => t.client.getMirror(ref)));
  return waitAndReport(t.client, ref, image, v, f);
}
