/**
 * The snapshots of a single-process array, composed with the rest of it: the manager over the
 * LUN table (each LUN's data below its host layers, behind its disk fault layer), the NBD
 * catalog that adds every snapshot as the export `LUN@SNAP` and hides a LUN being rolled back,
 * and the guard that keeps a LUN with snapshots from being deleted or grown.
 */
import type { ArrayCatalog, ArrayExport, SessionControl, StorageArray } from '../array/index.js';
import type { BlockDevice } from '../block/index.js';
import type { DiskFaultTable } from '../fault/index.js';
import { SnapshotManager, type SnapshotDefaults } from '../snapshot/index.js';
import { overDisk } from '../stack/index.js';

export interface SnapshotComposition {
  manager: SnapshotManager;
  /** The array's catalog plus the snapshot exports. */
  catalog: ArrayCatalog;
  /** Hands the NBD server's session control to the manager (counts, disconnects). */
  attachSessions(sessions: SessionControl): void;
}

/**
 * Opens the array's snapshot manager. `mirrorGuard` says why a LUN is a mirror image (no
 * rollback under a mirror: the secondary would no longer match its fracture log).
 */
export async function openSnapshots(
  array: StorageArray,
  diskFaults: DiskFaultTable,
  opts: { defaults?: SnapshotDefaults; noSync?: boolean; mirrorGuard?: (lunId: number) => string | undefined },
): Promise<SnapshotComposition> {
  let sessions: SessionControl | undefined;
  const bases = new WeakMap<BlockDevice, BlockDevice>();
  const base = (id: number): BlockDevice | undefined => {
    const store = array.device(id);
    if (!store) return undefined;
    let d = bases.get(store);
    if (!d) bases.set(store, (d = overDisk(store, diskFaults.state(id))));
    return d;
  };
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
      const snaps = manager.exportNames().map(snapExport).filter((e): e is ArrayExport => e !== undefined);
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
