/**
 * A snapshot as a block device: what its export (`LUN@SNAP`) serves. Read-only; reads and
 * block status come from the snapshot's saved regions and, where it saved none, from the LUN.
 */
import { assertRange, BlockError, type BlockDevice, type DeviceCapabilities, type Extent } from '../block/index.js';
import type { SnapshotSet } from './set.js';

const CAPS: DeviceCapabilities = { trim: false, writeZeroes: false, fastZero: false, sparseStatus: true, coherentAcrossHandles: true };

export class SnapshotDevice implements BlockDevice {
  readonly readOnly = true;
  readonly capabilities = CAPS;

  constructor(
    private readonly set: SnapshotSet,
    readonly seq: number,
    readonly size: number,
    readonly blockSize: number,
  ) {}

  private live(): void {
    if (!this.set.snapshots().some((s) => s.seq === this.seq)) throw new BlockError('EIO', `snapshot ${this.seq} of LUN ${this.set.lun} no longer exists (deleted or invalidated)`);
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.live();
    assertRange(this, offset, length);
    return this.set.read(this.seq, offset, length, into);
  }
  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.live();
    assertRange(this, offset, length);
    return this.set.blockStatus(this.seq, offset, length);
  }
  private refuse(): Promise<void> {
    return Promise.reject(new BlockError('EPERM', `snapshot ${this.seq} of LUN ${this.set.lun} is read-only (clone it for a writable copy)`));
  }
  write(): Promise<void> {
    return this.refuse();
  }
  trim(): Promise<void> {
    return this.refuse();
  }
  writeZeroes(): Promise<void> {
    return this.refuse();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  cache(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
