/**
 * The disk fault layer: a LayerDevice placed directly over a LUN's image (src/stack) that asks
 * the LUN's DiskFaultState about every read, write, flush, trim and write-zeroes, waits the
 * decided delay, then fails with the decided errno (a BlockError, which the NBD layer sends as
 * that NBD error) or passes the request on to the LUN's volatile disk (./volatile.ts), which
 * holds what is not FUA in memory while the fault loses unflushed writes and otherwise goes
 * straight down. Without an active fault and with nothing held, a request passes straight
 * through. Cache is never faulted (inherited pass-through); block status is never faulted but
 * shows what the overlay holds.
 */
import { assertRange, BlockError, LayerDevice, type BlockDevice, type Extent, type WriteOptions, type ZeroOptions } from '../../block/index.js';
import type { DiskOp } from './spec.js';
import type { DiskFaultState } from './state.js';
import type { VolatileDisk } from './volatile.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class DiskFaultLayer extends LayerDevice {
  private readonly disk: VolatileDisk;
  private closed = false;

  constructor(
    lower: BlockDevice,
    private readonly fault: DiskFaultState,
  ) {
    super(lower);
    this.disk = fault.volatileOver(lower);
  }

  /** No fault and nothing held or going down: the image answers directly. */
  private get through(): boolean {
    return !this.fault.spec && this.disk.idle;
  }

  /**
   * Waits and fails as decided; resolves when the request may go on. The range is asserted
   * first (an out-of-range request is EINVAL, as below, never an injected error); after close
   * nothing goes on (held writes would otherwise still be taken in memory).
   */
  private async gate(op: DiskOp, offset: number, length: number): Promise<void> {
    if (this.closed) throw new BlockError('ESHUTDOWN', `LUN ${this.fault.lun}: ${op} after close`);
    if (op !== 'flush') assertRange(this.lower, offset, length);
    const d = this.fault.next(op, offset, length);
    if (!d) return;
    if (d.delayMs > 0) await sleep(d.delayMs);
    if (d.fail) throw new BlockError(d.fail, `injected disk fault on LUN ${this.fault.lun}: ${op} ${offset}+${length}`);
  }

  override read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (this.through) return this.lower.read(offset, length, into);
    return this.gate('read', offset, length).then(() => this.disk.read(offset, length, into));
  }
  override write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    if (this.through) return this.lower.write(offset, data, opts);
    return this.gate('write', offset, data.length).then(() => this.disk.write(offset, data, opts));
  }
  override flush(): Promise<void> {
    if (this.through) return this.lower.flush();
    return this.gate('flush', 0, 0).then(() => this.disk.flush());
  }
  override trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    if (this.through) return this.lower.trim(offset, length, opts);
    return this.gate('trim', offset, length).then(() => this.disk.discard('trim', offset, length, opts));
  }
  override writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    if (this.through) return this.lower.writeZeroes(offset, length, opts);
    return this.gate('zero', offset, length).then(() => this.disk.discard('zero', offset, length, opts));
  }
  override blockStatus(offset: number, length: number): Promise<Extent[]> {
    if (this.through || this.closed) return this.lower.blockStatus(offset, length);
    return this.disk.blockStatus(offset, length);
  }

  /** An orderly close writes what is held down first: only a crash loses it. */
  override async close(): Promise<void> {
    try {
      if (!this.closed && !this.disk.idle) await this.disk.flush();
    } finally {
      this.closed = true;
      await this.lower.close();
    }
  }
}
