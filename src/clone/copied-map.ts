/**
 * The copied map of a clone: one bit per region of the clone LUN, set once the region holds the
 * clone's own data (copied from the source, or written by a host), kept in a bitmap file that
 * is replaced atomically (native `saveBitmapFile`: temp file, fdatasync, rename, directory
 * fsync), so a crash leaves the old map or the new one, never a torn one.
 *
 * Two orders make it crash safe:
 * - a set bit is on disk before a host write that relies on it is acknowledged (`commit`), so a
 *   clone write can never vanish behind a later read of the source;
 * - the clone's data is on disk before the bit that points at it: a commit takes a copy of the
 *   bits, flushes the clone's image, then saves the copy. Bits set meanwhile wait for the next.
 *
 * Commits are grouped: callers arriving while one runs share the next one.
 */
import { promises as fsp } from 'node:fs';
import type { BlockDevice } from '../block/index.js';
import { loadBitmapFile, RegionBitmap, saveBitmapFile } from '../native/index.js';

export class CopiedMap {
  /** Regions set but not yet on disk, with the number of the mark that set them. */
  private readonly unsaved = new Map<number, number>();
  private marks = 0;
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  private constructor(
    readonly path: string,
    readonly bitmap: RegionBitmap,
    private generation: number,
    /** The clone's image: flushed before the bits that point at its data are saved. */
    private readonly data: BlockDevice,
  ) {}

  /** A new, empty map (nothing copied yet), on disk before it returns. */
  static async create(path: string, size: number, regionSize: number, data: BlockDevice): Promise<CopiedMap> {
    const bitmap = RegionBitmap.create(size, regionSize);
    await saveBitmapFile(path, bitmap, 1);
    return new CopiedMap(path, bitmap, 1, data);
  }

  /** The map as last committed; throws when the file is missing, torn or of another geometry. */
  static async load(path: string, size: number, regionSize: number, data: BlockDevice): Promise<CopiedMap> {
    const { bitmap, generation } = await loadBitmapFile(path);
    if (bitmap.lunSize !== size || bitmap.regionSize !== regionSize) {
      throw new Error(`${path}: a map of ${bitmap.lunSize} bytes in ${bitmap.regionSize}-byte regions, expected ${size} in ${regionSize}`);
    }
    return new CopiedMap(path, bitmap, generation, data);
  }

  /** An empty map in memory only, for a clone whose map file was lost (the file is left as found). */
  static lost(path: string, size: number, regionSize: number, data: BlockDevice): CopiedMap {
    return new CopiedMap(path, RegionBitmap.create(size, regionSize), 0, data);
  }

  get regionSize(): number {
    return this.bitmap.regionSize;
  }
  get regionCount(): number {
    return this.bitmap.regionCount;
  }
  get copiedBytes(): number {
    return this.bitmap.dirtyBytes();
  }
  get complete(): boolean {
    return this.bitmap.countRegions() === this.bitmap.regionCount;
  }

  isCopied(region: number): boolean {
    return this.bitmap.test(region * this.regionSize, 1);
  }

  /** Whether every region of [first, last] is copied. */
  allCopied(first: number, last: number): boolean {
    const rs = this.regionSize;
    // From the first byte of `first` to the first byte of `last`: exactly the regions first..last.
    return this.bitmap.countRegions(first * rs, (last - first) * rs + 1) === last - first + 1;
  }

  /** Sets a region's bit in memory; `commit()` puts it on disk. */
  mark(region: number): void {
    if (this.isCopied(region)) return;
    this.bitmap.mark(region * this.regionSize, 1);
    this.unsaved.set(region, ++this.marks);
  }

  /** Whether a region of [first, last] is set in memory but not yet on disk. */
  unsavedIn(first: number, last: number): boolean {
    if (this.unsaved.size === 0) return false;
    if (last - first < this.unsaved.size) {
      for (let r = first; r <= last; r++) if (this.unsaved.has(r)) return true;
      return false;
    }
    for (const r of this.unsaved.keys()) if (r >= first && r <= last) return true;
    return false;
  }

  get pending(): number {
    return this.unsaved.size;
  }

  /** Resolves once every bit set before the call is on disk (group commit). */
  commit(): Promise<void> {
    if (this.next) return this.next;
    if (this.running) {
      const after = (): Promise<void> => {
        this.next = null;
        return this.startCommit();
      };
      this.next = this.running.then(after, after);
      return this.next;
    }
    if (this.unsaved.size === 0) return Promise.resolve();
    return this.startCommit();
  }

  private startCommit(): Promise<void> {
    if (this.unsaved.size === 0) return Promise.resolve();
    this.running = this.commitOnce().finally(() => (this.running = null));
    return this.running;
  }

  private async commitOnce(): Promise<void> {
    const upTo = this.marks;
    const bits = RegionBitmap.create(this.bitmap.lunSize, this.bitmap.regionSize);
    bits.copyFrom(this.bitmap);
    await this.data.flush();
    const generation = this.generation + 1;
    await saveBitmapFile(this.path, bits, generation);
    this.generation = generation;
    for (const [r, n] of this.unsaved) if (n <= upTo) this.unsaved.delete(r);
  }

  /** Waits for a commit under way and removes the file (the copy completed or the clone is gone). */
  async remove(): Promise<void> {
    while (this.running || this.next) await (this.next ?? this.running)!.catch(() => undefined);
    await fsp.rm(this.path, { force: true });
  }
}
