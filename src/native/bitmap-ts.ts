/**
 * The TypeScript twin of the region bitmap (./bitmap.ts documents the semantics): bits in a
 * Uint32Array, scanned a word at a time. Used when the addon is not loaded, and as the reference
 * the native implementation is tested against; separate so each twin reads on its own.
 */
import { BITMAP_HEADER_SIZE, BitmapCorruptError, MAGIC, parseBitmapImage } from './bitmap-format.js';
import { BitmapBase, type RegionBitmap } from './bitmap-base.js';
import { crc32cTs } from './crc32c.js';

function popcnt(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
/** Trailing zeros of a non-zero 32-bit word. */
function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** The TypeScript twin: bits in a Uint32Array (two 32-bit words per serialized 64-bit word). */
export class TsRegionBitmap extends BitmapBase implements RegionBitmap {
  readonly impl = 'ts' as const;
  /** Little-endian words; bits beyond regionCount are always zero. */
  readonly words: Uint32Array;
  constructor(lunSize: number, regionSize: number) {
    super(lunSize, regionSize);
    this.words = new Uint32Array(Math.ceil(this.regionCount / 64) * 2);
  }

  static load(image: Uint8Array): TsRegionBitmap {
    const h = parseBitmapImage(image);
    const b = new TsRegionBitmap(h.lunSize, h.regionSize);
    const dv = new DataView(h.payload.buffer, h.payload.byteOffset, h.payload.byteLength);
    for (let i = 0; i < b.words.length; i++) b.words[i] = dv.getUint32(i * 4, true);
    const r = b.regionCount % 32;
    const last = (b.regionCount - 1) >>> 5;
    if ((r !== 0 && b.words[last]! >>> r !== 0) || b.words.subarray(last + 1).some((w) => w !== 0))
      throw new BitmapCorruptError('bitmap has bits beyond the last region');
    return b;
  }

  private setBits(a: number, b: number, v: boolean): void {
    if (a >= b) return;
    const w = this.words;
    const wa = a >>> 5, wb = (b - 1) >>> 5;
    const ma = (0xffffffff << (a & 31)) >>> 0;
    const mb = 0xffffffff >>> (31 - ((b - 1) & 31));
    if (wa === wb) {
      const m = ma & mb;
      if (v) w[wa]! |= m;
      else w[wa]! &= ~m;
      return;
    }
    if (v) {
      w[wa]! |= ma;
      w.fill(0xffffffff, wa + 1, wb);
      w[wb]! |= mb;
    } else {
      w[wa]! &= ~ma;
      w.fill(0, wa + 1, wb);
      w[wb]! &= ~mb;
    }
  }
  private outward(off: number, len: number): [number, number] {
    if (len === 0) return [0, 0];
    const rs = this.regionSize;
    return [Math.floor(off / rs), Math.floor((off + len - 1) / rs) + 1];
  }
  private inward(off: number, len: number): [number, number] {
    if (len === 0) return [0, 0];
    const rs = this.regionSize;
    const first = Math.ceil(off / rs);
    const end = off + len === this.lunSize ? this.regionCount : Math.floor((off + len) / rs);
    return first >= end ? [0, 0] : [first, end];
  }
  /** First set bit at index >= i, or -1. */
  nextSet(i: number): number {
    if (i >= this.regionCount) return -1;
    const w = this.words;
    let wi = i >>> 5;
    let x = w[wi]! & ((0xffffffff << (i & 31)) >>> 0);
    const n = w.length;
    for (;;) {
      if (x !== 0) return wi * 32 + ctz(x);
      if (++wi >= n) return -1;
      x = w[wi]!;
    }
  }
  /** First clear bit at index >= i (regionCount when none). */
  nextClear(i: number): number {
    if (i >= this.regionCount) return this.regionCount;
    const w = this.words;
    let wi = i >>> 5;
    let x = ~w[wi]! & ((0xffffffff << (i & 31)) >>> 0);
    const n = w.length;
    for (;;) {
      if (x !== 0) return Math.min(this.regionCount, wi * 32 + ctz(x));
      if (++wi >= n) return this.regionCount;
      x = ~w[wi]!;
    }
  }
  private countBits(a: number, b: number): number {
    if (a >= b) return 0;
    const w = this.words;
    const wa = a >>> 5, wb = (b - 1) >>> 5;
    const ma = (0xffffffff << (a & 31)) >>> 0;
    const mb = 0xffffffff >>> (31 - ((b - 1) & 31));
    if (wa === wb) return popcnt(w[wa]! & ma & mb);
    let n = popcnt(w[wa]! & ma) + popcnt(w[wb]! & mb);
    for (let i = wa + 1; i < wb; i++) n += popcnt(w[i]!);
    return n;
  }

  mark(offset: number, length: number): void {
    this.check(offset, length);
    const [a, b] = this.outward(offset, length);
    this.setBits(a, b, true);
  }
  markMany(ranges: Float64Array | readonly number[]): void {
    if (ranges.length % 2) throw new RangeError('ranges must hold offset/length pairs');
    for (let i = 0; i < ranges.length; i += 2) this.check(ranges[i]!, ranges[i + 1]!);
    for (let i = 0; i < ranges.length; i += 2) {
      const [a, b] = this.outward(ranges[i]!, ranges[i + 1]!);
      this.setBits(a, b, true);
    }
  }
  clear(offset: number, length: number): void {
    this.check(offset, length);
    const [a, b] = this.inward(offset, length);
    this.setBits(a, b, false);
  }
  clearMany(ranges: Float64Array | readonly number[]): void {
    if (ranges.length % 2) throw new RangeError('ranges must hold offset/length pairs');
    for (let i = 0; i < ranges.length; i += 2) this.check(ranges[i]!, ranges[i + 1]!);
    for (let i = 0; i < ranges.length; i += 2) {
      const [a, b] = this.inward(ranges[i]!, ranges[i + 1]!);
      this.setBits(a, b, false);
    }
  }
  clearAll(): void {
    this.words.fill(0);
  }
  test(offset: number, length: number): boolean {
    this.check(offset, length);
    const [a, b] = this.outward(offset, length);
    if (a >= b) return false;
    const s = this.nextSet(a);
    return s >= 0 && s < b;
  }
  countRegions(offset?: number, length?: number): number {
    if (offset === undefined) {
      let n = 0;
      const w = this.words;
      for (let i = 0; i < w.length; i++) {
        const x = w[i]!;
        if (x !== 0) n += popcnt(x);
      }
      return n;
    }
    const len = length ?? this.lunSize - offset;
    this.check(offset, len);
    const [a, b] = this.outward(offset, len);
    return this.countBits(a, b);
  }
  dirtyBytes(): number {
    const n = this.countRegions();
    let bytes = n * this.regionSize;
    const tail = this.lunSize % this.regionSize;
    if (tail !== 0) {
      const last = this.regionCount - 1;
      if ((this.words[last >>> 5]! >>> (last & 31)) & 1) bytes -= this.regionSize - tail;
    }
    return bytes;
  }
  dirtyRuns(from: number, maxRuns: number): Float64Array {
    if (!Number.isSafeInteger(from) || from < 0 || !Number.isSafeInteger(maxRuns) || maxRuns < 0) throw new RangeError('bad dirtyRuns arguments');
    maxRuns = Math.min(maxRuns, 1 << 24);
    const out: number[] = [];
    let i = Math.floor(from / this.regionSize);
    const rs = this.regionSize;
    for (let n = 0; n < maxRuns; n++) {
      const s = this.nextSet(i);
      if (s < 0) break;
      const e = this.nextClear(s);
      const bo = s * rs;
      out.push(bo, Math.min(e * rs, this.lunSize) - bo);
      i = e;
    }
    return Float64Array.from(out);
  }
  union(other: RegionBitmap): void {
    this.sameGeometry(other);
    const o = other instanceof TsRegionBitmap ? other : TsRegionBitmap.load(other.serialize());
    const w = this.words, ow = o.words;
    for (let i = 0; i < w.length; i++) w[i]! |= ow[i]!;
  }
  copyFrom(other: RegionBitmap): void {
    this.sameGeometry(other);
    const o = other instanceof TsRegionBitmap ? other : TsRegionBitmap.load(other.serialize());
    this.words.set(o.words);
  }
  serialize(generation = 0): Buffer {
    if (!Number.isSafeInteger(generation) || generation < 0) throw new RangeError('generation must be a non-negative safe integer');
    const payload = this.words.length * 4;
    const b = Buffer.alloc(BITMAP_HEADER_SIZE + payload);
    b.set(MAGIC, 0);
    b.writeUInt32LE(1, 8);
    b.writeUInt32LE(BITMAP_HEADER_SIZE, 12);
    b.writeBigUInt64LE(BigInt(this.regionSize), 16);
    b.writeBigUInt64LE(BigInt(this.lunSize), 24);
    b.writeBigUInt64LE(BigInt(generation), 32);
    b.writeBigUInt64LE(BigInt(this.regionCount), 40);
    b.writeBigUInt64LE(BigInt(payload), 48);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < this.words.length; i++) dv.setUint32(BITMAP_HEADER_SIZE + i * 4, this.words[i]!, true);
    b.writeUInt32LE(crc32cTs(b.subarray(BITMAP_HEADER_SIZE), crc32cTs(b.subarray(0, 56))), 56);
    return b;
  }
}
