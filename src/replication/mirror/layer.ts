import { BlockError, type BlockDevice, type DeviceCapabilities, type Extent, type WriteOptions, type ZeroOptions } from '../../block/index.js';
import type { MirrorDataPath } from './data-path-api.js';

/**
 * The replication layer of one LUN's stack (docs/architecture.md, I/O stack): between the NBD session and
 * the device below (write cache or backing store). It looks the LUN's role up on every request,
 * because a promote or a demotion changes it under open sessions:
 * - not an image of any mirror: every request passes through;
 * - primary: writes, zeroes and trims go through the mirror driver (write-intent log, local ∥
 *   remote, fracture log), flushes reach every connected secondary;
 * - secondary: host writes are refused with EPERM, and host reads too unless the mirror allows
 *   secondary reads (the array's own mirror traffic writes below this layer).
 */
export class MirrorLayer implements BlockDevice {
  readonly size: number;
  readonly blockSize: number;
  readonly readOnly: boolean;
  readonly capabilities: DeviceCapabilities;

  constructor(
    private readonly driver: MirrorDataPath,
    readonly lunId: number,
    private readonly lower: BlockDevice,
  ) {
    this.size = lower.size;
    this.blockSize = lower.blockSize;
    this.readOnly = lower.readOnly;
    this.capabilities = lower.capabilities;
  }

  /** One role lookup per request: refuses what this role may not do; true when the LUN is a primary. */
  private admit(what: string, reads: boolean): boolean {
    const r = this.driver.roleOf(this.lunId);
    if (r?.offline) throw new BlockError('EPERM', `LUN ${this.lunId} is offline: its consistency group is being backfreshed from a secondary`);
    if (r?.role === 'secondary' && !(reads && r.allowReads))
      throw new BlockError('EPERM', `LUN ${this.lunId} is a secondary mirror image: host ${what} refused${reads ? ' (the mirror does not allow secondary reads)' : ''}`);
    return r?.role === 'primary';
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.admit('reads', true);
    return this.lower.read(offset, length, into);
  }

  async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    if (!this.admit('writes', false)) return this.lower.write(offset, data, opts);
    return this.driver.hostModify(this.lunId, { offset, length: data.length, data, trim: false, fua: opts?.fua === true }, () => this.lower.write(offset, data, opts));
  }

  async flush(): Promise<void> {
    if (this.driver.roleOf(this.lunId)?.role !== 'primary') return this.lower.flush();
    return this.driver.hostFlush(this.lunId, () => this.lower.flush());
  }

  async trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    if (!this.admit('trims', false)) return this.lower.trim(offset, length, opts);
    return this.driver.hostModify(this.lunId, { offset, length, data: null, trim: true, fua: false }, () => this.lower.trim(offset, length, opts));
  }

  async writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    if (!this.admit('writes', false)) return this.lower.writeZeroes(offset, length, opts);
    return this.driver.hostModify(this.lunId, { offset, length, data: null, trim: false, fua: false }, () => this.lower.writeZeroes(offset, length, opts));
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.admit('reads', true);
    return this.lower.blockStatus(offset, length);
  }

  async cache(offset: number, length: number): Promise<void> {
    this.admit('reads', true);
    return this.lower.cache(offset, length);
  }

  /** The device below belongs to the array; closing a session's view of it closes nothing. */
  async close(): Promise<void> {}
}
