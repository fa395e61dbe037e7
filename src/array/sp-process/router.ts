import { BlockError, type BlockDevice, type DeviceCapabilities, type Extent, type WriteOptions, type ZeroOptions } from '../../block/device.js';
import { CmiError } from '../cmi/index.js';
import type { MirrorRole } from './protocol.js';

/** One host I/O request as it crosses CMI. */
export interface IoOp {
  op: 'read' | 'write' | 'flush' | 'trim' | 'zero' | 'status' | 'cache';
  offset: number;
  length: number;
  fua?: boolean;
  noHole?: boolean;
  fastZero?: boolean;
}
export interface IoResult {
  data?: Buffer;
  extents?: Extent[];
}

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

const MODIFY = new Set<IoOp['op']>(['write', 'trim', 'zero']);

const RETRY_DEADLINE_MS = 60_000;

/**
 * The BlockDevice an SP's NBD export names for one LUN: routes every request by the LUN's state
 * on this SP, and keeps the count of requests running on the owner path (quiesce waits for it).
 */
export class LunRouter implements BlockDevice {
  readonly readOnly: boolean;
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
    this.readOnly = readOnly;
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
      if (m === null) return this.run(op, data, remote);
      const modify = MODIFY.has(op.op);
      if (m.offline && op.op !== 'flush') throw new BlockError('EPERM', `LUN ${this.lun} is offline to hosts (its mirror's consistency group is being backfreshed)`);
      if (m.role === 'secondary') {
        if (modify) throw new BlockError('EPERM', `LUN ${this.lun} is a secondary mirror image: host writes refused`);
        if (op.op !== 'flush' && !m.allowReads) throw new BlockError('EPERM', `LUN ${this.lun} is a secondary mirror image: host reads refused (the mirror does not allow secondary reads)`);
        return this.run(op, data, remote);
      }
      if (!modify && op.op !== 'flush') return this.run(op, data, remote);
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

  // ---- BlockDevice ----
  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const r = await this.hostRun({ op: 'read', offset, length }, undefined);
    const d = r.data ?? Buffer.alloc(length);
    if (into) {
      d.copy(into, 0, 0, length);
      return into;
    }
    return d;
  }
  async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    await this.hostRun({ op: 'write', offset, length: data.length, fua: opts?.fua }, data);
  }
  async flush(): Promise<void> {
    await this.hostRun({ op: 'flush', offset: 0, length: 0 }, undefined);
  }
  async trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    await this.hostRun({ op: 'trim', offset, length, fua: opts?.fua }, undefined);
  }
  async writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    await this.hostRun({ op: 'zero', offset, length, fua: opts?.fua, noHole: opts?.noHole, fastZero: opts?.fastZero }, undefined);
  }
  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    const r = await this.hostRun({ op: 'status', offset, length }, undefined);
    return r.extents ?? [{ length, hole: false, zero: false }];
  }
  async cache(offset: number, length: number): Promise<void> {
    await this.hostRun({ op: 'cache', offset, length }, undefined);
  }
  async close(): Promise<void> {
    /* the SP owns the stores */
  }
}

/** Runs an op on a device (the owner's cache). */
export async function execOn(dev: BlockDevice, op: IoOp, data: Buffer | undefined): Promise<IoResult> {
  switch (op.op) {
    case 'read':
      return { data: await dev.read(op.offset, op.length) };
    case 'write':
      if (!data) throw new BlockError('EINVAL', 'write without data');
      await dev.write(op.offset, data, { fua: op.fua });
      return {};
    case 'flush':
      await dev.flush();
      return {};
    case 'trim':
      await dev.trim(op.offset, op.length, { fua: op.fua });
      return {};
    case 'zero':
      await dev.writeZeroes(op.offset, op.length, { fua: op.fua, noHole: op.noHole, fastZero: op.fastZero });
      return {};
    case 'status':
      return { extents: await dev.blockStatus(op.offset, op.length) };
    case 'cache':
      await dev.cache(op.offset, op.length);
      return {};
    default:
      throw new BlockError('EINVAL', `unknown op ${String((op as IoOp).op)}`);
  }
}
