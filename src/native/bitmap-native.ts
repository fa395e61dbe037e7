/**
 * The region bitmap backed by the Rust addon (./bitmap.ts documents the semantics), with a small
 * JS-side queue of single marks. Separate so each twin reads on its own; the factory in
 * ./bitmap.ts picks one.
 */
import { addon, type NativeHandle } from './addon.js';
import { BitmapCorruptError, parseBitmapImage } from './bitmap-format.js';
import { BitmapBase, type RegionBitmap } from './bitmap-base.js';

function asRangeError(e: unknown): Error {
  const c = (e as { code?: string }).code;
  return c === 'ERR_OUT_OF_RANGE' || c === 'ESANBOX_NATIVE' ? new RangeError((e as Error).message) : (e as Error);
}

function toF64(r: Float64Array | readonly number[]): Float64Array {
  return r instanceof Float64Array ? r : Float64Array.from(r);
}

/**
 * The Rust implementation (requires the addon). Single `mark` calls are queued in a small JS-side
 * buffer and handed to the addon in one `markMany` crossing (every other method flushes the queue
 * first, so results are always identical to marking immediately): a Node-API call costs more
 * than setting a bit, and the write path marks one range per host write.
 */
export class NativeRegionBitmap extends BitmapBase implements RegionBitmap {
  readonly impl = 'native' as const;
  /** @internal */ readonly h: NativeHandle;
  private readonly q = new Float64Array(2 * 512);
  private qn = 0;
  constructor(lunSize: number, regionSize: number, handle?: NativeHandle) {
    super(lunSize, regionSize);
    if (!addon) throw new Error('native addon not loaded');
    this.h = handle ?? addon.bmNew(lunSize, regionSize);
  }
  static load(image: Uint8Array): NativeRegionBitmap {
    if (!addon) throw new Error('native addon not loaded');
    const h = parseBitmapImage(image);
    let handle: NativeHandle;
    try {
      handle = addon.bmLoad(image);
    } catch (e) {
      throw new BitmapCorruptError((e as Error).message);
    }
    return new NativeRegionBitmap(h.lunSize, h.regionSize, handle);
  }
  /** Applies queued marks. */
  flush(): void {
    if (this.qn === 0) return;
    const n = this.qn;
    this.qn = 0;
    addon!.bmMarkMany(this.h, n === 512 ? this.q : this.q.subarray(0, 2 * n));
  }
  mark(offset: number, length: number): void {
    this.check(offset, length);
    const i = 2 * this.qn;
    this.q[i] = offset;
    this.q[i + 1] = length;
    if (++this.qn === 512) this.flush();
  }
  markMany(ranges: Float64Array | readonly number[]): void {
    this.flush();
    // The addon validates the whole batch before applying any of it.
    try {
      addon!.bmMarkMany(this.h, toF64(ranges));
    } catch (e) {
      throw asRangeError(e);
    }
  }
  clear(offset: number, length: number): void {
    this.check(offset, length);
    this.flush();
    addon!.bmClear(this.h, offset, length);
  }
  clearMany(ranges: Float64Array | readonly number[]): void {
    this.flush();
    try {
      addon!.bmClearMany(this.h, toF64(ranges));
    } catch (e) {
      throw asRangeError(e);
    }
  }
  clearAll(): void {
    this.qn = 0;
    addon!.bmClearAll(this.h);
  }
  test(offset: number, length: number): boolean {
    this.check(offset, length);
    this.flush();
    return addon!.bmTest(this.h, offset, length);
  }
  countRegions(offset?: number, length?: number): number {
    this.flush();
    if (offset === undefined) return addon!.bmCount(this.h);
    const len = length ?? this.lunSize - offset;
    this.check(offset, len);
    return addon!.bmCountIn(this.h, offset, len);
  }
  dirtyBytes(): number {
    this.flush();
    return addon!.bmDirtyBytes(this.h);
  }
  dirtyRuns(from: number, maxRuns: number): Float64Array {
    if (!Number.isSafeInteger(from) || from < 0 || !Number.isSafeInteger(maxRuns) || maxRuns < 0) throw new RangeError('bad dirtyRuns arguments');
    this.flush();
    return addon!.bmRuns(this.h, from, maxRuns);
  }
  union(other: RegionBitmap): void {
    this.sameGeometry(other);
    this.flush();
    const o = other instanceof NativeRegionBitmap ? other : NativeRegionBitmap.load(other.serialize());
    o.flush();
    addon!.bmUnion(this.h, o.h);
  }
  copyFrom(other: RegionBitmap): void {
    this.sameGeometry(other);
    this.qn = 0;
    const o = other instanceof NativeRegionBitmap ? other : NativeRegionBitmap.load(other.serialize());
    o.flush();
    addon!.bmCopy(this.h, o.h);
  }
  serialize(generation = 0): Buffer {
    if (!Number.isSafeInteger(generation) || generation < 0) throw new RangeError('generation must be a non-negative safe integer');
    this.flush();
    return addon!.bmSerialize(this.h, generation);
  }
}
