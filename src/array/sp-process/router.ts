import { fenceRefusal, admitHostIo, BlockError, modifiesData, OpDevice, type DeviceCapabilities, type IoOp, type IoOpKind, type IoResult } from '../../block/index.js';
import { CmiError } from '../cmi/index.js';
import type { LunRoute } from './protocol.js';

/**
 * Where a LUN's I/O goes on one SP:
 * - owner: into this SP's WriteCache (the optimized path);
 * - forward: over CMI to the owner SP (the non-optimized path);
 * - held: new I/O waits (quiesced for trespass/takeover, or power lost);
 * - cache-dirty: dirty cache was lost; every request fails with EIO until recovered.
 */
export type RouteState = 'owner' | 'forward' | 'held' | 'cache-dirty';

export interface RouterHost {
  /** Runs an op on this SP's cache of the LUN (owner only). */
  execLocal(lun: number, op: IoOp, data: Buffer | undefined): Promise<IoResult>;
  /** Forwards an op to the peer SP; rejects with CmiError 'not-owner' / 'peer-gone'. */
  forward(lun: number, op: IoOp, data: Buffer | undefined): Promise<IoResult>;
  /** Sends a host request the LUN's route sends to the chassis's data path there (`savedSeq`: see LunRoute.saved). */
  toChassis(lun: number, op: IoOp, data: Buffer | undefined): Promise<IoResult & { savedSeq?: number }>;
  /**
   * The SP lost power, or the chassis is gone (the array lost power with no hold-up): a request
   * that fails now is not answered (the process is about to stop).
   */
  powerFailing?(): boolean;
}

/**
 * The LUN's route on this SP: null (nothing in the chassis's data path: the SP serves alone),
 * a LunRoute, or 'pending' (the chassis has not said yet: host I/O waits).
 */
export type RouteEntry = LunRoute | null | 'pending';

/** Whether the LUN's own layers in the chassis (snapshots, clone) must see `op`. */
function crossesChassis(through: LunRoute['through'], op: IoOpKind): boolean {
  if (through === 'all') return op !== 'flush';
  return through === 'writes' && modifiesData(op);
}

const RETRY_DEADLINE_MS = 60_000;

/** The last region a request of `length > 0` touches. */
const lastRegion = (op: IoOp, regionSize: number): number => Math.floor((op.offset + op.length - 1) / regionSize);

/**
 * The BlockDevice an SP's NBD export names for one LUN: routes every request by the LUN's state
 * on this SP, and keeps the count of requests running on the owner path (quiesce waits for it).
 */
export class LunRouter extends OpDevice {
  readonly readOnly: boolean;
  protected readonly label: string;
  readonly capabilities: DeviceCapabilities;
  private stateValue: RouteState;
  private routeValue: RouteEntry = null;
  /** Bumped by every route change; direct requests are counted by the epoch that admitted them (see directDrained). */
  private routeEpoch = 0;
  /** Direct requests admitted under the current epoch (the common case: a counter)... */
  private directNow = 0;
  /** ...and those still running from older epochs, by epoch. */
  private readonly directOlder = new Map<number, number>();
  private drainWaiters: Array<{ before: number; done: () => void }> = [];
  /** Regions the chassis said are saved for the LUN's newest snapshot (`seq`): changes there go direct. */
  private saved: { seq: number; regionSize: number; regions: Set<number> } | undefined;
  private waiters: (() => void)[] = [];
  private inflightCount = 0;
  private idleWaiters: (() => void)[] = [];
  cacheDirtyReason = '';

  constructor(
    readonly lun: number,
    /** Grows with the LUN (SP command lun-grow); clients see it when they reconnect. */
    public size: number,
    readonly blockSize: number,
    caps: DeviceCapabilities,
    readOnly: boolean,
    private readonly host: RouterHost,
    initial: RouteState,
  ) {
    super();
    this.readOnly = readOnly;
    this.label = `LUN ${lun}`;
    this.capabilities = { ...caps, coherentAcrossHandles: true };
    this.stateValue = initial;
  }

  get state(): RouteState {
    return this.stateValue;
  }
  get inflight(): number {
    return this.inflightCount;
  }

  get route(): RouteEntry {
    return this.routeValue;
  }

  /** The chassis told this SP the LUN's route (or that it is not known yet). */
  setRoute(r: RouteEntry): void {
    const s = r && r !== 'pending' ? r.saved : undefined;
    if (!s) this.saved = undefined;
    else if (s.seq !== this.saved?.seq || s.regionSize !== this.saved.regionSize) this.saved = { ...s, regions: new Set() };
    this.routeValue = r;
    if (this.directNow > 0) this.directOlder.set(this.routeEpoch, this.directNow);
    this.directNow = 0;
    this.routeEpoch++;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * Resolves once every direct host request admitted before this call has ended. After a route
   * change, what was admitted under the old route has then run out, and every newer request
   * follows the new one.
   */
  directDrained(): Promise<void> {
    const before = this.routeEpoch;
    if (!this.runningBefore(before)) return Promise.resolve();
    return new Promise((done) => this.drainWaiters.push({ before, done }));
  }

  private runningBefore(epoch: number): boolean {
    for (const e of this.directOlder.keys()) if (e < epoch) return true;
    return false;
  }

  /** A direct host request starts: counted under the current route epoch (see directDrained). */
  private enterDirect(): number {
    this.directNow++;
    return this.routeEpoch;
  }

  private leaveDirect(e: number): void {
    if (e === this.routeEpoch) {
      this.directNow--; // nobody waits for the current epoch
      return;
    }
    const n = this.directOlder.get(e)! - 1;
    if (n > 0) {
      this.directOlder.set(e, n);
      return;
    }
    this.directOlder.delete(e);
    if (this.drainWaiters.length === 0) return;
    const waiting = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiting) {
      if (this.runningBefore(w.before)) this.drainWaiters.push(w);
      else w.done();
    }
  }

  setState(s: RouteState, reason = ''): void {
    this.stateValue = s;
    if (s === 'cache-dirty') this.cacheDirtyReason = reason;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once no request runs on the owner path. */
  idle(): Promise<void> {
    if (this.inflightCount === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private changed(timeoutMs: number): Promise<void> {
    return new Promise((r) => {
      const t = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(t);
        r();
      }
      this.waiters.push(done);
    });
  }

  /**
   * Runs `op`. `remote`: the request came over CMI from the peer, which forwards only to the
   * owner: anything but owner (or held, which waits) answers 'not-owner'.
   */
  async run(op: IoOp, data: Buffer | undefined, remote: boolean): Promise<IoResult> {
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    for (;;) {
      const s = this.stateValue;
      if (s === 'cache-dirty') throw new BlockError('EIO', `LUN ${this.lun} is cache dirty (${this.cacheDirtyReason || 'cached writes were lost'}); recover it with "sanbox lun recover ARRAY LUN --accept-data-loss"`);
      if (s === 'held') {
        await this.changed(1000);
        continue;
      }
      if (s === 'owner') {
        this.inflightCount++;
        try {
          return await this.host.execLocal(this.lun, op, data);
        } finally {
          if (--this.inflightCount === 0) {
            const w = this.idleWaiters;
            this.idleWaiters = [];
            for (const f of w) f();
          }
        }
      }
      if (remote) throw new CmiError('not-owner', `this SP does not own LUN ${this.lun}`);
      try {
        return await this.host.forward(this.lun, op, data);
      } catch (e) {
        if (e instanceof CmiError && (e.code === 'not-owner' || e.code === 'peer-gone' || e.code === 'power-fail')) {
          if (Date.now() > deadline) throw new BlockError('EIO', `LUN ${this.lun}: no owner SP answered for ${RETRY_DEADLINE_MS / 1000} s (${e.message})`);
          await this.changed(e.code === 'not-owner' ? 20 : 100);
          continue;
        }
        if (e instanceof CmiError) throw new BlockError(((e.errno as BlockError['errno']) ?? 'EIO'), e.message.replace(/^E[A-Z]+: /, ''));
        throw e;
      }
    }
  }

  /**
   * A host request (from this SP's NBD sessions, or forwarded by the peer SP: `remote`), checked
   * against the LUN's route first:
   * - offline (rolled back): refused;
   * - fenced: writes, trims and zeroes refused (`fenceRefusal`);
   * - the mirror role decides by `admitHostIo` (a secondary refuses writes, and reads unless
   *   allowed; a primary's writes, trims, zeroes and flushes go to the chassis's mirror driver);
   * - `through` sends what the LUN's snapshots or clone must see to the chassis as well;
   * - everything else is `run` (owner path or forward).
   */
  async hostRun(op: IoOp, data: Buffer | undefined, remote = false): Promise<IoResult> {
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    for (;;) {
      const r = this.routeValue;
      if (r === 'pending') {
        if (Date.now() > deadline) throw new BlockError('EIO', `LUN ${this.lun}: the array's chassis did not say within ${RETRY_DEADLINE_MS / 1000} s how its I/O runs`);
        await this.changed(1000);
        continue;
      }
      if (r?.offline && op.op !== 'flush') throw new BlockError('EPERM', `LUN ${this.lun} is offline to hosts: ${r.offline}`);
      const fenced = fenceRefusal(r?.fenced, op.op, this.lun);
      if (fenced) throw fenced;
      const viaChassis = admitHostIo(r?.mirror, op.op, this.lun) === 'replicate' || (crossesChassis(r?.through, op.op) && !this.savedAlready(r, op));
      if (!viaChassis) {
        const e = this.enterDirect();
        try {
          return await this.run(op, data, remote);
        } finally {
          this.leaveDirect(e);
        }
      }
      // The LUN's own state still applies (cache dirty: EIO; held: wait, e.g. for power loss or
      // a trespass), then the chassis takes the request.
      const s = this.stateValue;
      if (s === 'cache-dirty') return this.run(op, data, remote);
      if (s === 'held') {
        await this.changed(1000);
        continue;
      }
      try {
        const res = await this.host.toChassis(this.lun, op, data);
        const s = this.saved;
        if (s && res.savedSeq === s.seq && op.length > 0) for (let x = Math.floor(op.offset / s.regionSize), last = lastRegion(op, s.regionSize); x <= last; x++) s.regions.add(x);
        return res;
      } catch (e) {
        if (this.host.powerFailing?.() && Date.now() < deadline) {
          // As for any host request during a power failure: no answer (the process stops). If
          // power comes back before the dump ends, the request runs again.
          await this.changed(1000);
          continue;
        }
        if (e instanceof CmiError) throw new BlockError(((e.errno as BlockError['errno']) ?? 'EIO'), e.message.replace(/^E[A-Z]+: /, ''));
        throw e;
      }
    }
  }

  /** A change of a LUN with snapshots whose regions are all saved for the newest one already. */
  private savedAlready(r: LunRoute | null, op: IoOp): boolean {
    const s = this.saved;
    if (!s || r?.through !== 'writes' || !modifiesData(op.op) || op.length === 0) return false;
    for (let x = Math.floor(op.offset / s.regionSize), last = lastRegion(op, s.regionSize); x <= last; x++) if (!s.regions.has(x)) return false;
    return true;
  }

  protected runOp(op: IoOp, data: Buffer | undefined): Promise<IoResult> {
    return this.hostRun(op, data);
  }
}
