/**
 * The disk fault layer: a LayerDevice placed directly over a LUN's image (src/stack) that asks
 * the LUN's DiskFaultState about every read, write, flush, trim and write-zeroes, waits the
 * decided delay, then fails with the decided errno (a BlockError, which the NBD layer sends as
 * that NBD error) or passes the request down. Without an active fault a request passes straight
 * through. Block status and cache are never faulted (inherited pass-through).
 */
import { assertRange, BlockError, LayerDevice, type BlockDevice, type WriteOptions, type ZeroOptions } from '../../block/index.js';
import type { DiskOp } from './spec.js';
import type { DiskFaultState } from './state.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class DiskFaultLayer extends LayerDevice {
  constructor(
    lower: BlockDevice,
    private readonly fault: DiskFaultState,
  ) {
    super(lower);
  }

  /**
   * Waits and fails as decided; resolves when the request may go down. The range is asserted
   * first (an out-of-range request is EINVAL, as below, never an injected error).
   */
  private async gate(op: DiskOp, offset: number, length: number): Promise<void> {
    if (op !== 'flush') assertRange(this.lower, offset, length);
    const d = this.fault.next(op, offset, length);
    if (!d) return;
    if (d.delayMs > 0) await sleep(d.delayMs);
    if (d.fail) throw new BlockError(d.fail, `injected disk fault on LUN ${this.fault.lun}: ${op} ${offset}+${length}`);
  }

  override read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (!this.fault.spec) return this.lower.read(offset, length, into);
    return this.gate('read', offset, length).then(() => this.lower.read(offset, length, into));
  }
  override write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    if (!this.fault.spec) return this.lower.write(offset, data, opts);
    return this.gate('write', offset, data.length).then(() => this.lower.write(offset, data, opts));
  }
  override flush(): Promise<void> {
    if (!this.fault.spec) return this.lower.flush();
    return this.gate('flush', 0, 0).then(() => this.lower.flush());
  }
  override trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    if (!this.fault.spec) return this.lower.trim(offset, length, opts);
    return this.gate('trim', offset, length).then(() => this.lower.trim(offset, length, opts));
  }
  override writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    if (!this.fault.spec) return this.lower.writeZeroes(offset, length, opts);
    return this.gate('zero', offset, length).then(() => this.lower.writeZeroes(offset, length, opts));
  }
}
