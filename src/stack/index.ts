/**
 * The one place where a LUN's I/O stack is composed, for all three processes that serve I/O.
 * Every layer is a BlockDevice over the one below (src/block: LayerDevice, OpDevice); every
 * [hop] is a `checked()` crossing that asserts the request and the answer.
 *
 * Single-process array (`sanbox serve`, an array without `sps:`): one process.
 *
 *   host ══NBD/TCP══▶ NbdSession ─▶ IoStatsLayer ─▶ FenceLayer ─[hop]─▶ MirrorLayer ─[hop]─▶ SnapshotLayer ─▶ CloneLayer ─▶ DiskFaultLayer ─▶ FileBackingStore ──▶ lunN.img
 *                                          │  (only on arrays with a remote link; a primary's
 *                                          │   write: write-intent log, then local ∥ remote)
 *                                          └══remote link/TCP══▶ link emulator ══▶ secondary array
 *
 *   The mirror driver's own I/O on the LUN (a secondary's remote writes, resync) crosses the
 *   same SnapshotLayer (mirrorLunDevice), so a snapshot of a secondary is never changed under it.
 *   Snapshot exports (LUN@SNAP) read through the LUN's SnapshotSet: saved regions from the
 *   snapshot store, the rest from the image behind its disk fault layer.
 *   The CloneLayer passes everything through unless the LUN is a clone still copying: then a read
 *   of a region not yet copied reads the clone's source snapshot, and a change copies before it
 *   writes (src/clone). It sits under the snapshot layer and in the mirror driver's device too,
 *   so every path over the LUN sees the same data.
 *
 * Two-SP array: the chassis process (metadata, API, power, ownership, mirror driver) and one
 * process per SP. A host may connect to either SP; the LUN's owner SP serves it from its cache.
 *
 *   host ══NBD/TCP══▶ SP X: NbdSession ─▶ IoStatsLayer ─[hop]─▶ LunRouter
 *        LunRouter, by the LUN's role and route (admitHostIo, RouteState):
 *          owner:    ─▶ WriteCache ─[hop]─▶ DiskFaultLayer ─▶ FileBackingStore ──▶ lunN.img
 *                       (write-back: the dirty page goes to the peer SP over CMI before the ack)
 *          forward:  ══CMI══▶ SP Y: LunRouter (owner) ─▶ WriteCache ─▶ ...
 *          what the LUN's route (HostRoutes, pushed by the chassis) sends to the chassis: a primary
 *          image's writes, trims, zeroes and flushes; a LUN with snapshots: its changes; a clone
 *          still copying: everything but flush:
 *                    ══CMI host-io══▶ chassis: MirrorLayer ─▶ SnapshotLayer ─▶ CloneLayer ─[hop]─▶ OwnerLunDevice
 *                                       ══CMI cache-io══▶ owner SP: LunRouter.run ─▶ WriteCache ─▶ ...
 *                                     and MirrorLayer ══remote link══▶ secondary array
 *          a snapshot export (LUN@SNAP) on an SP port: its reads ══CMI snapshot-io══▶ chassis:
 *                    SnapshotDevice (saved regions from the store, the rest via OwnerLunDevice)
 *
 * So a host write to a mirrored LUN of a two-SP array crosses processes twice before its local
 * half is cached (SP ─▶ chassis ─▶ owner SP), plus once more when the owner mirrors the page to
 * its peer SP, while its remote half crosses the link to the secondary array. The chassis's
 * mirror driver does its own I/O on a LUN (secondary writes, resync) through the same snapshot
 * and clone layers over OwnerLunDevice (chassisLun). A route that changes is drained: the SP
 * answers the new routes once the direct requests admitted before them have ended.
 *
 * A fenced LUN (`POST /v1/luns/REF/fence`) refuses host writes, trims and zeroes in both by one
 * rule (src/block/admission.ts `fenceRefusal`): in the FenceLayer here, in the LunRouter of an SP
 * (the fence travels in the LUN's route, so it holds on whichever SP serves the LUN). The mirror
 * driver's own I/O on a LUN never crosses it.
 *
 * The IoStatsLayer (src/io-stats) is topmost in both: it counts ops, bytes, errors and latency
 * of what the host sees, into the LUN's counters of that process (on a two-SP array: of the SP
 * that received the request; the chassis collects both SPs' at scrape time, label `sp`).
 *
 * The DiskFaultLayer (src/fault/disk) sits directly over the image in both: it passes every
 * request through until the LUN is given a disk fault (`sanbox fault disk`), and then fails or
 * delays what the fault matches, so every layer above sees a failing disk. On a two-SP array
 * each SP process has its own (the chassis gives the fault to both), and the chassis's
 * OwnerLunDevice path sees the owner SP's errors as they are.
 *
 * Callers: control/service.ts (the single-process array and the chassis) and the SP process
 * (array/sp-process/lun-stack.ts). The SP process is the composition root of its own process, so
 * its import of this module is the one that points up the tree. The leaves are opened where their
 * resources are owned: the LUN table opens image files, the chassis its OwnerLunDevice.
 */
import { checked, FenceLayer, FileBackingStore, type BlockDevice, type DeviceCapabilities, type LunFence } from '../block/index.js';
import { DiskFaultLayer, type DiskFaultState } from '../fault/index.js';
import { WriteCache, type WriteCacheOptions } from '../array/cache/index.js';
import { LunRouter, type RouteState, type RouterHost } from '../array/sp-process/router.js';
import { MirrorLayer, type MirrorNode } from '../replication/index.js';
import type { SnapshotManager } from '../snapshot/index.js';
import type { CloneManager } from '../clone/index.js';
import { IoStatsLayer, type IoStats } from '../io-stats/index.js';

/** Names a LUN in the hops' errors. */
export interface LunName {
  array: string;
  lun: number | string;
}

const hopName = (n: LunName, from: string, to: string): string => `${n.array}/${n.lun}: ${from} -> ${to}`;

/** The image with the LUN's disk fault layer over it (none given: the image itself). */
export function overDisk(store: BlockDevice, fault: DiskFaultState | undefined): BlockDevice {
  return fault ? new DiskFaultLayer(store, fault) : store;
}

/**
 * The top of every host stack: the LUN's I/O statistics (src/io-stats), counting what the host
 * sees, latency included of every layer below. None given (tests composing a bare stack): none.
 */
function counted(top: BlockDevice, stats: IoStats | undefined): BlockDevice {
  return stats ? new IoStatsLayer(top, stats) : top;
}

/**
 * Single-process array: what the NBD sessions of a LUN see, over the LUN's image (behind its
 * disk fault layer when `fault` is given). With a mirror driver the replication layer sits
 * between them (it passes everything through while the LUN is no mirror image).
 */
export function singleProcessStack(
  n: LunName,
  lunId: number,
  store: BlockDevice,
  mirrors: MirrorNode | undefined,
  fault?: DiskFaultState,
  snapshots?: SnapshotManager,
  clones?: CloneManager,
  stats?: IoStats,
  fence?: () => LunFence | undefined,
): BlockDevice {
  const local = localLun(lunId, store, fault, snapshots, clones);
  const fenced = (d: BlockDevice) => (fence ? new FenceLayer(d, lunId, fence) : d);
  if (!mirrors) return counted(fenced(checked(local, { name: hopName(n, 'nbd', 'store') })), stats);
  const replication = new MirrorLayer(mirrors.hostDataPath, lunId, checked(local, { name: hopName(n, 'replication', 'store') }));
  return counted(fenced(checked(replication, { name: hopName(n, 'nbd', 'replication') })), stats);
}

/**
 * Single-process array: the LUN as the mirror driver does I/O on it (a secondary's remote
 * writes, resync reads and writes): the image behind its disk fault layer, its clone layer and its
 * snapshot layer.
 */
export function mirrorLunDevice(lunId: number, store: BlockDevice, fault: DiskFaultState | undefined, snapshots?: SnapshotManager, clones?: CloneManager): BlockDevice {
  return localLun(lunId, store, fault, snapshots, clones);
}

/** The LUN below the replication layer: image (behind its disk fault layer, when given), clone layer, snapshot layer. */
function localLun(lunId: number, store: BlockDevice, fault: DiskFaultState | undefined, snapshots?: SnapshotManager, clones?: CloneManager): BlockDevice {
  const disk = overDisk(store, fault);
  const copied = clones ? clones.layer(lunId, disk) : disk;
  return snapshots ? snapshots.layer(lunId, copied) : copied;
}

/**
 * Chassis of a two-SP array: what a host request an SP sends here runs through: the replication
 * layer (arrays with a mirror driver) over the LUN's snapshot and clone layers, over the LUN on
 * its owner SP (`owner`: the chassis's OwnerLunDevice bound to the sending SP).
 */
export function chassisHostStack(n: LunName, lunId: number, owner: BlockDevice, mirrors: MirrorNode | undefined, snapshots: SnapshotManager, clones: CloneManager): BlockDevice {
  const local = chassisLun(lunId, checked(owner, { name: hopName(n, 'chassis', 'owner SP') }), snapshots, clones);
  return mirrors ? new MirrorLayer(mirrors.hostDataPath, lunId, local) : local;
}

/** Chassis of a two-SP array: the LUN as its mirror driver does I/O on it: its snapshot and clone layers over the owner SP's cache. */
export function chassisLun(lunId: number, owner: BlockDevice, snapshots: SnapshotManager, clones: CloneManager): BlockDevice {
  return localLun(lunId, owner, undefined, snapshots, clones);
}

/** SP process: the LUN's image file, opened for this SP. */
export function openSpStore(imagePath: string, opts: { readOnly: boolean; blockSize: number }): Promise<FileBackingStore> {
  return FileBackingStore.open(imagePath, opts);
}

/** SP process: the write cache of a LUN this SP owns, over the LUN's image (behind its disk fault layer). */
export function spWriteCache(n: LunName, store: BlockDevice, opts: Omit<WriteCacheOptions, 'lower'>, fault?: DiskFaultState): WriteCache {
  return new WriteCache({ ...opts, lower: checked(overDisk(store, fault), { name: hopName(n, 'cache', 'store') }) });
}

/** SP process: the LUN's router and the device its NBD sessions see (the router behind a hop). */
export function spRouter(
  n: LunName,
  spec: { id: number; size: number; blockSize: number },
  caps: DeviceCapabilities,
  readOnly: boolean,
  host: RouterHost,
  initial: RouteState,
  stats?: IoStats,
): { router: LunRouter; host: BlockDevice } {
  const router = new LunRouter(spec.id, spec.size, spec.blockSize, caps, readOnly, host, initial);
  return { router, host: counted(checked(router, { name: hopName(n, 'nbd', 'router') }), stats) };
}
