import { BlockError, OpDevice, type BlockDevice, type DeviceCapabilities, type Extent, type IoOp, type IoResult } from '../../block/index.js';
import { CmiError, type CmiClient } from '../cmi/index.js';

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
export class OwnerLunDevice extends OpDevice {
  readonly readOnly: boolean;
  readonly capabilities: DeviceCapabilities;
  protected readonly label: string;

  constructor(
    readonly lun: number,
    readonly blockSize: number,
    caps: DeviceCapabilities,
    readOnly: boolean,
    private readonly chassis: OwnerChannels,
  ) {
    super();
    this.readOnly = readOnly;
    this.label = `LUN ${lun}`;
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

  protected runOp(op: IoOp, data: Buffer | undefined): Promise<IoResult> {
    return this.run(op, data);
  }
}

/** An OwnerLunDevice whose requests carry one sender's AbortSignal. */
class SignalBoundDevice extends OpDevice {
  protected readonly label: string;
  constructor(
    private readonly dev: OwnerLunDevice,
    private readonly signal: AbortSignal,
  ) {
    super();
    this.label = `LUN ${dev.lun}`;
  }
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
  protected runOp(op: IoOp, data: Buffer | undefined): Promise<IoResult> {
    return this.dev.run(op, data, this.signal);
  }
}
