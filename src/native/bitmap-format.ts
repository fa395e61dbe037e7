/**
 * Region bitmap geometry and the on-disk image (./bitmap.ts documents the format): the limits,
 * the geometry check, the image parser and its error. Separate so that both implementations and
 * the file persistence share one definition of a valid image without importing each other.
 */
import { crc32cTs } from './crc32c.js';

export const MIN_REGION_SIZE = 4096;
export const MAX_REGION_SIZE = 64 * 1024 * 1024;
export const MAX_REGIONS = 2 ** 32;
export const BITMAP_HEADER_SIZE = 64;
export const MAGIC = [0x53, 0x42, 0x58, 0x42, 0x4d, 0x41, 0x50, 0x00]; // "SBXBMAP\0"

/** A bitmap image (file or buffer) that is torn, truncated, corrupt or of an unknown format. */
export class BitmapCorruptError extends Error {
  readonly code = 'ESANBOX_CORRUPT';
  constructor(message: string) {
    super(message);
    this.name = 'BitmapCorruptError';
  }
}

/** Checks a LUN size and region size; returns the region count. */
export function checkGeometry(lunSize: number, regionSize: number): number {
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
