import type { BlockDevice } from '../../block/index.js';
import { RemoteLinkError } from '../../link/protocol/index.js';
import { crc32c, type RegionBitmap } from '../../native/index.js';
import type { MirrorRegionMap } from './types.js';

/** Bytes read per step when regions are checksummed (verify, read-regions). */
export const VERIFY_BATCH_BYTES = 4 * 1024 * 1024;

/** CRC32C of each region [first, first+count) of `dev` (the last one may be short). */
export async function regionCrcs(dev: BlockDevice, size: number, rs: number, first: number, count: number): Promise<Array<{ region: number; crc: number }>> {
  const out: Array<{ region: number; crc: number }> = [];
  const n = Math.ceil(size / rs);
  if (first + count > n) throw new RemoteLinkError('bad-request', `regions ${first}+${count} beyond the ${n} regions of the image`);
  const start = first * rs;
  const end = Math.min(size, (first + count) * rs);
  const step = Math.max(rs, Math.floor(VERIFY_BATCH_BYTES / rs) * rs);
  for (let off = start; off < end; off += step) {
    const len = Math.min(step, end - off);
    const buf = await dev.read(off, len);
    for (let o = 0; o < len; o += rs) out.push({ region: (off + o) / rs, crc: crc32c(buf.subarray(o, Math.min(len, o + rs))) });
  }
  return out;
}

/** A bitmap as a view shows it: counts and the first 64 runs. */
export function summarize(bm: RegionBitmap): { regions: number; bytes: number; ranges: Array<[number, number]> } {
  const ranges: Array<[number, number]> = [];
  for (const r of bm.runs()) {
    if (ranges.length >= 64) break;
    ranges.push([r.offset, r.length]);
  }
  return { regions: bm.countRegions(), bytes: bm.dirtyBytes(), ranges };
}

/** Most buckets a region map is cut into (a heatmap row; more says nothing a person can see). */
export const MAX_MAP_BUCKETS = 1024;

/**
 * The bytes of each of about `buckets` equal slices of a LUN for a heatmap of logs with these
 * region sizes: a multiple of the largest (powers of two, so of every one), so that each log is
 * cut at the same offsets and a bucket never splits a region. Fewer buckets than asked when the
 * LUN has fewer regions.
 */
function bucketBytesFor(lunSize: number, buckets: number, regionSizes: number[]): number {
  if (!Number.isSafeInteger(buckets) || buckets < 1 || buckets > MAX_MAP_BUCKETS) throw new RangeError(`buckets ${buckets} not in [1, ${MAX_MAP_BUCKETS}]`);
  const largest = Math.max(...regionSizes);
  return Math.max(1, Math.ceil(Math.ceil(lunSize / buckets) / largest)) * largest;
}

/** The share of dirty regions (0..1) in each bucket [i*bucketBytes, (i+1)*bucketBytes) of `bm`'s LUN, the last to its end. */
function regionShares(bm: RegionBitmap, bucketBytes: number): number[] {
  if (bucketBytes % bm.regionSize !== 0) throw new RangeError(`bucket of ${bucketBytes} bytes splits regions of ${bm.regionSize}`);
  const shares: number[] = [];
  for (let off = 0; off < bm.lunSize; off += bucketBytes) {
    const len = Math.min(bucketBytes, bm.lunSize - off);
    shares.push(bm.countRegions(off, len) / Math.ceil(len / bm.regionSize));
  }
  return shares;
}

/** A mirror's region map (MirrorRegionMap) from its write-intent log and each secondary's fracture log (undefined: none yet). */
export function regionMapOf(mirror: string, wil: RegionBitmap, images: Array<{ imageId: string; array: string; fractureLog: RegionBitmap | undefined }>, buckets: number): MirrorRegionMap {
  const logs = [wil, ...images.flatMap((i) => (i.fractureLog ? [i.fractureLog] : []))];
  const bucketBytes = bucketBytesFor(wil.lunSize, buckets, logs.map((bm) => bm.regionSize));
  const log = (bm: RegionBitmap) => ({ regionSize: bm.regionSize, shares: regionShares(bm, bucketBytes) });
  return {
    mirror,
    lunSize: wil.lunSize,
    bucketBytes,
    writeIntentLog: log(wil),
    images: images.map((i) => ({ imageId: i.imageId, array: i.array, fractureLog: i.fractureLog ? log(i.fractureLog) : null })),
  };
}
