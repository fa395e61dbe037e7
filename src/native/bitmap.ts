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
 *
 * ## Files
 * This file is the factory, the file persistence and the public names. The geometry and the image
 * format are ./bitmap-format.ts's; the interface and the shared base class ./bitmap-base.ts's;
 * the two implementations ./bitmap-ts.ts and ./bitmap-native.ts.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync, fdatasyncSync } from 'node:fs';
import { open as openAsync, readFile as readFileAsync, rename as renameAsync } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { addon } from './addon.js';
import { parseBitmapImage } from './bitmap-format.js';
import type { RegionBitmap as RegionBitmapApi } from './bitmap-base.js';
import { NativeRegionBitmap } from './bitmap-native.js';
import { TsRegionBitmap } from './bitmap-ts.js';

export { MIN_REGION_SIZE, MAX_REGION_SIZE, MAX_REGIONS, BITMAP_HEADER_SIZE, BitmapCorruptError, parseBitmapImage, roundOut } from './bitmap-format.js';
export { TsRegionBitmap, NativeRegionBitmap };

/** The interface both implementations provide (declared in ./bitmap-base.ts; the factory below shares its name). */
export type RegionBitmap = RegionBitmapApi;

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
