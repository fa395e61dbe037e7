/**
 * The copy-on-write layer of a LUN's stack: every change enters the LUN's write gate, saves
 * the old data of the regions the newest snapshot lacks, and then goes down. Reads, flushes
 * and everything else pass through (LayerDevice). With no snapshot a change only counts itself
 * in and out of the gate.
 */
import { assertRange, BlockError, LayerDevice, promised, type BlockDevice, type WriteOptions, type ZeroOptions } from '../block/index.js';
import type { SnapshotSet } from './set.js';

export class SnapshotLayer extends LayerDevice {
  constructor(
    private readonly set: SnapshotSet,
    lower: BlockDevice,
  ) {
    super(lower);
  }

  private change(offset: number, length: number, op: () => Promise<void>): Promise<void> {
    const set = this.set;
    const wait = set.gate.enter();
    if (wait || set.rollingBack || set.active) return this.changeSlow(wait, offset, length, op);
    // No snapshot and the gate open: the change goes straight down, counted in and out.
    return promised(op).then(
      () => set.gate.leave(),
      (e: unknown) => {
        set.gate.leave();
        throw e;
      },
    );
  }

  private async changeSlow(wait: Promise<void> | undefined, offset: number, length: number, op: () => Promise<void>): Promise<void> {
    const set = this.set;
    if (wait) await wait;
    try {
      if (set.rollingBack) throw new BlockError('ESHUTDOWN', `LUN ${set.lun} is being rolled back to a snapshot`);
      if (set.active) {
        // This layer acts on the range itself (saves its regions), so it checks it (layer.ts).
        assertRange(this, offset, length);
        await set.beforeChange(offset, length);
      }
      await op();
    } finally {
      set.gate.leave();
    }
  }

  override write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    return this.change(offset, data.length, () => this.lower.write(offset, data, opts));
  }
  override trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    return this.change(offset, length, () => this.lower.trim(offset, length, opts));
  }
  override writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    return this.change(offset, length, () => this.lower.writeZeroes(offset, length, opts));
  }
}
