/**
 * Region bitmaps: the write-intent log (WIL) and the fracture log of a mirror.
 *
 * ## Semantics (identical in the native and the TypeScript implementation)
 * - One bit per region of a LUN. The region size is a power of two in [4 KiB, 64 MiB], chosen per
 *   LUN so that the bitmap stays small (a 16 TiB LUN with 64 KiB regions has 256 Mi regions = 32
 *   MiB of bitmap). At most 2^32 regions. Offsets and lengths are bytes, safe integers, and must
 *   lie inside the LUN: an out-of-range call throws and changes nothing.
 * - `mark(off, len)` rounds outward: every region the range touches becomes dirty. A
 *   zero-length range does nothing.
 * - `clear(off, len)` rounds inward: only regions the range covers completely become clean,
 *   because a partially covered region may still hold other unsynchronized bytes. A range that
 *   reaches the end of the LUN covers the (possibly short) last region completely. To clear
 *   everything a range touches, round it to the region size first (`roundOut`).
 * - `test(off, len)` is true when any region the range touches is dirty.
 * - `countRegions()` counts dirty regions (optionally of those a range touches);
 *   `dirtyBytes()` is the bytes they cover, with the last region counted only up to the LUN end.
 * - `dirtyRuns(from, max)` returns, in one call, up to `max` runs of adjacent dirty regions as
 *   `[offset, length, offset, length, ...]` (a Float64Array), starting with the region that
 *   contains `from` (so a run may begin before `from`); lengths are clipped at the LUN end.
 *   `nextDirtyRun` and `runs()` are conveniences on top of it. Both implementations scan whole
 *   words, never bit by bit.
 * - `union(o)` ORs `o` into this bitmap, `copyFrom(o)` replaces this bitmap's bits with `o`'s;
 *   both require the same LUN size and region size (else they throw).
 * - `serialize(generation)` gives the on-disk image: a 64-byte header (magic "SBXBMAP\0",
 *   version 1, header size, region size, LUN size, generation, region count, payload size,
 *   CRC32C over header bytes 0..55 and the payload) followed by the bits as little-endian 64-bit
 *   words. Both implementations produce identical bytes, and load each other's images. Loading a
 *   short, long, torn or corrupt image throws `BitmapCorruptError` (code `ESANBOX_CORRUPT`).
 *
 * ## Batching
 * Every call into the addon costs tens of nanoseconds of Node-API overhead, more than setting a
 * bit. Hot paths should use `markMany`/`clearMany` (ranges in one Float64Array) and
 * `dirtyRuns` with a large `max`; the write-intent log below also skips the addon entirely for
 * regions that already have a write in flight.
 *
 * ## Durability
 * A bitmap lives in memory. `saveBitmapFile` persists it atomically (write to a temporary file,
 * fdatasync, rename over the target, fsync the directory); `loadBitmapFile` never accepts a torn
 * or corrupt file (CRC and exact length are checked), so a crash during a save leaves either the
 * old or the new complete image.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync, fdatasyncSync } from 'node:fs';
import { open as openAsync, readFile as readFileAsync, rename as renameAsync } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { addon, type NativeHandle } from './addon.js';
import { crc32cTs } from './crc32c.js';

export const MIN_REGION_SIZE = 4096;
export const MAX_REGION_SIZE = 64 * 1024 * 1024;
export const MAX_REGIONS = 2 ** 32;
export const BITMAP_HEADER_SIZE = 64;
const MAGIC = [0x53, 0x42, 0x58, 0x42, 0x4d, 0x41, 0x50, 0x00]; // "SBXBMAP\0"

/** A bitmap image (file or buffer) that is torn, truncated, corrupt or of an unknown format. */
export class BitmapCorruptError extends Error {
  readonly code = 'ESANBOX_CORRUPT';
  constructor(message: string) {
    super(message);
    this.name = 'BitmapCorruptError';
  }
}

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

function checkGeometry(lunSize: number, regionSize: number): number {
  if (!Number.isSafeInteger(regionSize) || regionSize < MIN_REGION_SIZE || regionSize > MAX_REGION_SIZE || (regionSize & (regionSize - 1)) !== 0)
    throw new RangeError(`region size ${regionSize} is not a power of two in [4096, 67108864]`);
  if (!Number.isSafeInteger(lunSize) || lunSize <= 0) throw new RangeError(`LUN size ${lunSize} out of range (1 .. 2^53)`);
  const n = Math.ceil(lunSize / regionSize);
  if (n > MAX_REGIONS) throw new RangeError(`${n} regions exceed the limit of 2^32; choose a larger region size`);
  return n;
}

/** Parses and checks a serialized bitmap header + CRC; returns geometry and payload view. */
export function parseBitmapImage(b: Uint8Array): { regionSize: number; lunSize: number; generation: number; regionCount: number; payload: Uint8Array } {
  if (b.length < BITMAP_HEADER_SIZE) throw new BitmapCorruptError(`bitmap image too short (${b.length} bytes)`);
  for (let i = 0; i < 8; i++) if (b[i] !== MAGIC[i]) throw new BitmapCorruptError('bad bitmap magic');
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(8, true) !== 1) throw new BitmapCorruptError(`unsupported bitmap version ${dv.getUint32(8, true)}`);
  if (dv.getUint32(12, true) !== BITMAP_HEADER_SIZE) throw new BitmapCorruptError('bad bitmap header size');
  const u64 = (o: number) => {
    const v = dv.getBigUint64(o, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BitmapCorruptError('bitmap header field out of range');
    return Number(v);
  };
  const regionSize = u64(16), lunSize = u64(24), generation = u64(32), regionCount = u64(40), payloadBytes = u64(48);
  let n: number;
  try {
    n = checkGeometry(lunSize, regionSize);
  } catch (e) {
    throw new BitmapCorruptError((e as Error).message);
  }
  if (n !== regionCount || payloadBytes !== Math.ceil(n / 64) * 8) throw new BitmapCorruptError('bitmap header geometry mismatch');
  if (b.length !== BITMAP_HEADER_SIZE + payloadBytes)
    throw new BitmapCorruptError(`bitmap image length ${b.length} != ${BITMAP_HEADER_SIZE + payloadBytes} (torn or truncated)`);
  const payload = b.subarray(BITMAP_HEADER_SIZE);
  const c = crc32cTs(payload, crc32cTs(b.subarray(0, 56)));
  if (c !== dv.getUint32(56, true) || dv.getUint32(60, true) !== 0) throw new BitmapCorruptError('bitmap CRC mismatch (torn or corrupt)');
  return { regionSize, lunSize, generation, regionCount, payload };
}

/** Rounds a byte range outward to whole regions, clipped to the LUN. */
export function roundOut(bm: { regionSize: number; lunSize: number }, offset: number, length: number): { offset: number; length: number } {
  const rs = bm.regionSize;
  const s = Math.floor(offset / rs) * rs;
  const e = Math.min(bm.lunSize, Math.ceil((offset + length) / rs) * rs);
  return { offset: s, length: Math.max(0, e - s) };
}

function popcnt(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
/** Trailing zeros of a non-zero 32-bit word. */
function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

abstract class BitmapBase {
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

/** Factory: the native implementation when the addon is loaded, else the TypeScript twin. */
export const RegionBitmap = {
  create(lunSize: number, regionSize: number, impl?: 'native' | 'ts'): RegionBitmap {
    const useNative = impl ? impl === 'native' : addon !== null;
    return useNative ? new NativeRegionBitmap(lunSize, regionSize) : new TsRegionBitmap(lunSize, regionSize);
  },
  /** Loads a serialized image (see `serialize`); throws BitmapCorruptError on a bad image. */
  load(image: Uint8Array, impl?: 'native' | 'ts'): { bitmap: RegionBitmap; generation: number } {
    const useNative = impl ? impl === 'native' : addon !== null;
    const generation = parseBitmapImage(image).generation;
    return { bitmap: useNative ? NativeRegionBitmap.load(image) : TsRegionBitmap.load(image), generation };
  },
};

// ---------------------------------------------------------------------------------------------
// Persistence

function tmpName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
}

/**
 * Atomically replaces `path` with the bitmap image: temp file, fdatasync, rename, fsync of the
 * directory. After it resolves the new image survives a crash; a crash before leaves the old one.
 */
export async function saveBitmapFile(path: string, bitmap: RegionBitmap, generation: number): Promise<void> {
  const img = bitmap.serialize(generation);
  const tmp = tmpName(path);
  const fh = await openAsync(tmp, 'w', 0o644);
  try {
    await fh.write(img, 0, img.length, 0);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await renameAsync(tmp, path);
  const dh = await openAsync(dirname(path), 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Synchronous form of saveBitmapFile (for the power-fail vault path, where no event loop waits). */
export function saveBitmapFileSync(path: string, bitmap: RegionBitmap, generation: number): void {
  const img = bitmap.serialize(generation);
  const tmp = tmpName(path);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    let o = 0;
    while (o < img.length) o += writeSync(fd, img, o, img.length - o, o);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dfd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/** Loads a bitmap file; throws BitmapCorruptError when torn/corrupt, ENOENT when absent. */
export async function loadBitmapFile(path: string, impl?: 'native' | 'ts'): Promise<{ bitmap: RegionBitmap; generation: number }> {
  return RegionBitmap.load(await readFileAsync(path), impl);
}
export function loadBitmapFileSync(path: string, impl?: 'native' | 'ts'): { bitmap: RegionBitmap; generation: number } {
  return RegionBitmap.load(readFileSync(path), impl);
}
