/**
 * The state every part of one SP process shares: its LUNs (each a stack built by
 * ./lun-stack.ts), the peer's mirror copy, the cache budget, the lifecycle (whose state also
 * says whether the SP is in a power failure), the vault, the channels and the cache-mode
 * decision.
 */
import { randomUUID } from 'node:crypto';
import type { BlockDevice, FileBackingStore } from '../../block/index.js';
import type { NbdServer } from '../../nbd/index.js';
import { CacheBudget, PeerMirrorStore, type WriteCache } from '../cache/index.js';
import type { CmiClient, CmiServer } from '../cmi/index.js';
import { inPowerFailure, SpLifecycle, type CacheModeDecision } from '../sp/index.js';
import { Vault } from '../vault/index.js';
import { DiskFaultTable } from '../../fault/index.js';
import { IoStatsTable } from '../../io-stats/index.js';
import { Markers } from './markers.js';
import { markerPath, vaultDir, type BatteryView, type HostRoutes, type SpInit, type SpLunSpec } from './protocol.js';
import type { LunRouter } from './router.js';

/** One LUN on this SP: its stack (image file, cache when owned, router the NBD export names). */
export interface SpLun {
  spec: SpLunSpec;
  store: FileBackingStore;
  router: LunRouter;
  /** What this SP's NBD sessions of the LUN see: the router behind a checked hop. */
  host: BlockDevice;
  cache: WriteCache | null;
  /** Builds this LUN's WriteCache over its store (when this SP comes to own it). */
  newCache(): WriteCache;
}

export class SpCore {
  readonly sp: 'A' | 'B';
  readonly peer: 'A' | 'B';
  readonly init: SpInit;
  readonly luns = new Map<number, SpLun>();
  readonly peerStore = new PeerMirrorStore();
  readonly budget: CacheBudget;
  readonly life: SpLifecycle;
  readonly vault: Vault;
  readonly markers: Markers;
  readonly bootId = randomUUID();
  /** Every LUN's disk fault in this SP process (the layer over each image asks it; the chassis sets it). */
  readonly diskFaults = new DiskFaultTable();
  /** Every LUN's host I/O counters on this SP (the top of its stack; the chassis asks: `io-stats`). */
  readonly ioStats = new IoStatsTable();
  cmiServer: CmiServer | null = null;
  /** The CMI connection to the peer SP. */
  client: CmiClient | null = null;
  peerWanted = false;
  /** The chassis's data path (mirror driver, snapshots, clones): its I/O on this SP's caches. */
  chassisServer: CmiServer | null = null;
  /** ...and this SP's channel to it for what the LUNs' routes send there. */
  chassisClient: Promise<CmiClient> | null = null;
  /** Every LUN's route and the snapshot exports; null: not known yet. */
  routes: HostRoutes | null;
  /** The chassis's host-I/O channel ended outside a shutdown: the chassis died, this process stops. */
  chassisLost = false;
  shuttingDown = false;
  nbd: NbdServer | null = null;
  nbdPort = 0;
  battery: BatteryView;
  decision: CacheModeDecision = { mode: 'write-through', reason: 'peer SP down', detail: 'starting' };
  policyChain: Promise<void> = Promise.resolve();
  vaultUsable = true;

  constructor(
    init: SpInit,
    private readonly send: (m: unknown) => void,
  ) {
    this.init = init;
    this.sp = init.sp;
    this.peer = init.sp === 'A' ? 'B' : 'A';
    this.budget = new CacheBudget(init.cacheBytes, { highWatermark: init.cache.highWatermark, lowWatermark: init.cache.lowWatermark });
    this.life = new SpLifecycle(this.sp, 'booting');
    // The chassis publishes sp.state from its own view of each SP; this is the process's own view.
    this.life.on('transition', (r) => this.event('sp.process-state', { from: r.from, to: r.to, via: r.event }));
    this.vault = new Vault(vaultDir(init.dir, this.sp), this.sp);
    this.markers = new Markers(markerPath(init.dir, this.sp), (problem) => this.event('sp.error', { problem }));
    this.battery = init.battery;
    this.routes = init.chassisPath.routes;
    for (const f of init.diskFaults ?? []) this.diskFaults.set(f.lun, f.spec);
  }

  event(type: string, details: Record<string, unknown> = {}): void {
    this.send({ type: 'event', event: { type, sp: this.sp, ...details } });
  }

  /** Power lost (dumping, abandoning the dump, or off): hold host I/O, refuse peer traffic. */
  get powerFailing(): boolean {
    return inPowerFailure(this.life.state);
  }

  get peerUp(): boolean {
    return this.client !== null && !this.client.closed;
  }

  lun(id: number): SpLun {
    const l = this.luns.get(id);
    if (!l) throw new Error(`SP ${this.sp} has no LUN ${id}`);
    return l;
  }

  caches(): WriteCache[] {
    return [...this.luns.values()].map((l) => l.cache).filter((c): c is WriteCache => c !== null);
  }
}
