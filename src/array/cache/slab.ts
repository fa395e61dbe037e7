/**
 * Page memory of a write cache: fixed-size page buffers carved from large chunks and recycled
 * through a free list, so that caching a page allocates nothing on the hot path (no per-page
 * ArrayBuffer, no garbage for the collector). A page handed out is owned by its holder until it
 * is given back; giving back a buffer that was not handed out (or twice) throws.
 *
 * The memory is never returned to the system while the slab lives: what it holds is bounded by
 * the most pages ever in use at once, which the cache budget bounds. One slab per page size is
 * shared by every cache of a budget (`slabFor`), so an SP's LUN caches share one pool.
 */
import type { CacheBudget } from './budget.js';

/** Bytes per chunk the pages are carved from (at least one page). */
const CHUNK_BYTES = 1024 * 1024;

export class PageSlab {
  private readonly free: Buffer[] = [];
  private readonly inUse = new Set<Buffer>();
  private readonly pagesPerChunk: number;
  private chunks = 0;

  constructor(readonly pageSize: number) {
    if (!Number.isSafeInteger(pageSize) || pageSize <= 0) throw new Error(`PageSlab: bad page size ${pageSize}`);
    this.pagesPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / pageSize));
  }

  /** Pages handed out and not given back. */
  get pagesInUse(): number {
    return this.inUse.size;
  }
  /** Pages carved and free for reuse. */
  get pagesFree(): number {
    return this.free.length;
  }
  /** Bytes carved so far (in use or free). */
  get bytes(): number {
    return this.chunks * this.pagesPerChunk * this.pageSize;
  }

  /** A page buffer with undefined content (the caller overwrites or zeroes it). */
  take(): Buffer {
    if (this.free.length === 0) this.carve();
    const b = this.free.pop()!;
    this.inUse.add(b);
    return b;
  }

  /** Gives a page back; its holder must keep no reference to it. */
  give(b: Buffer): void {
    if (!this.inUse.delete(b)) throw new Error(`PageSlab: giving back a ${b.length}-byte buffer that is not an in-use page of this slab`);
    this.free.push(b);
  }

  private carve(): void {
    const chunk = Buffer.allocUnsafeSlow(this.pagesPerChunk * this.pageSize);
    for (let i = this.pagesPerChunk - 1; i >= 0; i--) this.free.push(chunk.subarray(i * this.pageSize, (i + 1) * this.pageSize));
    this.chunks++;
  }
}

const slabs = new WeakMap<CacheBudget, Map<number, PageSlab>>();

/** The slab of `pageSize` pages shared by every cache of `budget`. */
export function slabFor(budget: CacheBudget, pageSize: number): PageSlab {
  let bySize = slabs.get(budget);
  if (!bySize) slabs.set(budget, (bySize = new Map()));
  let s = bySize.get(pageSize);
  if (!s) bySize.set(pageSize, (s = new PageSlab(pageSize)));
  return s;
}
