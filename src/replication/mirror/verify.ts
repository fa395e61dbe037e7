import { formatSize } from '../../array/index.js';
import { RemoteLinkError } from '../../link/protocol/index.js';
import type { MirrorImage } from '../state/index.js';
import { imageOf, mirrorSize, phaseOf, remoteReadTimeoutMs, type Entry } from './entry.js';
import type { PrimarySide, SecondaryPeer } from './primary.js';
import { regionCrcs, VERIFY_BATCH_BYTES } from './regions.js';
import { MirrorError, type VerifyReport, type VerifyResult } from './types.js';

/** At most this many regions per read-regions request. */
const VERIFY_REGIONS_MAX = 4096;

/**
 * Compares a secondary image with the primary, region by region (CRC32C of each on both sides),
 * in batches. A region that differs is compared again once the primary is idle (a host write in
 * flight can differ for a moment); regions in the fracture log are skipped. The result is
 * `identical` only when every region was compared and no resync ran before, during or after:
 * otherwise `incomplete` with the reason, or `different` with the regions.
 */
export async function verifyImage(
  e: Entry,
  ps: PrimarySide,
  img: MirrorImage,
  peer: SecondaryPeer,
  event: (type: string, details: Record<string, unknown>) => void,
  opts: { onProgress?: (done: number, total: number) => void },
): Promise<VerifyReport> {
  const size = mirrorSize(e.db);
  const rs = e.db.regionSize;
  const n = Math.ceil(size / rs);
  const per = Math.max(1, Math.min(VERIFY_REGIONS_MAX, Math.floor(VERIFY_BATCH_BYTES / rs)));
  // A resync that runs (or is due) before, during or after the comparison: its copy is not
  // final, so neither is the comparison, even when every region happened to compare equal.
  const syncingNow = (): string | null => {
    const state = imageOf(e, img.imageId)?.state;
    if (state !== 'SYNCHRONIZING' && !phaseOf(e, peer).startsWith('resync')) return null;
    const rv = peer.resyncView();
    return `image ${state === 'SYNCHRONIZING' ? state : `${state ?? 'removed'} with a resync running`}${rv ? `, resync ${formatSize(rv.bytesDone)} of ${formatSize(rv.bytesTotal)} done` : ''}`;
  };
  const syncingBefore = syncingNow();
  const suspects: number[] = [];
  let skipped = 0;
  let skippedBytes = 0;
  const compare = async (first: number, count: number): Promise<number[]> => {
    const [local, remote] = await Promise.all([
      regionCrcs(e.lun.device, size, rs, first, count),
      peer.client!.request('read-regions', { mirrorId: e.id, imageId: img.imageId, regionSize: rs, regions: [[first, count]] }, undefined, { timeoutMs: remoteReadTimeoutMs }),
    ]);
    const theirs = new Map(remote.result.checksums.map((c) => [c.region, c.crc]));
    return local.filter((c) => theirs.get(c.region) !== c.crc).map((c) => c.region);
  };
  try {
    for (let first = 0; first < n; first += per) {
      const count = Math.min(per, n - first);
      for (const r of await compare(first, count)) {
        // regions that are known dirty (fracture log) or written right now are not errors
        if (peer.fracture.bitmap.test(r * rs, Math.min(rs, size - r * rs))) {
          skipped++;
          skippedBytes += Math.min(rs, size - r * rs);
        } else suspects.push(r);
      }
      opts.onProgress?.(Math.min(n, first + count) * rs, n * rs);
    }
    // A host write in flight during the comparison can differ for a moment: compare again.
    const mismatched: number[] = [];
    for (const r of suspects) {
      await ps.idle();
      if ((await compare(r, 1)).length) mismatched.push(r);
    }
    const syncing = syncingNow() ?? syncingBefore;
    const why: string | null = skipped
      ? `${skipped} of ${n} regions skipped (marked in the fracture log: not copied to the image yet${syncing ? `; ${syncing}` : ''})`
      : syncing
        ? `${syncing}: regions are still being copied, the comparison is not final`
        : null;
    const result: VerifyResult = mismatched.length ? 'different' : why ? 'incomplete' : 'identical';
    const report: VerifyReport = {
      mirrorId: e.id,
      imageId: img.imageId,
      regionSize: rs,
      regionsCompared: n - skipped,
      bytesCompared: size - skippedBytes,
      mismatched: mismatched.map((r) => ({ region: r, offset: r * rs, length: Math.min(rs, size - r * rs) })),
      identical: result === 'identical',
      result,
      ...(why ? { incompleteReason: why } : {}),
      skipped,
    };
    event('verified', { mirrorId: e.id, imageId: img.imageId, regions: n, mismatched: mismatched.length, skipped, result, ...(why ? { incompleteReason: why } : {}) });
    return report;
  } catch (err) {
    if (err instanceof RemoteLinkError) throw new MirrorError('unreachable', `verify ${img.imageId}: ${err.code}: ${err.message}`);
    throw err;
  }
}
