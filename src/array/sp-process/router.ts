import { admitHostIo, BlockError, OpDevice, type DeviceCapabilities, type IoOp, type IoResult } from '../../block/index.js';
import { CmiError } from '../cmi/index.js';
import type { MirrorRole } from './protocol.js';

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
  /** Sends a host write/trim/zero/flush of a primary mirror image to the chassis's mirror driver. */
  mirrored?(lun: number, op: IoOp, data: Buffer | undefined): Promise<IoResult>;
  /**
   * The SP lost power, or the chassis is gone (the array lost power with no hold-up): a request
   * that fails now is not answered (the process is about to stop).
   */
  powerFailing?(): boolean;
}

/**
 * The LUN's role in a remote mirror on this SP: null (no mirror image: the SP serves alone),
 * a MirrorRole, or 'pending' (the array runs a mirror driver whose roles are not known yet:
 * host I/O waits).
 */
export type MirrorState = MirrorRole | null | 'pending';

const RETRY_DEADLINE_MS = 60_000;

/**
 * The BlockDevice an SP's NBD export names for one LUN: routes every request by the LUN's state
 * on this SP, and keeps the count of requests running on the owner path (quiesce waits for it).
 */
export class LunRouter extends OpDevice {
  readonly readOnly: boolean;
  protected readonly label: string;
  readonly capabilities: DeviceCapabilities;
  private stateValue: RouteState;
  private mirrorValue: MirrorState = null;
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

  get mirror(): MirrorState {
    return this.mirrorValue;
  }

  /** The chassis told this SP the LUN's mirror role (or that it is not known yet). */
  setMirror(m: MirrorState): void {
    this.mirrorValue = m;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
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
   * against the LUN's mirror role first:
   * - no mirror image: `run` (owner path or forward);
   * - primary: writes, trims, zeroes and flushes go to the chassis's mirror driver (write-intent
   *   log, local write on the owner's cache ∥ remote write); reads stay on the fast path;
   * - secondary: writes are refused with EPERM, reads too unless the mirror allows them.
   */
  async hostRun(op: IoOp, data: Buffer | undefined, remote = false): Promise<IoResult> {
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    for (;;) {
      const m = this.mirrorValue;
      if (m === 'pending') {
        if (Date.now() > deadline) throw new BlockError('EIO', `LUN ${this.lun}: the array's mirror driver did not say within ${RETRY_DEADLINE_MS / 1000} s whether the LUN is a mirror image`);
        await this.changed(1000);
        continue;
      }
      if (admitHostIo(m, op.op, this.lun) === 'direct') return this.run(op, data, remote);
      // A write of a primary image: the LUN's own state still applies (cache dirty: EIO; held:
      // wait, e.g. for power loss or a trespass), then the mirror driver takes it.
      const s = this.stateValue;
      if (s === 'cache-dirty') return this.run(op, data, remote);
      if (s === 'held') {
        await this.changed(1000);
        continue;
      }
      if (!this.host.mirrored) throw new BlockError('EIO', `LUN ${this.lun} is a primary mirror image but this SP has no channel to the mirror driver`);
      try {
        return await this.host.mirrored(this.lun, op, data);
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

  protected runOp(op: IoOp, data: Buffer | undefined): Promise<IoResult> {
    return this.hostRun(op, data);
  }
}
