/**
 * Becoming and ceasing to be the primary side of a mirror: opening the write-intent log and the
 * fracture logs (with what an unclean stop left in them), starting the primary's timers, and
 * closing it all again. Apart from ./node.ts, which calls it at load, create, promote and close,
 * so that the node file keeps to wiring the parts; what it uses of them comes in as `PrimaryHost`.
 */
import { join } from 'node:path';
import { ignoreOnClose } from '../../errors/index.js';
import { secondariesOf } from '../state/index.js';
import { BitmapFile } from './bitmap-file.js';
import type { DataPath } from './data-path.js';
import { fracturePath, mirrorSize, type Entry } from './entry.js';
import { PrimarySide, SecondaryPeer } from './primary.js';
import type { Resync } from './resync.js';
import type { MirrorTimers } from './types.js';

/**
 * Granularity of the write-intent log (at least the mirror's region size): like DRBD's activity
 * log extents, coarse enough that the regions a busy workload keeps writing stay marked between
 * lazy clears (a newly marked region costs a pwrite + fdatasync before its write), fine enough
 * that a crash resyncs only the extents written in the last moments.
 */
const WIL_EXTENT_BYTES = 1024 * 1024;
/** The quiesce check runs every quiesceMs / 2, but not more often than this. */
const quiesceCheckMinMs = 50;

/** What opening a primary side uses of the node's other parts. */
export interface PrimaryHost {
  readonly sync: boolean;
  readonly timers: MirrorTimers;
  readonly resync: Pick<Resync, 'markFull' | 'resumeDirty' | 'publishProgress'>;
  readonly dataPath: Pick<DataPath, 'clearWil' | 'checkQuiesce'>;
  event(type: string, details: Record<string, unknown>): void;
}

/**
 * Becomes the primary side of `e`: opens the write-intent log and a fracture log per
 * secondary. A write-intent log that is not empty means the last stop was not clean: its
 * regions may differ on any image, so they go into every secondary's fracture log.
 */
export async function openPrimarySide(e: Entry, why: 'load' | 'create' | 'promote' | 'resolve', host: PrimaryHost): Promise<void> {
  if (e.primary) throw new Error(`mirror ${e.id}: primary side already open`);
  const size = mirrorSize(e.db);
  const rs = e.db.regionSize;
  const wil = await BitmapFile.open(join(e.dir, 'wil.bitmap'), size, Math.max(rs, WIL_EXTENT_BYTES), { sync: host.sync });
  const ps = new PrimarySide(wil.file);
  const unclean = wil.lost ? size : wil.file.bitmap.dirtyBytes();
  for (const img of secondariesOf(e.db)) {
    const f = await BitmapFile.open(fracturePath(e, img.imageId), size, rs, { sync: host.sync });
    const peer = new SecondaryPeer(img.imageId, img.array, img.lun, f.file);
    peer.failed = true; // until connected
    if (f.lost) {
      await host.resync.markFull(e, peer, `fracture log lost (${f.lost})`);
    } else if (f.created && why === 'load') {
      await host.resync.markFull(e, peer, 'fracture log missing');
    }
    ps.peers.set(img.imageId, peer);
  }
  if (unclean > 0 && why === 'load') {
    for (const p of ps.peers.values()) {
      for (const r of wil.file.bitmap.runs()) p.markMaybeDirtyUntracked(r.offset, r.length);
      p.fracture.touch();
      await p.fracture.persist();
    }
    host.event('unclean-stop', { mirrorId: e.id, regions: wil.file.bitmap.countRegions(), bytes: unclean, detail: wil.lost ?? 'write-intent log regions added to every fracture log' });
    wil.file.clearAll();
    await wil.file.persist();
  }
  e.primary = ps;
  ps.timers.push(setInterval(() => host.dataPath.clearWil(e), host.timers.wilClearMs));
  ps.timers.push(
    setInterval(() => {
      host.resync.resumeDirty(e);
      host.dataPath.checkQuiesce(e);
    }, Math.max(quiesceCheckMinMs, host.timers.quiesceMs / 2)),
  );
  ps.timers.push(setInterval(() => host.resync.publishProgress(e), host.timers.progressMs));
  for (const t of ps.timers) t.unref();
}

/** Closes the primary side of `e` (if open): its timers, links, resyncs and logs; `removeFiles` deletes the logs. */
export async function closePrimarySide(e: Entry, removeFiles: boolean): Promise<void> {
  const ps = e.primary;
  if (!ps) return;
  e.primary = null;
  ps.closed = true;
  for (const t of ps.timers) clearInterval(t);
  for (const p of ps.peers.values()) {
    if (p.resync) p.resync.stop = true;
    p.client?.close();
  }
  for (const p of ps.peers.values()) await ignoreOnClose(p.resync?.done, `stopping the resync of ${p.imageId}`);
  for (const p of ps.peers.values()) await (removeFiles ? p.fracture.remove() : p.fracture.close());
  if (!removeFiles) {
    ps.wil.flushClears();
    ps.wilFile.touch();
  }
  await (removeFiles ? ps.wilFile.remove() : ps.wilFile.close());
}
