/**
 * One clone while it copies: its source (a snapshot, read-only and unchanging), its copied map
 * and region locks, and the three rules every path over the clone LUN follows (the CloneLayer
 * of each of its stacks, and the background copy):
 *
 * - a read of a region not yet copied reads the source; of a copied one, the clone's image;
 * - a change (write, trim, zero) of regions not yet copied copies the regions it covers only in
 *   part from the source first (copy-before-write), makes the change, sets the regions' bits,
 *   and is acknowledged only once the bits are on disk (CopiedMap.commit);
 * - the background copy copies a region not yet copied whole and sets its bit.
 */
import { assertRange, BlockError, type BlockDevice, type Extent, type WriteOptions, type ZeroOptions } from '../block/index.js';
import type { CopiedMap } from './copied-map.js';
import { RegionLocks } from './region-locks.js';

/** A run of adjacent regions that are all copied, or all not. */
interface Run {
  offset: number;
  length: number;
  copied: boolean;
}

export class CloneCopy {
  readonly locks = new RegionLocks();
  /** Why I/O on the clone is refused (its copied map was lost), or undefined. */
  broken: string | undefined;

  constructor(
    readonly name: string,
    /** The snapshot the clone copies from; undefined once it is gone (reads of uncopied regions fail). */
    readonly source: BlockDevice | undefined,
    /** The clone LUN's image (behind its disk fault layer): where the background copy writes. */
    readonly target: BlockDevice,
    readonly map: CopiedMap,
    readonly size: number,
  ) {}

  get regionSize(): number {
    return this.map.regionSize;
  }

  private regions(offset: number, length: number): [number, number] {
    const rs = this.regionSize;
    return [Math.floor(offset / rs), Math.floor((offset + length - 1) / rs)];
  }

  private usable(): void {
    if (this.broken) throw new BlockError('EIO', `clone ${this.name}: ${this.broken}`);
  }

  private from(): BlockDevice {
    if (!this.source) throw new BlockError('EIO', `clone ${this.name}: its source snapshot is gone; regions not yet copied cannot be read`);
    return this.source;
  }

  /** [offset, offset+length) as runs of copied and not copied regions. */
  private runs(offset: number, length: number): Run[] {
    const out: Run[] = [];
    const rs = this.regionSize;
    const end = offset + length;
    let pos = offset;
    while (pos < end) {
      const region = Math.floor(pos / rs);
      const copied = this.map.isCopied(region);
      const to = Math.min(end, (region + 1) * rs);
      const prev = out.at(-1);
      if (prev && prev.copied === copied) prev.length += to - pos;
      else out.push({ offset: pos, length: to - pos, copied });
      pos = to;
    }
    return out;
  }

  async read(lower: BlockDevice, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.usable();
    assertRange(this, offset, length);
    const [first, last] = this.regions(offset, Math.max(1, length));
    if (length === 0 || this.map.allCopied(first, last)) return lower.read(offset, length, into);
    const out = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    for (const run of this.runs(offset, length)) {
      const slice = out.subarray(run.offset - offset, run.offset - offset + run.length);
      const got = await (run.copied ? lower : this.from()).read(run.offset, run.length, slice);
      if (got.buffer !== slice.buffer || got.byteOffset !== slice.byteOffset) got.copy(slice);
    }
    return out;
  }

  async blockStatus(lower: BlockDevice, offset: number, length: number): Promise<Extent[]> {
    this.usable();
    assertRange(this, offset, length);
    const [first, last] = this.regions(offset, Math.max(1, length));
    if (length === 0 || this.map.allCopied(first, last)) return lower.blockStatus(offset, length);
    const out: Extent[] = [];
    for (const run of this.runs(offset, length)) {
      const dev = run.copied ? lower : this.from();
      let at = run.offset;
      const end = run.offset + run.length;
      while (at < end) {
        const ext = await dev.blockStatus(at, end - at);
        if (ext.length === 0) throw new BlockError('EIO', `clone ${this.name}: block status returned no extent at ${at}`);
        for (const e of ext) {
          const len = Math.min(e.length, end - at);
          const prev = out.at(-1);
          if (prev && prev.hole === e.hole && prev.zero === e.zero) prev.length += len;
          else out.push({ length: len, hole: e.hole, zero: e.zero });
          at += len;
          if (at >= end) break;
        }
      }
    }
    return out;
  }

  write(lower: BlockDevice, offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    return this.change(lower, offset, data.length, () => lower.write(offset, data, opts));
  }
  trim(lower: BlockDevice, offset: number, length: number, opts?: WriteOptions): Promise<void> {
    return this.change(lower, offset, length, () => lower.trim(offset, length, opts));
  }
  writeZeroes(lower: BlockDevice, offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    return this.change(lower, offset, length, () => lower.writeZeroes(offset, length, opts), opts?.fastZero === true);
  }

  /** A change: copy-before-write of the partly covered regions not yet copied, the change, the bits, then the commit. */
  private async change(lower: BlockDevice, offset: number, length: number, op: () => Promise<void>, fastZero = false): Promise<void> {
    this.usable();
    assertRange(this, offset, length);
    if (length === 0) return op();
    const [first, last] = this.regions(offset, length);
    if (!this.map.allCopied(first, last)) {
      const missing: number[] = [];
      for (let r = first; r <= last; r++) if (!this.map.isCopied(r)) missing.push(r);
      const partial = missing.filter((r) => !this.covers(offset, length, r));
      if (fastZero && partial.length > 0) {
        throw new BlockError('ENOTSUP', `clone ${this.name}: zeroing part of a region not yet copied needs a copy of it first (not a fast zero)`);
      }
      const release = await this.locks.lock(missing);
      try {
        for (const r of partial) if (!this.map.isCopied(r)) await this.copyRegion(r, lower);
        await op();
        for (const r of missing) this.map.mark(r);
      } finally {
        release();
      }
    } else {
      await op();
    }
    if (this.map.unsavedIn(first, last)) await this.commit();
  }

  /** Puts every bit set so far on disk; a failure is the I/O error of whoever waits for it. */
  async commit(): Promise<void> {
    try {
      await this.map.commit();
    } catch (e) {
      throw new BlockError('EIO', `clone ${this.name}: cannot save the copied map ${this.map.path}: ${(e as Error).message}`);
    }
  }

  /** Whether the change [offset, offset+length) covers all of `region`. */
  private covers(offset: number, length: number, region: number): boolean {
    const start = region * this.regionSize;
    const end = Math.min(this.size, start + this.regionSize);
    return offset <= start && offset + length >= end;
  }

  /**
   * Copies `region` whole from the source into `dst` (without setting its bit). A region the
   * source has as zeroes is zeroed (punched), never skipped: the clone's image may hold an
   * unacknowledged write from before a crash there. Returns the bytes copied.
   */
  async copyRegion(region: number, dst: BlockDevice): Promise<number> {
    const src = this.from();
    const at = region * this.regionSize;
    const len = Math.min(this.regionSize, this.size - at);
    const ext = await src.blockStatus(at, len);
    const zero = ext.reduce((n, e) => n + e.length, 0) >= len && ext.every((e) => e.zero);
    if (zero) {
      await dst.writeZeroes(at, len);
      return len;
    }
    const data = await src.read(at, len);
    if (isZero(data)) await dst.writeZeroes(at, len);
    else await dst.write(at, data);
    return len;
  }

  /** The background copy's step: copies `region` into the clone's image unless something did first. */
  async copyNext(region: number): Promise<number> {
    this.usable();
    if (this.map.isCopied(region)) return 0;
    const release = await this.locks.lock([region]);
    try {
      if (this.map.isCopied(region)) return 0;
      const n = await this.copyRegion(region, this.target);
      this.map.mark(region);
      return n;
    } finally {
      release();
    }
  }
}

let zeroes = Buffer.alloc(0);
function isZero(b: Buffer): boolean {
  if (zeroes.length < b.length) zeroes = Buffer.alloc(b.length);
  return b.equals(zeroes.subarray(0, b.length));
}
