import type { Extent } from '../../block/device.js';
import type { CacheCore, Page } from './core.js';

/**
 * Reads a range: the dirty pages overlaid on the lower device's data (the lower device is not
 * read when the cache covers the whole range).
 */
export async function readCached(c: CacheCore, offset: number, length: number, into?: Buffer): Promise<Buffer> {
  if (length === 0) return into ? into.subarray(0, 0) : Buffer.alloc(0);
  // Snapshot the cached bytes now: a page may be destaged and dropped while the read below
  // is in flight, and the read below may have started before the destage landed.
  const overlay: { at: number; bytes: Buffer }[] = [];
  let covered = 0;
  if (c.dirty.size > 0) {
    const ps = c.pageSize;
    const end = offset + length;
    const { p0, p1 } = c.pageSpan(offset, length);
    const visit = (page: Page): void => {
      const ps0 = page.index * ps;
      const a = Math.max(offset, ps0);
      const b = Math.min(end, ps0 + ps);
      overlay.push({ at: a - offset, bytes: Buffer.from(page.data.subarray(a - ps0, b - ps0)) });
      covered += b - a;
    };
    if (p1 - p0 + 1 <= c.dirty.size) {
      for (let i = p0; i <= p1; i++) {
        const page = c.dirty.get(i);
        if (page) visit(page);
      }
    } else {
      for (const page of c.dirty.values()) if (page.index >= p0 && page.index <= p1) visit(page);
    }
  }
  let buf: Buffer;
  if (covered === length) buf = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
  else buf = await c.lower.read(offset, length, into);
  for (const o of overlay) o.bytes.copy(buf, o.at);
  return buf;
}

/** The lower device's block status with every cached byte reported as data. */
export async function blockStatusCached(c: CacheCore, offset: number, length: number): Promise<Extent[]> {
  const ps = c.pageSize;
  const end = offset + length;
  const runs: [number, number][] = [];
  if (length > 0) {
    for (const i of dirtyPagesIn(c, offset, end)) {
      const a = Math.max(offset, i * ps);
      const b = Math.min(end, (i + 1) * ps);
      const last = runs[runs.length - 1];
      if (last && last[1] === a) last[1] = b;
      else runs.push([a, b]);
    }
  }
  const ext = await c.lower.blockStatus(offset, length);
  if (runs.length === 0) return ext;
  return overlayData(offset, ext, runs);
}

/**
 * The dirty pages overlapping [offset, end), ascending: looked up page by page when the range
 * holds fewer pages than the cache holds dirty ones, else picked from the dirty pages.
 */
function dirtyPagesIn(c: CacheCore, offset: number, end: number): number[] {
  const ps = c.pageSize;
  const first = Math.floor(offset / ps);
  const last = Math.ceil(end / ps) - 1;
  if (last - first + 1 <= c.dirty.size) {
    const out: number[] = [];
    for (let i = first; i <= last; i++) if (c.dirty.has(i)) out.push(i);
    return out;
  }
  return [...c.dirty.keys()].filter((i) => i >= first && i <= last).sort((a, b) => a - b);
}

/** Marks `runs` (sorted, disjoint [start, end) byte ranges) as data in the extents from `offset`. */
export function overlayData(offset: number, ext: Extent[], runs: [number, number][]): Extent[] {
  const out: Extent[] = [];
  const push = (length: number, hole: boolean, zero: boolean): void => {
    if (length <= 0) return;
    const last = out[out.length - 1];
    if (last && last.hole === hole && last.zero === zero) last.length += length;
    else out.push({ length, hole, zero });
  };
  let pos = offset;
  let r = 0;
  for (const e of ext) {
    const eEnd = pos + e.length;
    let p = pos;
    while (p < eEnd) {
      while (r < runs.length && runs[r]![1] <= p) r++;
      const run = runs[r];
      if (!run || run[0] >= eEnd) {
        push(eEnd - p, e.hole, e.zero);
        p = eEnd;
      } else if (run[0] > p) {
        push(run[0] - p, e.hole, e.zero);
        p = run[0];
      } else {
        const to = Math.min(run[1], eEnd);
        push(to - p, false, false);
        p = to;
      }
    }
    pos = eEnd;
  }
  return out;
}
