import { BlockError, type BlockDevice, type DeviceCapabilities, type Extent, type WriteOptions, type ZeroOptions } from '../../block/device.js';
import { CmiError, type CmiClient } from '../cmi/index.js';
import type { IoOp, IoResult } from '../sp-process/router.js';

/** What an OwnerLunDevice needs from the chassis. */
export interface OwnerChannels {
  /** The CMI channel to the SP that owns `lun` now, or null (no owner, owner not connected yet). */
  ownerChannel(lun: number): { sp: string; client: CmiClient } | null;
  /** Why I/O cannot succeed any more (array power lost, chassis stopped), or undefined. */
  unavailable(lun: number): string | undefined;
  /** The LUN's current size (it can grow). */
  lunSize(lun: number): number | undefined;
}

const RETRY_DEADLINE_MS = 60_000;

interface Pending {
  seq: number;
  offset: number;
  end: number;
  signal: AbortSignal | undefined;
  done: Promise<void>;
  finish: () => void;
}
const RETRYABLE = new Set(['not-owner', 'peer-gone', 'power-fail']);

/**
 * A LUN as the chassis process sees it for the mirror driver: every request runs on the current
 * owner SP's stack (its write cache, mirrored to the peer SP before the ack) through CMI
 * `cache-io`. Like the SP's LUN router, it retries while ownership moves (the SP answers
 * not-owner, or it died and its peer takes over), within a bounded deadline.
 */
export class OwnerLunDevice implements BlockDevice {
  readonly readOnly: boolean;
  readonly capabilities: DeviceCapabilities;

  constructor(
    readonly lun: number,
    readonly blockSize: number,
    caps: DeviceCapabilities,
    readOnly: boolean,
    private readonly chassis: OwnerChannels,
  ) {
    this.readOnly = readOnly;
    this.capabilities = { ...caps, coherentAcrossHandles: true };
  }

  get size(): number {
    return this.chassis.lunSize(this.lun) ?? 0;
  }

  /** Modifying requests running now, in issue order (`seq`), with their sender's signal. */
  private readonly running = new Set<Pending>();
  private seq = 0;

  /**
   * Runs `op` on the owner's cache, retrying across ownership changes.
   *
   * `signal` belongs to the SP that received the host request; it aborts when that SP dies. A
   * write whose sender died is an orphan: nobody will be told how it ended, but its remote half
   * may already be on the secondaries, so it is still completed here (the images stay alike),
   * and every later request that overlaps it waits for it. Otherwise, retried across a takeover,
   * it could land after a newer write the host issued through the surviving SP (an acknowledged
   * write lost). A read whose sender died is simply given up.
   */
  async run(op: IoOp, data: Buffer | undefined, signal?: AbortSignal): Promise<IoResult> {
    const modify = op.op === 'write' || op.op === 'trim' || op.op === 'zero';
    const me: Pending | null = modify ? { seq: ++this.seq, offset: op.offset, end: op.offset + op.length, signal, done: Promise.resolve(), finish: () => undefined } : null;
    if (me) {
      me.done = new Promise<void>((r) => (me.finish = r));
      this.running.add(me);
    }
    try {
      return await this.attempts(op, data, signal, me);
    } finally {
      if (me) {
        this.running.delete(me);
        me.finish();
      }
    }
  }

  /** An earlier modifying request whose sender died and that overlaps `op`, if any. */
  private orphanBefore(op: IoOp, me: Pending | null): Pending | undefined {
    const end = op.op === 'flush' ? Number.MAX_SAFE_INTEGER : op.offset + op.length;
    const start = op.op === 'flush' ? 0 : op.offset;
    for (const p of this.running) {
      if (p === me || (me && p.seq > me.seq)) continue;
      if (p.signal?.aborted && p.offset < end && start < p.end) return p;
    }
    return undefined;
  }

  private async attempts(op: IoOp, data: Buffer | undefined, signal: AbortSignal | undefined, me: Pending | null): Promise<IoResult> {
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    let last = 'no owner SP';
    for (;;) {
      if (!me && signal?.aborted) throw new BlockError('EIO', `LUN ${this.lun}: request given up (${(signal.reason as Error)?.message ?? 'aborted'})`);
      const orphan = this.orphanBefore(op, me);
      if (orphan) {
        await orphan.done;
        continue;
      }
      const ch = this.chassis.ownerChannel(this.lun);
      if (ch && !ch.client.closed) {
        try {
          const r = await ch.client.call('cache-io', { lun: this.lun, ...op }, data);
          if (op.op === 'read') return { data: r.bin };
          if (op.op === 'status') return { extents: r.result.extents as Extent[] };
          return {};
        } catch (e) {
          if (!(e instanceof CmiError)) throw e;
          if (!RETRYABLE.has(e.code)) throw new BlockError((e.errno as BlockError['errno']) ?? 'EIO', e.message.replace(/^E[A-Z]+: /, ''));
          last = `SP ${ch.sp}: ${e.code}: ${e.message}`;
        }
      }
      const why = this.chassis.unavailable(this.lun);
      if (why) throw new BlockError('EIO', `LUN ${this.lun}: ${why}`);
      if (Date.now() > deadline) throw new BlockError('EIO', `LUN ${this.lun}: no owner SP answered for ${RETRY_DEADLINE_MS / 1000} s (${last})`);
      await new Promise((r) => setTimeout(r, ch ? 20 : 50));
    }
  }

  /** This device for the requests of one sender (see `run` for what its death changes). */
  withSignal(signal: AbortSignal): BlockDevice {
    return new SignalBoundDevice(this, signal);
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return readVia(this, offset, length, into);
  }
  async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    await this.run({ op: 'write', offset, length: data.length, fua: opts?.fua }, data);
  }
  async flush(): Promise<void> {
    await this.run({ op: 'flush', offset: 0, length: 0 }, undefined);
  }
  async trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    await this.run({ op: 'trim', offset, length, fua: opts?.fua }, undefined);
  }
  async writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    await this.run({ op: 'zero', offset, length, fua: opts?.fua, noHole: opts?.noHole, fastZero: opts?.fastZero }, undefined);
  }
  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    const r = await this.run({ op: 'status', offset, length }, undefined);
    return r.extents ?? [{ length, hole: false, zero: false }];
  }
  async cache(offset: number, length: number): Promise<void> {
    await this.run({ op: 'cache', offset, length }, undefined);
  }
  /** The SPs own the stores. */
  async close(): Promise<void> {}
}

async function readVia(dev: OwnerLunDevice, offset: number, length: number, into: Buffer | undefined, signal?: AbortSignal): Promise<Buffer> {
  const r = await dev.run({ op: 'read', offset, length }, undefined, signal);
  const d = r.data ?? Buffer.alloc(length);
  if (d.length !== length) throw new BlockError('EIO', `LUN ${dev.lun}: read of ${length} bytes returned ${d.length}`);
  if (into) {
    d.copy(into, 0, 0, length);
    return into;
  }
  return d;
}

/** An OwnerLunDevice whose requests carry one sender's AbortSignal. */
class SignalBoundDevice implements BlockDevice {
  constructor(
    private readonly dev: OwnerLunDevice,
    private readonly signal: AbortSignal,
  ) {}
  get size(): number {
    return this.dev.size;
  }
  get blockSize(): number {
    return this.dev.blockSize;
  }
  get readOnly(): boolean {
    return this.dev.readOnly;
  }
  get capabilities(): DeviceCapabilities {
    return this.dev.capabilities;
  }
  read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return readVia(this.dev, offset, length, into, this.signal);
  }
  async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    await this.dev.run({ op: 'write', offset, length: data.length, fua: opts?.fua }, data, this.signal);
  }
  async flush(): Promise<void> {
    await this.dev.run({ op: 'flush', offset: 0, length: 0 }, undefined, this.signal);
  }
  async trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    await this.dev.run({ op: 'trim', offset, length, fua: opts?.fua }, undefined, this.signal);
  }
  async writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    await this.dev.run({ op: 'zero', offset, length, fua: opts?.fua, noHole: opts?.noHole, fastZero: opts?.fastZero }, undefined, this.signal);
  }
  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    const r = await this.dev.run({ op: 'status', offset, length }, undefined, this.signal);
    return r.extents ?? [{ length, hole: false, zero: false }];
  }
  async cache(offset: number, length: number): Promise<void> {
    await this.dev.run({ op: 'cache', offset, length }, undefined, this.signal);
  }
  async close(): Promise<void> {}
}
