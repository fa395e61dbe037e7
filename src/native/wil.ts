/**
 * Write-intent log (WIL): the counting form of a region bitmap.
 *
 * A region is in the WIL while a write to it may be incomplete on some image. The replication
 * layer calls, for every host write to a mirrored LUN:
 *
 *     wil.begin(offset, length)      // before issuing the local and the remote writes
 *     ...local write ∥ remote write(s)...
 *     wil.end(offset, length)        // once every image has the data, or the images that failed
 *                                    // have the range in their fracture log
 *
 * Writes in flight are counted per region, so concurrent writes to one region never clear each
 * other's mark: a region's bit stays set while its count is above zero. `end` only makes the
 * region a candidate; the bit is cleared lazily by `flushAged()`, which the owner calls on a
 * timer, and only once the region has seen no write end for a whole period (md's bitmap daemon
 * does the same, two passes per clear): a region that is written again soon never pays for a
 * clear/set cycle and for the metadata write (and fdatasync) in between. Clearing every candidate
 * on each tick instead made a host that rewrites its working set more often than the period
 * re-mark, and persist the log for, every region of it after each tick (bench:latency at 0 ms
 * QD16: 1024 of 29,276 writes waited 3.1 ms each for the log; QD1: 977 of 3,630, 1.2 ms each).
 * `flushClears()` clears every candidate at once (a clean close).
 * `end(offset, length, false)` finishes the writes without making the regions candidates, for an
 * image that does not have the data yet and no fracture log to take over.
 *
 * What survives a crash is `bitmap` (persist it with saveBitmapFile before acknowledging the
 * first write to a newly marked region, or keep it in mirrored memory/vault as the SP does);
 * after a crash every marked region is resynchronized. Clearing late is always safe; clearing
 * early never happens (invariant asserted: a region with writes in flight is never cleared).
 *
 * In-flight counts are kept in a Map of only the regions currently in flight (bounded by the
 * queue depth), never an array over the LUN. A region that already has a write in flight needs
 * no call into the addon, so begin/end are cheap with either bitmap implementation.
 */
import type { RegionBitmap } from './bitmap.js';

export class WriteIntentLog {
  private readonly inflight = new Map<number, number>();
  /** regions whose writes ended since the last flushAged */
  private candidates = new Set<number>();
  /** regions whose writes ended before the last flushAged and not since: cleared by the next one */
  private aging = new Set<number>();
  private readonly rs: number;

  constructor(readonly bitmap: RegionBitmap) {
    this.rs = bitmap.regionSize;
  }

  private regions(offset: number, length: number): [number, number] {
    const bm = this.bitmap;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > bm.lunSize)
      throw new RangeError(`range ${offset}+${length} outside LUN of ${bm.lunSize} bytes`);
    if (length === 0) return [0, 0];
    return [Math.floor(offset / this.rs), Math.floor((offset + length - 1) / this.rs) + 1];
  }

  /** A write to the range is starting: mark its regions (rounded outward) and count it. */
  begin(offset: number, length: number): void {
    const [a, b] = this.regions(offset, length);
    let fresh = false;
    for (let r = a; r < b; r++) {
      const c = this.inflight.get(r);
      if (c === undefined) {
        this.inflight.set(r, 1);
        fresh = true;
      } else this.inflight.set(r, c + 1);
    }
    if (fresh) this.bitmap.mark(offset, length);
  }

  /**
   * A write that `begin` counted has finished. With `allImagesHaveIt` (the default) its regions
   * become candidates for clearing (flushAged, flushClears); otherwise they stay marked until an explicit
   * `clearIdle` (e.g. after a resync). Throws if the range has no write in flight.
   */
  end(offset: number, length: number, allImagesHaveIt = true): void {
    const [a, b] = this.regions(offset, length);
    for (let r = a; r < b; r++) {
      if (!this.inflight.has(r)) throw new Error(`WIL: end() for region ${r} with no write in flight`);
    }
    for (let r = a; r < b; r++) {
      const c = this.inflight.get(r)!;
      if (c === 1) this.inflight.delete(r);
      else this.inflight.set(r, c - 1);
      this.aging.delete(r); // written again: a whole period more before it is cleared
      if (allImagesHaveIt) this.candidates.add(r);
      else this.candidates.delete(r);
    }
  }

  /** Clears (in one batched call) every candidate region with no write in flight, however recent; returns how many. */
  flushClears(): number {
    const n = this.clearSet(this.aging) + this.clearSet(this.candidates);
    this.aging.clear();
    this.candidates.clear();
    return n;
  }

  /**
   * The periodic lazy clear: clears the regions that were candidates at the previous call and
   * saw no write end since (no write in flight either); today's candidates wait for the next
   * call. So a region is cleared one to two periods after its last write, never while it is
   * rewritten more often than that. Returns how many regions it cleared.
   */
  flushAged(): number {
    const n = this.clearSet(this.aging);
    this.aging = this.candidates;
    this.candidates = new Set();
    return n;
  }

  private clearSet(set: Set<number>): number {
    if (set.size === 0) return 0;
    const ranges: number[] = [];
    const lun = this.bitmap.lunSize;
    for (const r of set) {
      if (this.inflight.has(r)) continue;
      const o = r * this.rs;
      ranges.push(o, Math.min(this.rs, lun - o));
    }
    if (ranges.length) this.bitmap.clearMany(ranges);
    return ranges.length / 2;
  }

  /** Clears the regions the range covers fully that have no write in flight (after a resync). */
  clearIdle(offset: number, length: number): void {
    const [a0, b0] = this.regions(offset, length);
    const ranges: number[] = [];
    for (let r = a0; r < b0; r++) {
      const o = r * this.rs;
      const e = Math.min(o + this.rs, this.bitmap.lunSize);
      if (o < offset || e > offset + length || this.inflight.has(r)) continue;
      ranges.push(o, e - o);
      this.candidates.delete(r);
      this.aging.delete(r);
    }
    if (ranges.length) this.bitmap.clearMany(ranges);
  }

  /** Without arguments: the sum of in-flight counts over all regions. With a range: the largest in-flight count among the regions it touches. */
  inFlight(offset?: number, length?: number): number {
    if (offset === undefined) {
      let n = 0;
      for (const c of this.inflight.values()) n += c;
      return n;
    }
    const [a, b] = this.regions(offset, length ?? 0);
    let n = 0;
    for (let r = a; r < b; r++) n = Math.max(n, this.inflight.get(r) ?? 0);
    return n;
  }

  /** Regions with writes in flight. */
  get busyRegions(): number {
    return this.inflight.size;
  }
  /** Regions waiting to be cleared (by flushClears; flushAged clears the older part of them). */
  get pendingClears(): number {
    return this.candidates.size + this.aging.size;
  }
}
