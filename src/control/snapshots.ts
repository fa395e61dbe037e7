/**
 * The snapshots of an array, composed with the rest of it: the manager over the LUN table (each
 * LUN's data below its host layers: `base`), the NBD catalog of a single-process array that adds
 * every snapshot as the export `LUN@SNAP` and hides a LUN being rolled back (a two-SP array's
 * SPs do the same from their routes: `syncRoutes`), and the guard that keeps a LUN with
 * snapshots from being deleted or grown.
 */
import type { ArrayCatalog, ArrayExport, SessionControl, StorageArray } from '../array/index.js';
import { SnapshotManager, type SnapshotDefaults } from '../snapshot/index.js';
import type { LunBase } from './lun-base.js';

export interface SnapshotComposition {
  manager: SnapshotManager;
  /** The array's catalog plus the snapshot exports (what a single-process array's NBD server serves). */
  catalog: ArrayCatalog;
  /** Hands the NBD sessions' control to the manager (counts, disconnects): the NBD server, or the chassis. */
  attachSessions(sessions: SessionControl): void;
}

/**
 * Opens the array's snapshot manager. `mirrorGuard` says why a LUN is a mirror image (no
 * rollback under a mirror: the secondary would no longer match its fracture log).
 */
export async function openSnapshots(
  array: StorageArray,
  base: LunBase,
  opts: { defaults?: SnapshotDefaults; noSync?: boolean; mirrorGuard?: (lunId: number) => string | undefined; syncRoutes?: (cutting?: number[]) => Promise<void> },
): Promise<SnapshotComposition> {
  let sessions: SessionControl | undefined;
  const manager = new SnapshotManager(
    array.dir,
    {
      lun: (ref) => {
        const l = array.getLun(ref);
        return l && l.state === 'online' ? { id: l.id, name: l.name, size: l.size, blockSize: l.blockSize } : undefined;
      },
      base,
      rollbackGuard: (id) => opts.mirrorGuard?.(id),
      sessionCount: (name) => sessions?.sessionCount(name) ?? 0,
      disconnect: async (name) => {
        if (sessions) await sessions.disconnectExport(name);
      },
      event: (type, details) => array.publish(type, details),
      ...(opts.syncRoutes ? { syncRoutes: opts.syncRoutes } : {}),
    },
    opts.defaults,
    opts.noSync,
  );
  await manager.open();
  array.on('event', (ev: { type: string; lun?: number }) => {
    if (ev.type === 'lun.deleted' && typeof ev.lun === 'number') void manager.lunDeleted(ev.lun).catch((e: Error) => array.publish('snapshot.store-cleanup-failed', { lun: ev.lun, error: e.message }));
  });
  const inner = array.catalog();
  const lunOffline = (e: ArrayExport): boolean => {
    const l = array.getLunByName(e.name);
    return l !== undefined && manager.offline(l.id);
  };
  const snapExport = (name: string): ArrayExport | undefined => {
    const d = manager.device(name);
    if (!d || manager.offline(d.view.lun)) return undefined;
    return { name, description: `sanbox array ${array.name} snapshot ${d.view.name} of LUN ${d.view.lunName} (seq ${d.view.seq}, ${d.view.created})`, device: d.device, readOnly: true };
  };
  const catalog: ArrayCatalog = {
    lookup(name) {
      if (name.includes('@')) return snapExport(name);
      const e = inner.lookup(name);
      return e && !lunOffline(e) ? e : undefined;
    },
    list() {
      const luns = inner.list().filter((e) => !lunOffline(e));
      const snaps = manager.served().map((s) => snapExport(s.export)).filter((e): e is ArrayExport => e !== undefined);
      return [...luns, ...snaps];
    },
  };
  return {
    manager,
    catalog,
    attachSessions(s) {
      sessions = s;
    },
  };
}
