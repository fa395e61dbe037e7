/**
 * The layers of a two-SP array's LUNs that run in the chassis process: the mirror driver (arrays
 * with a remote link), the snapshots and the clones. They outlive SP crashes, and do their I/O on
 * the owner SP's write cache (Chassis.lunDevice). The SPs send here what each LUN's route says
 * (`hostIo`, and the reads of snapshot exports: `snapshotIo`); this class computes the routes
 * from the layers' state and pushes them to the SPs at start, on every change that may alter
 * them (mirror, group, LUN, snapshot and clone events), and every second in case a change came
 * without one:
 * - a mirror image: its role (primary: writes to the driver; secondary: refused);
 * - a LUN with snapshots, or about to be snapshotted: its changes cross the snapshot layer,
 *   but for those whose regions the chassis said are saved for the newest snapshot already
 *   (`saved`; not while a cut is being made);
 * - a clone still copying (or being created): every request but flush crosses the clone layer;
 * - a LUN being rolled back: offline to hosts;
 * - a fenced LUN: its host writes refused (the fence is in the LUN table, so on either SP);
 * - every valid snapshot: an export on both SP ports.
 */
import type { StorageArray } from '../array/index.js';
import type { Chassis, ChassisDataPath } from '../array/chassis/index.js';
import type { HostRoutes, LunRoute } from '../array/sp-process/index.js';
import { BlockError, execIoOp, modifiesData, type BlockDevice } from '../block/index.js';
import type { CloneManager } from '../clone/index.js';
import { MirrorNode, type LunProvider, type MirrorTimers, type PeerConfig } from '../replication/index.js';
import type { SnapshotDefaults, SnapshotManager } from '../snapshot/index.js';
import { chassisHostStack, chassisLun } from '../stack/index.js';
import { openClones } from './clones.js';
import { openSnapshots } from './snapshots.js';

/**
 * How long a host write of a primary image waits for the chassis's mirror driver to run again
 * (it is down between a power failure and power-up), and how often it looks.
 */
const MIRROR_DRIVER_WAIT_MS = 120_000;
const MIRROR_DRIVER_POLL_MS = 20;
/** How often the routes are looked at without an event. */
const ROUTES_POLL_MS = 1000;

/** What the layers need of the array's configuration (see ArrayServiceConfig). */
export interface ChassisLayersConfig {
  name: string;
  dir: string;
  sync?: boolean;
  snapshots?: SnapshotDefaults;
  remoteLink?: { bind: string; port: number; peers: PeerConfig[]; timers?: Partial<MirrorTimers> };
}

export class ChassisLayers {
  node: MirrorNode | undefined;
  snapshots!: SnapshotManager;
  clones!: CloneManager;
  private chassis!: Chassis;
  /** LUNs about to be snapshotted: their changes cross the snapshot layer before the cut. */
  private cutting = new Set<number>();
  private pushed: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private pushChain: Promise<void> = Promise.resolve();

  constructor(
    private readonly array: StorageArray,
    private readonly cfg: ChassisLayersConfig,
  ) {}

  readonly hooks: ChassisDataPath = {
    hostIo: async (lun, op, data, sender) => {
      if (this.cfg.remoteLink) await this.mirrorDriverRunning(sender);
      const lower = this.chassis.lunDevice(lun);
      if (!lower) throw new BlockError('EIO', `array ${this.array.name} has no online LUN ${lun}`);
      // The layers over the owner's cache, for this sender: if it dies, a write still completes
      // (its remote half may be out already), and later overlapping writes wait for it rather
      // than be overtaken by it on a takeover (OwnerLunDevice.run).
      const n = { array: this.array.name, lun: this.array.getLun(lun)?.name ?? lun };
      const r = await execIoOp(chassisHostStack(n, lun, lower.withSignal(sender), this.node, this.snapshots, this.clones), op, data);
      // Tells the SP when the change's regions are saved for the newest snapshot: the next
      // change there may go to the owner SP directly (LunRoute.saved).
      const savedSeq = modifiesData(op.op) ? this.snapshots.savedInNewest(lun, op.offset, op.length) : undefined;
      return savedSeq === undefined ? r : { ...r, savedSeq };
    },
    snapshotIo: async (exportName, op) => {
      const d = this.snapshots.device(exportName);
      if (!d) throw new BlockError('EIO', `snapshot ${exportName} is no longer served (deleted, invalidated or rolled back over)`);
      return execIoOp(d.device, op, undefined);
    },
    routeOf: (lun) => (this.snapshots ? this.routes().luns[String(lun)] : undefined), // before open: the first push brings it
    powerLost: async () => {
      this.clones.pauseCopies();
      await this.node?.crash();
    },
    powerBack: async () => {
      await this.node?.reopen();
      await this.push(true);
      this.clones.resumeCopies();
    },
  };

  /** Power lost: the driver is down until power returns; the request waits (or its sender died). */
  private async mirrorDriverRunning(sender: AbortSignal): Promise<void> {
    const deadline = Date.now() + MIRROR_DRIVER_WAIT_MS;
    while (!this.node || this.node.crashed) {
      if (sender.aborted || Date.now() > deadline) throw new BlockError('EIO', `array ${this.array.name}: the mirror driver is not running`);
      await new Promise((r) => setTimeout(r, MIRROR_DRIVER_POLL_MS));
    }
  }

  /**
   * Opens the snapshots, the clones and the mirror driver (the SPs run, holding host I/O until
   * they get the first routes), then pushes the routes.
   */
  async open(chassis: Chassis): Promise<void> {
    this.chassis = chassis;
    const cfg = this.cfg;
    const noSync = cfg.sync === false;
    const base = (id: number) => chassis.lunDevice(id);
    const snaps = await openSnapshots(this.array, base, {
      defaults: cfg.snapshots,
      noSync,
      mirrorGuard: (id) => this.node?.rollbackGuard(id),
      syncRoutes: (cutting) => this.syncRoutes(cutting),
    });
    snaps.attachSessions(chassis);
    this.snapshots = snaps.manager;
    this.clones = await openClones(this.array, base, this.snapshots, { noSync });
    if (cfg.remoteLink) {
      this.node = await MirrorNode.open({
        array: cfg.name,
        dir: cfg.dir,
        luns: this.mirrorLuns(),
        listen: { bind: cfg.remoteLink.bind, port: cfg.remoteLink.port },
        peers: cfg.remoteLink.peers,
        timers: cfg.remoteLink.timers,
        event: (type, details) => this.array.publish(type, details),
        sync: cfg.sync,
        snapshots: this.snapshots,
      });
    }
    const node = this.node;
    this.array.setGuard((lunId) => node?.guard(lunId) ?? this.clones.guard(lunId) ?? this.snapshots.guard(lunId));
    // A fence answers once the SPs took the route that carries it (their earlier direct writes ended).
    this.array.setAfterFence(() => this.push(false));
    const PUSH_ON = ['mirror.', 'group.', 'snapshot.', 'clone.', 'lun.'];
    this.array.on('event', (ev: { type: string }) => {
      if (PUSH_ON.some((p) => ev.type.startsWith(p))) setImmediate(() => void this.push(false).catch(() => undefined)); // failures are sp.error events
    });
    this.timer = setInterval(() => void this.push(false).catch(() => undefined), ROUTES_POLL_MS);
    this.timer.unref();
    await this.push(true);
  }

  /** A two-SP array's LUNs as the mirror driver sees them: snapshot and clone layers over the owner SP's cache. */
  private mirrorLuns(): LunProvider {
    // One device per OwnerLunDevice: a LUN deleted and created again under its id gets a new one.
    const devices = new WeakMap<BlockDevice, BlockDevice>();
    return {
      lun: (ref) => {
        const l = this.array.getLun(ref);
        const owner = l ? this.chassis.lunDevice(l.id) : undefined;
        if (!l || !owner) return undefined;
        let device = devices.get(owner);
        if (!device) devices.set(owner, (device = chassisLun(l.id, owner, this.snapshots, this.clones)));
        return { id: l.id, name: l.name, size: l.size, blockSize: l.blockSize, device };
      },
    };
  }

  /** Before the SPs stop: the clone copies stop (each resumes at the next open); host I/O still runs. */
  async stopCopies(): Promise<void> {
    await this.clones?.close();
  }

  /** After the SPs stopped (their last host writes came through here): stops the pushes, closes the layers. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.node?.close();
    await this.clones?.close();
    await this.snapshots?.close();
  }

  // ---- routes ----

  private routes(): HostRoutes {
    const node = this.node && !this.node.crashed ? this.node : undefined;
    // Once a second and on events: the manager's cheap list, not its views (those count use).
    const served = this.snapshots.served();
    const newest = new Map(served.map((s) => [s.lun, s])); // oldest first: the last one stays
    const luns: Record<string, LunRoute> = {};
    for (const l of this.array.listLuns()) {
      const r: LunRoute = {};
      const role = node?.roleOf(l.id);
      if (role) r.mirror = { role: role.role, allowReads: role.allowReads, ...(role.offline ? { offline: true } : {}) };
      if (this.clones.copyOf(l.id) || this.clones.creating(l.id)) r.through = 'all';
      else if (this.cutting.has(l.id) || this.snapshots.guard(l.id) !== undefined) {
        r.through = 'writes'; // any snapshot record: the layer decides what needs a copy
        const top = this.cutting.has(l.id) ? undefined : newest.get(l.id);
        if (top) r.saved = { seq: top.seq, regionSize: top.regionSize };
      }
      if (this.snapshots.offline(l.id)) r.offline = 'it is being rolled back to a snapshot';
      if (l.fenced) r.fenced = { reason: l.fenced.reason, by: l.fenced.by };
      if (Object.keys(r).length) luns[String(l.id)] = r;
    }
    const exports = served.map((s) => ({ name: s.export, lun: s.lun, size: s.size, blockSize: s.blockSize, description: `sanbox array ${this.array.name} snapshot ${s.name} of LUN ${s.lunName} (seq ${s.seq}, ${s.created})` }));
    return { luns, snapshots: exports };
  }

  /** The snapshot manager's hook: routes that follow its state (and `cutting`), taken by the SPs. */
  private syncRoutes(cutting?: number[]): Promise<void> {
    this.cutting = new Set(cutting ?? []);
    return this.push(false);
  }

  /**
   * Tells the SPs the routes when they changed (or always: `force`), in order; resolves once
   * they took them (rejects if one did not). Nothing is pushed while the array has no power or
   * its mirror driver is down: the SPs wait for the routes it finds when power is back.
   */
  private push(force: boolean): Promise<void> {
    if (this.chassis.powerState !== 'on' || this.node?.crashed) return this.pushChain;
    const routes = this.routes();
    const key = JSON.stringify(routes);
    if (!force && key === this.pushed && this.chassis.routeTable !== null) return this.pushChain;
    this.pushed = key;
    const run = () =>
      this.chassis.setRoutes(routes).catch((e: unknown) => {
        this.pushed = null; // the next look pushes again
        throw e;
      });
    this.pushChain = this.pushChain.then(run, run);
    return this.pushChain;
  }
}
