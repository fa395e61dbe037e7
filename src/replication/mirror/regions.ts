import type { BlockDevice } from '../../block/index.js';
import { RemoteLinkError } from '../../link/protocol/index.js';
import { crc32c, type RegionBitmap } from '../../native/index.js';

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
