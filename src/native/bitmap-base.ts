/**
 * What the two region bitmap implementations share: the RegionBitmap interface and a base class
 * (geometry, range checks, run iteration). Separate so that ./bitmap-ts.ts and
 * ./bitmap-native.ts can each extend it without importing each other or the factory in ./bitmap.ts.
 */
import { checkGeometry } from './bitmap-format.js';

/** The interface both implementations provide. */
export interface RegionBitmap {
  readonly impl: 'native' | 'ts';
  readonly lunSize: number;
  readonly regionSize: number;
  readonly regionCount: number;
  mark(offset: number, length: number): void;
  /** `ranges` = [offset, length, offset, length, ...]; one addon call for the whole batch. The whole batch is validated first: a bad range throws RangeError and changes nothing. */
  markMany(ranges: Float64Array | readonly number[]): void;
  clear(offset: number, length: number): void;
  clearMany(ranges: Float64Array | readonly number[]): void;
  clearAll(): void;
  test(offset: number, length: number): boolean;
  countRegions(offset?: number, length?: number): number;
  dirtyBytes(): number;
  dirtyRuns(from: number, maxRuns: number): Float64Array;
  nextDirtyRun(from: number): { offset: number; length: number } | null;
  runs(from?: number): IterableIterator<{ offset: number; length: number }>;
  union(other: RegionBitmap): void;
  copyFrom(other: RegionBitmap): void;
  serialize(generation?: number): Buffer;
}

/** The part of both implementations that needs no bits: geometry, range checks, run iteration. */
export abstract class BitmapBase {
  abstract readonly impl: 'native' | 'ts';
  readonly lunSize: number;
  readonly regionSize: number;
  readonly regionCount: number;
  protected readonly shift: number;
  constructor(lunSize: number, regionSize: number) {
    this.regionCount = checkGeometry(lunSize, regionSize);
    this.lunSize = lunSize;
    this.regionSize = regionSize;
    this.shift = 31 - Math.clz32(regionSize);
  }
  protected check(off: number, len: number): void {
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off > this.lunSize || len > this.lunSize - off)
      throw new RangeError(`range ${off}+${len} outside LUN of ${this.lunSize} bytes`);
  }
  abstract dirtyRuns(from: number, maxRuns: number): Float64Array;
  nextDirtyRun(from: number): { offset: number; length: number } | null {
    const r = this.dirtyRuns(from, 1);
    return r.length ? { offset: r[0]!, length: r[1]! } : null;
  }
  *runs(from = 0): IterableIterator<{ offset: number; length: number }> {
    let pos = from;
    for (;;) {
      const r = this.dirtyRuns(pos, 1024);
      if (r.length === 0) return;
      for (let i = 0; i < r.length; i += 2) yield { offset: r[i]!, length: r[i + 1]! };
      pos = r[r.length - 2]! + r[r.length - 1]!;
      if (pos >= this.lunSize) return;
    }
  }
  protected sameGeometry(o: RegionBitmap): void {
    if (o.lunSize !== this.lunSize || o.regionSize !== this.regionSize) throw new RangeError('bitmaps have different geometry (LUN size or region size)');
  }
}
