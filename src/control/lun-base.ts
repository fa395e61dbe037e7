/**
 * A LUN's data below every host layer, as the snapshots and clones read and write it: on a
 * single-process array its image behind its disk fault layer; on a two-SP array the chassis's
 * device on the owner SP's cache.
 */
import type { StorageArray } from '../array/index.js';
import type { BlockDevice } from '../block/index.js';
import type { DiskFaultTable } from '../fault/index.js';
import { overDisk } from '../stack/index.js';

export type LunBase = (lunId: number) => BlockDevice | undefined;

/** Single-process array: each LUN's image behind its disk fault layer (one device per image). */
export function imageBase(array: StorageArray, diskFaults: DiskFaultTable): LunBase {
  const bases = new WeakMap<BlockDevice, BlockDevice>();
  return (id) => {
    const store = array.device(id);
    if (!store) return undefined;
    let d = bases.get(store);
    if (!d) bases.set(store, (d = overDisk(store, diskFaults.state(id))));
    return d;
  };
}
