import { admitHostIo, assertRange, LayerDevice, type BlockDevice, type Extent, type IoOpKind, type WriteOptions, type ZeroOptions } from '../../block/index.js';
import type { MirrorDataPath } from './data-path-api.js';

/**
 * The replication layer of one LUN's stack (docs/architecture.md, I/O stack; composed in
 * src/stack): between the NBD session and the device below (write cache or backing store). It
 * looks the LUN's role up on every request, because a promote or a demotion changes it under
 * open sessions, and lets `admitHostIo` decide (the rule the SPs' routers follow too):
 * - not an image of any mirror: every request passes through;
 * - primary: writes, zeroes and trims go through the mirror driver (write-intent log, local ∥
 *   remote, fracture log), flushes reach every connected secondary;
 * - secondary: host writes are refused with EPERM, and host reads too unless the mirror allows
 *   secondary reads (the array's own mirror traffic writes below this layer).
 * Ranges are asserted before the driver marks its logs with them.
 */
export class MirrorLayer extends LayerDevice {
  constructor(
    private readonly driver: MirrorDataPath,
    readonly lunId: number,
    lower: BlockDevice,
  ) {
    super(lower);
  }

  /** True when the request goes through the mirror driver (refuses what the role may not do). */
  private replicated(op: IoOpKind): boolean {
    return admitHostIo(this.driver.roleOf(this.lunId), op, this.lunId) === 'replicate';
  }

  override async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.replicated('read');
    return this.lower.read(offset, length, into);
  }

  override async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    if (!this.replicated('write')) return this.lower.write(offset, data, opts);
    assertRange(this, offset, data.length);
    return this.driver.hostModify(this.lunId, { offset, length: data.length, data, trim: false, fua: opts?.fua === true }, () => this.lower.write(offset, data, opts));
  }

  override async flush(): Promise<void> {
    if (!this.replicated('flush')) return this.lower.flush();
    return this.driver.hostFlush(this.lunId, () => this.lower.flush());
  }

  override async trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    if (!this.replicated('trim')) return this.lower.trim(offset, length, opts);
    assertRange(this, offset, length);
    return this.driver.hostModify(this.lunId, { offset, length, data: null, trim: true, fua: false }, () => this.lower.trim(offset, length, opts));
  }

  override async writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    if (!this.replicated('zero')) return this.lower.writeZeroes(offset, length, opts);
    assertRange(this, offset, length);
    return this.driver.hostModify(this.lunId, { offset, length, data: null, trim: false, fua: false }, () => this.lower.writeZeroes(offset, length, opts));
  }

  override async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.replicated('status');
    return this.lower.blockStatus(offset, length);
  }

  override async cache(offset: number, length: number): Promise<void> {
    this.replicated('cache');
    return this.lower.cache(offset, length);
  }

  /** The device below belongs to the array; closing a session's view of it closes nothing. */
  override async close(): Promise<void> {}
}
