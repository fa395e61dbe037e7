import { promises as fsp } from 'node:fs';
import { ignoreOnClose } from '../../errors/index.js';
import { BitmapCorruptError, RegionBitmap } from '../../native/index.js';

/**
 * A region bitmap kept on disk (write-intent log, fracture log): two slots in one file, written
 * alternately, each a self-checking bitmap image (magic, geometry, generation, CRC32C). A torn
 * slot is detected by its CRC and the other slot, one generation older, is used; a clean
 * generation is never overwritten by the write that replaces it.
 *
 * `persist()` is group commit: callers that marked regions await it before they acknowledge the
 * write that needed the mark; while one pwrite+fdatasync runs, every caller that arrives joins
 * the next one. Measured here: a 4 KiB pwrite+fdatasync costs 50-90 µs.
 */
export class BitmapFile {
  private generation: number;
  private fh: fsp.FileHandle | null;
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  /** the bitmap changed since the last write was started */
  private dirty = false;
  private slotBytes: number;

  private constructor(
    readonly path: string,
    readonly bitmap: RegionBitmap,
    fh: fsp.FileHandle,
    generation: number,
    private readonly sync: boolean,
  ) {
    this.fh = fh;
    this.generation = generation;
    this.slotBytes = bitmap.serialize(0).length;
  }

  /**
   * Opens the file, or creates it with an empty bitmap. `lost` says why the bitmap could not be
   * read (both slots corrupt, other geometry): the caller must treat every region as dirty.
   */
  static async open(path: string, lunSize: number, regionSize: number, opts: { sync?: boolean } = {}): Promise<{ file: BitmapFile; created: boolean; lost: string | null }> {
    let existing: Buffer | null = null;
    try {
      existing = await fsp.readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    let best: { bitmap: RegionBitmap; generation: number } | null = null;
    let lost: string | null = null;
    if (existing) {
      const slot = RegionBitmap.create(lunSize, regionSize).serialize(0).length;
      const problems: string[] = [];
      for (let s = 0; s < 2; s++) {
        const img = existing.subarray(s * slot, (s + 1) * slot);
        try {
          const got = RegionBitmap.load(img);
          if (got.bitmap.regionSize !== regionSize || got.bitmap.lunSize !== lunSize) {
            problems.push(`slot ${s}: geometry ${got.bitmap.lunSize}/${got.bitmap.regionSize}, expected ${lunSize}/${regionSize}`);
            continue;
          }
          if (!best || got.generation > best.generation) best = got;
        } catch (e) {
          problems.push(`slot ${s}: ${e instanceof BitmapCorruptError ? e.message : (e as Error).message}`);
        }
      }
      if (!best) lost = `${path}: no valid copy (${problems.join('; ')})`;
    }
    const fh = await fsp.open(path, existing ? 'r+' : 'w+', 0o644);
    const bitmap = best?.bitmap ?? RegionBitmap.create(lunSize, regionSize);
    const f = new BitmapFile(path, bitmap, fh, best?.generation ?? 0, opts.sync !== false);
    if (!existing || lost) {
      // Both slots valid from the start, so a torn first write still leaves one good copy.
      f.dirty = true;
      await f.persist();
      f.dirty = true;
      await f.persist();
    }
    return { file: f, created: !existing, lost };
  }

  /** Marks the range dirty in memory; call `persist()` before relying on it. */
  mark(offset: number, length: number): void {
    this.bitmap.mark(offset, length);
    this.dirty = true;
  }

  clear(offset: number, length: number): void {
    this.bitmap.clear(offset, length);
    this.dirty = true;
  }

  clearAll(): void {
    this.bitmap.clearAll();
    this.dirty = true;
  }

  /** Tells the file the bitmap was changed directly (e.g. through a WriteIntentLog). */
  touch(): void {
    this.dirty = true;
  }

  get pendingWrite(): boolean {
    return this.dirty;
  }

  /** Resolves once every change made before the call is on disk (group commit). */
  persist(): Promise<void> {
    if (this.next) return this.next;
    if (!this.dirty && !this.running) return Promise.resolve();
    if (!this.running) return (this.running = this.writeOnce());
    // One write runs; everybody arriving now shares the one after it.
    this.next ??= this.running.then(
      () => this.afterRunning(),
      () => this.afterRunning(),
    );
    return this.next;
  }

  private afterRunning(): Promise<void> {
    this.next = null;
    if (!this.dirty) return Promise.resolve();
    return (this.running = this.writeOnce());
  }

  private async writeOnce(): Promise<void> {
    try {
      if (!this.fh) throw new Error(`bitmap file ${this.path} is closed`);
      this.dirty = false;
      this.generation++;
      const img = this.bitmap.serialize(this.generation);
      if (img.length !== this.slotBytes) throw new Error(`bitmap image of ${img.length} bytes, slot is ${this.slotBytes}`);
      await this.fh.write(img, 0, img.length, (this.generation % 2) * this.slotBytes);
      if (this.sync) await this.fh.datasync();
    } catch (e) {
      this.dirty = true;
      throw e;
    } finally {
      this.running = null;
    }
  }

  async close(): Promise<void> {
    // The last write's failure is the caller's of persist(); closing goes on (no event sink here).
    if (this.dirty) await ignoreOnClose(this.persist(), `writing ${this.path} at close`);
    while (this.running || this.next) await ignoreOnClose((this.next ?? this.running)!, `waiting for a write of ${this.path} at close`);
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }

  /** Closes and removes the file (the image left the mirror). */
  async remove(): Promise<void> {
    this.dirty = false;
    await this.close();
    await fsp.rm(this.path, { force: true });
  }
}
