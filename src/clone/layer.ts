/**
 * The clone layer of a LUN's stack (directly over the image behind its disk fault layer, under
 * the snapshot layer): while the LUN is a clone still copying, every request follows the rules
 * of its CloneCopy (reads of regions not yet copied go to the source, changes copy before they
 * write); otherwise, and once the copy has completed, everything passes through (LayerDevice).
 * The layer asks for the LUN's copy on every request, so a LUN created as a clone after its
 * stack was composed, and a clone that completed, are seen at once.
 */
import { LayerDevice, type BlockDevice, type Extent, type WriteOptions, type ZeroOptions } from '../block/index.js';
import type { CloneCopy } from './copy.js';

/** What the layer asks its manager. */
export interface CloneLookup {
  /** The copy of a LUN that is a clone still copying, or undefined. */
  copyOf(lunId: number): CloneCopy | undefined;
  /** While a clone of this LUN is being created: resolves once it is (its I/O waits for it). */
  creating(lunId: number): Promise<void> | undefined;
}

export class CloneLayer extends LayerDevice {
  constructor(
    private readonly clones: CloneLookup,
    private readonly lunId: number,
    lower: BlockDevice,
  ) {
    super(lower);
  }

  /**
   * Runs a request `direct`ly below (the common case: no await, no promise of its own), or
   * through the LUN's copy while it is a clone still copying (after its create, if under way).
   */
  private via<T>(direct: () => Promise<T>, cloned: (c: CloneCopy) => Promise<T>): Promise<T> {
    const c = this.clones.copyOf(this.lunId);
    if (c) return cloned(c);
    const wait = this.clones.creating(this.lunId);
    if (!wait) return direct();
    return wait.then(() => {
      const after = this.clones.copyOf(this.lunId);
      return after ? cloned(after) : direct();
    });
  }

  override read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return this.via(
      () => this.lower.read(offset, length, into),
      (c) => c.read(this.lower, offset, length, into),
    );
  }
  override write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    return this.via(
      () => this.lower.write(offset, data, opts),
      (c) => c.write(this.lower, offset, data, opts),
    );
  }
  override trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    return this.via(
      () => this.lower.trim(offset, length, opts),
      (c) => c.trim(this.lower, offset, length, opts),
    );
  }
  override writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    return this.via(
      () => this.lower.writeZeroes(offset, length, opts),
      (c) => c.writeZeroes(this.lower, offset, length, opts),
    );
  }
  override blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.via(
      () => this.lower.blockStatus(offset, length),
      (c) => c.blockStatus(this.lower, offset, length),
    );
  }
}
