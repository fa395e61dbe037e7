/**
 * The clones of an array, composed with the rest of it: the manager over the LUN table (LUNs by
 * id and name, each LUN's data below its host layers: `base`) and the snapshot manager (a clone's source), the snapshot guard that keeps a source
 * snapshot while a clone copies from it and an unfinished clone from being snapshotted, and the
 * forgetting of a completed clone whose LUN was deleted. The LUN guard is composed by the
 * service (`clones.guard(lunId) ?? snapshots.guard(lunId)`).
 */
import type { LunInfo, StorageArray } from '../array/index.js';
import { CloneManager, type CloneDefaults, type CloneLun } from '../clone/index.js';
import type { SnapshotManager } from '../snapshot/index.js';
import type { LunBase } from './lun-base.js';

const lunOf = (l: LunInfo | undefined): CloneLun | undefined => (l ? { id: l.id, name: l.name, size: l.size, blockSize: l.blockSize, online: l.state === 'online' } : undefined);

export async function openClones(
  array: StorageArray,
  base: LunBase,
  snapshots: SnapshotManager,
  opts: { defaults?: CloneDefaults; noSync?: boolean } = {},
): Promise<CloneManager> {
  const manager = new CloneManager(
    array.dir,
    {
      readOnly: array.readOnly,
      lun: (ref) => lunOf(array.getLun(ref)),
      lunByName: (name) => lunOf(array.getLunByName(name)),
      base,
      createLun: async (name, size, blockSize) => lunOf(await array.createLun({ name, size, blockSize }))!,
      deleteLun: async (id, o) => void (await array.deleteLun(id, { force: o.force })),
      event: (type, details) => array.publish(type, details),
    },
    snapshots,
    opts.defaults,
    opts.noSync,
  );
  snapshots.setSnapshotGuard((action, lunId, snapshot) => manager.snapshotGuard(action, lunId, snapshot));
  await manager.open();
  array.on('event', (ev: { type: string; lun?: number }) => {
    if (ev.type === 'lun.deleted' && typeof ev.lun === 'number') void manager.lunDeleted(ev.lun).catch(() => undefined);
  });
  return manager;
}
