/**
 * A rollback's data movement: every region the snapshot saved is written back to the LUN
 * (the other regions already hold the snapshot's data), with progress and events. Newer
 * snapshots keep theirs: each write-back saves first (SnapshotSet.restoreRegion), and the
 * overflow policy never drops the rollback's own target.
 */
import type { SnapshotSet } from './set.js';
import { SnapshotError, type SnapshotRecord } from './types.js';

/** A rollback reports progress at most this often. */
const ROLLBACK_PROGRESS_MS = 1000;

export interface WriteBackHooks {
  event(type: string, details: Record<string, unknown>): void;
  /** Bytes written back so far, of how many (on every region; events at most once a second). */
  progress(doneBytes: number, totalBytes: number): void;
  /** The data is back and flushed: persist that the rollback is over. */
  finished(): Promise<void>;
}

export async function writeBack(set: SnapshotSet, lun: { id: number; name: string }, rec: SnapshotRecord, hooks: WriteBackHooks): Promise<void> {
  const regions = set.savedRegionsOf(rec.seq);
  const total = regions.length * set.regionSize;
  const at = { lun: lun.id, lunName: lun.name, snapshot: rec.name };
  hooks.event('snapshot.rollback-started', { ...at, seq: rec.seq, bytes: total });
  const t0 = Date.now();
  let last = t0;
  set.rollbackTarget = rec.seq;
  hooks.progress(0, total);
  try {
    for (const [i, r] of regions.entries()) {
      await set.restoreRegion(r);
      const done = (i + 1) * set.regionSize;
      hooks.progress(done, total);
      if (Date.now() - last >= ROLLBACK_PROGRESS_MS) {
        last = Date.now();
        hooks.event('snapshot.rollback-progress', { ...at, done, total });
      }
    }
    await set.base.flush();
    await hooks.finished();
  } catch (e) {
    hooks.event('snapshot.rollback-failed', { ...at, error: (e as Error).message });
    throw new SnapshotError('io', `rollback of LUN ${lun.name} to ${rec.name} failed (the LUN stays offline; retry the rollback): ${(e as Error).message}`);
  } finally {
    set.rollbackTarget = undefined;
  }
  set.rollingBack = false;
  hooks.event('snapshot.rolled-back', { ...at, seq: rec.seq, bytes: total, ms: Date.now() - t0 });
}
