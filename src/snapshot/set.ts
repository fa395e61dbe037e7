/**
 * The snapshots of one LUN: which regions each has saved, the copy-on-write before a change,
 * and reads of a snapshot.
 *
 * The rule that makes sharing simple: a change to a region saves its old data once for every
 * live snapshot that has not saved that region yet, and those are always the newest ones (a
 * snapshot that lacks a region has seen no change to it since it was taken, so neither has any
 * newer one). So a saved region serves an interval [first, last] of snapshot sequence numbers,
 * the intervals of one region never overlap, and a region saved for the newest snapshot is saved
 * for all. The native region bitmap `newest` holds exactly that: a change whose regions are all
 * marked passes straight through, with no lock and no copy.
 */
import { BlockError, type BlockDevice, type Extent } from '../block/index.js';
import { RegionBitmap } from '../native/index.js';
import { WriteGate } from './gate.js';
import { SlotStore, type SavedRegion } from './slots.js';
import type { OverflowPolicy, SnapshotRecord } from './types.js';

/** What the set asks of its owner: persist an invalidation before the slots are reused. */
export interface SetHost {
  invalidate(lun: number, seq: number, reason: string): Promise<void>;
}

/** Most slots punched at once when a snapshot is dropped. */
const DISCARD_RUN_SLOTS = 256;
/** Most of the LUN one block status of a snapshot looks up. */
const BLOCK_STATUS_MAX_BYTES = 4 * 1024 * 1024;

export class SnapshotSet {
  readonly gate = new WriteGate();
  /** Valid snapshots, oldest first. */
  private live: SnapshotRecord[] = [];
  private readonly saved = new Map<number, SavedRegion[]>();
  private newest: RegionBitmap | undefined;
  private readonly locks = new Map<number, Promise<void>>();
  /** Host I/O is refused while a rollback rewrites the LUN. */
  rollingBack = false;
  /** The seq a rollback is restoring: an overflow never invalidates it (its saved regions are being read). */
  rollbackTarget: number | undefined;
  /** The saved regions; opened with the first snapshot (a LUN without any has no store files). */
  store!: SlotStore;

  constructor(
    readonly lun: number,
    readonly lunSize: number,
    readonly regionSize: number,
    public policy: OverflowPolicy,
    /** The LUN's data below every host layer (the image behind its disk fault layer). */
    readonly base: BlockDevice,
    private readonly host: SetHost,
  ) {}

  /** Loads the valid snapshots and the store's records; drops records no live snapshot reads. */
  async load(valid: SnapshotRecord[], records: SavedRegion[]): Promise<void> {
    this.live = [...valid].sort((a, b) => a.seq - b.seq);
    for (const r of records) {
      if (r.region >= this.regionCount) continue;
      if (!this.live.some((s) => s.seq >= r.first && s.seq <= r.last)) continue;
      const list = this.saved.get(r.region) ?? [];
      list.push(r);
      this.saved.set(r.region, list);
    }
    for (const list of this.saved.values()) {
      list.sort((a, b) => a.first - b.first);
      for (let i = 1; i < list.length; i++) if (list[i]!.first <= list[i - 1]!.last) throw new Error(`LUN ${this.lun}: snapshot store holds overlapping saved copies of region ${list[i]!.region}`);
    }
    this.store.setUsed(this.slotsInUse());
    this.rebuildNewest();
  }

  get regionCount(): number {
    return Math.ceil(this.lunSize / this.regionSize);
  }

  get active(): boolean {
    return this.live.length > 0;
  }

  snapshots(): readonly SnapshotRecord[] {
    return this.live;
  }

  private *slotsInUse(): Iterable<number> {
    for (const list of this.saved.values()) for (const r of list) yield r.slot;
  }

  /** The saved copy of `region` that snapshot `seq` reads, if any. */
  savedFor(region: number, seq: number): SavedRegion | undefined {
    const list = this.saved.get(region);
    if (!list) return undefined;
    for (const r of list) if (r.first <= seq && seq <= r.last) return r;
    return undefined;
  }

  /** Bytes of saved regions snapshot `seq` reads. */
  usedBytes(seq: number): number {
    let n = 0;
    for (const list of this.saved.values()) for (const r of list) if (r.first <= seq && seq <= r.last) n++;
    return n * this.regionSize;
  }

  private rebuildNewest(): void {
    const top = this.live.at(-1);
    if (!top) {
      this.newest = undefined;
      return;
    }
    const bm = (this.newest ??= RegionBitmap.create(this.lunSize, this.regionSize));
    bm.clearAll();
    for (const [region, list] of this.saved) if (list.some((r) => r.first <= top.seq && top.seq <= r.last)) bm.mark(region * this.regionSize, 1);
  }

  /**
   * The newest snapshot's seq when it has saved every region of [offset, offset+length) (a
   * change there copies nothing until the next cut), else undefined.
   */
  savedInNewest(offset: number, length: number): number | undefined {
    const top = this.live.at(-1);
    if (!top || !this.newest || length <= 0) return undefined;
    const regions = Math.floor((offset + length - 1) / this.regionSize) - Math.floor(offset / this.regionSize) + 1;
    return this.newest.countRegions(offset, length) === regions ? top.seq : undefined;
  }

  // ---- changes ----

  /** Adds a snapshot just cut (the caller holds the gate): it has saved nothing yet. */
  add(rec: SnapshotRecord): void {
    const top = this.live.at(-1);
    if (top && top.seq >= rec.seq) throw new Error(`snapshot seq ${rec.seq} is not newer than ${top.seq}`);
    this.live.push(rec);
    this.newest ??= RegionBitmap.create(this.lunSize, this.regionSize);
    this.newest.clearAll();
  }

  /** Forgets a snapshot (deleted or invalidated; persisted by the caller first) and frees what only it read. */
  async drop(seq: number): Promise<void> {
    this.live = this.live.filter((s) => s.seq !== seq);
    const freed: number[] = [];
    for (const [region, list] of this.saved) {
      const keep = list.filter((r) => this.live.some((s) => s.seq >= r.first && s.seq <= r.last));
      for (const r of list) if (!keep.includes(r)) freed.push(r.slot);
      if (keep.length === 0) this.saved.delete(region);
      else this.saved.set(region, keep);
    }
    // The newest snapshot's map first: writes that run while the slots are punched must see it.
    this.rebuildNewest();
    // Punch runs of adjacent slots (a punch is synchronous and may be slow on a file system that
    // discards), yielding between runs so host I/O goes on; a slot is reusable only once punched.
    freed.sort((a, b) => a - b);
    for (let i = 0; i < freed.length; ) {
      let j = i + 1;
      while (j < freed.length && freed[j] === freed[j - 1]! + 1 && j - i < DISCARD_RUN_SLOTS) j++;
      await this.store.discard(freed[i]!, j - i);
      for (let k = i; k < j; k++) this.store.release(freed[k]!);
      i = j;
      await new Promise((r) => setImmediate(r));
    }
  }

  /**
   * Saves the old data of every region of [offset, offset+length) the newest snapshot lacks,
   * before the caller changes it. Whole regions; one save at a time per region (its lock).
   */
  async beforeChange(offset: number, length: number): Promise<void> {
    const bm = this.newest;
    if (!bm || length === 0) return;
    const rs = this.regionSize;
    const first = Math.floor(offset / rs);
    const last = Math.floor((offset + length - 1) / rs);
    if (bm.countRegions(offset, length) === last - first + 1) return;
    const missing: number[] = [];
    for (let r = first; r <= last; r++) if (!bm.test(r * rs, 1)) missing.push(r);
    const unlock = await this.lockAll(missing);
    try {
      await this.preserve(missing);
    } finally {
      unlock();
    }
  }

  /** Takes the save locks of `regions` (ascending, so two changes never wait on each other in a circle). */
  private async lockAll(regions: number[]): Promise<() => void> {
    const done: Array<() => void> = [];
    for (const region of regions) {
      for (;;) {
        const busy = this.locks.get(region);
        if (!busy) break;
        await busy;
      }
      this.locks.set(region, new Promise<void>((r) => done.push(r)));
    }
    return () => {
      for (const region of regions) this.locks.delete(region);
      for (const d of done) d();
    };
  }

  /**
   * Saves the regions the newest snapshot still lacks, in order: each gets a slot (the overflow
   * policy may invalidate old snapshots or refuse), then all the old data is written with one
   * data sync and all the records with one record sync. A refusal still saves the regions
   * before it (harmless: their old data is the current data) and then fails the change.
   */
  private async preserve(regions: number[]): Promise<void> {
    const plan: SavedRegion[] = [];
    let refused: unknown;
    for (const region of regions) {
      let slot: number | undefined;
      try {
        slot = await this.allocate(region);
      } catch (e) {
        refused = e;
        break;
      }
      if (slot === undefined) continue; // no live snapshot lacks the region (any more)
      const prior = (this.saved.get(region) ?? []).reduce((m, r) => Math.max(m, r.last), -1);
      const lacking = this.live.filter((s) => s.seq > prior);
      if (lacking.length === 0) this.store.release(slot);
      else plan.push({ slot, region, first: lacking[0]!.seq, last: this.live.at(-1)!.seq });
    }
    // A later region's overflow may have invalidated every snapshot an earlier one was for.
    const serves = (r: SavedRegion) => this.live.some((s) => s.seq >= r.first && s.seq <= r.last);
    for (const r of plan) if (!serves(r)) this.store.release(r.slot);
    const keep = plan.filter(serves);
    if (keep.length) await this.saveRegions(keep);
    if (refused) throw refused;
  }

  private async saveRegions(recs: SavedRegion[]): Promise<void> {
    const rs = this.regionSize;
    const olds: Buffer[] = [];
    try {
      // adjacent regions (a resync's 1 MiB chunk: 16 of them) are read as one run
      for (let i = 0; i < recs.length; ) {
        let j = i + 1;
        while (j < recs.length && recs[j]!.region === recs[j - 1]!.region + 1) j++;
        const run = await this.readOld(recs[i]!.region * rs, (j - i) * rs);
        for (let k = 0; k < j - i; k++) olds.push(run.subarray(k * rs, (k + 1) * rs));
        i = j;
      }
      await this.store.saveMany(recs, olds);
    } catch (e) {
      for (const r of recs) this.store.release(r.slot);
      throw new BlockError('EIO', `LUN ${this.lun}: cannot save regions ${recs.map((r) => r.region).join(',')} to the snapshot store: ${(e as Error).message}`);
    }
    for (const r of recs) {
      // Every snapshot it was saved for went away during the save (deleted, or invalidated by
      // another change's overflow): nothing reads it, the slot is free again (its record names
      // only dead seqs, which a load ignores).
      if (!this.live.some((x) => x.seq >= r.first && x.seq <= r.last)) {
        this.store.release(r.slot);
        continue;
      }
      const list = this.saved.get(r.region) ?? [];
      list.push(r);
      list.sort((a, b) => a.first - b.first);
      this.saved.set(r.region, list);
      this.newest?.mark(r.region * rs, 1);
    }
  }

  /**
   * The LUN's data of `length` bytes of whole regions at `offset` (zeroes past its end): one read
   * per data extent, none for holes (a resync over a sparse image saves holes as holes).
   */
  private async readOld(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    const end = Math.min(this.lunSize, offset + length);
    let pos = offset;
    for (const x of await this.base.blockStatus(pos, end - pos)) {
      if (!x.hole && !x.zero) await this.base.read(pos, Math.min(x.length, end - pos), out.subarray(pos - offset));
      pos += x.length;
    }
    // block status may stop short (a bounded walk): the rest is read as data
    if (pos < end) await this.base.read(pos, end - pos, out.subarray(pos - offset));
    return out;
  }

  /** A free slot, making room by the overflow policy; undefined when no snapshot lacks the region any more. */
  private async allocate(region: number): Promise<number | undefined> {
    for (;;) {
      if (!this.live.length || this.newest?.test(region * this.regionSize, 1)) return undefined;
      const slot = this.store.allocate();
      if (slot !== undefined) return slot;
      if (this.policy === 'refuse-writes') {
        throw new BlockError('ENOSPC', `LUN ${this.lun}: the snapshot store is full (${this.store.usedSlots} regions of ${this.regionSize} bytes); the write is refused by the refuse-writes policy`);
      }
      const oldest = this.live.find((s) => s.seq !== this.rollbackTarget)!;
      await this.host.invalidate(this.lun, oldest.seq, `the snapshot store filled up (${this.store.usedSlots} regions of ${this.regionSize} bytes); the oldest snapshot was dropped to keep the LUN writable`);
      await this.drop(oldest.seq);
    }
  }

  // ---- reads of a snapshot ----

  /**
   * Reads snapshot `seq`: saved regions from the store; a run of unsaved regions from the LUN in
   * one read, then checked again: a change to a region is saved (and marked) before it reaches
   * the LUN, so a region still unsaved after the read was not changed during it, and one saved
   * meanwhile is read again from the store, which holds exactly what the snapshot saw.
   */
  async read(seq: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const out = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    const rs = this.regionSize;
    const end = offset + length;
    const piece = (r: SavedRegion, from: number, to: number) => this.store.read(r.slot, from - r.region * rs, to - from, out.subarray(from - offset, to - offset));
    let pos = offset;
    while (pos < end) {
      const region = Math.floor(pos / rs);
      const saved = this.savedFor(region, seq);
      if (saved) {
        const to = Math.min(end, (region + 1) * rs);
        await piece(saved, pos, to);
        pos = to;
        continue;
      }
      let last = region;
      while ((last + 1) * rs < end && !this.savedFor(last + 1, seq)) last++;
      const to = Math.min(end, (last + 1) * rs);
      await this.base.read(pos, to - pos, out.subarray(pos - offset, to - offset));
      for (let r = region; r <= last; r++) {
        const now = this.savedFor(r, seq);
        if (now) await piece(now, Math.max(pos, r * rs), Math.min(to, (r + 1) * rs));
      }
      pos = to;
    }
    return out;
  }

  /**
   * Allocation of snapshot `seq`: the LUN's extents (one lookup: on a two-SP array a round trip
   * to the owner SP), with the saved regions' own (the store's holes; a saved slot's state is
   * known in memory) laid over them. Like every block status it may describe less than asked:
   * as far as the LUN's answer went, and at most BLOCK_STATUS_MAX_BYTES (the LUN's lookup costs
   * in proportion to the extents it finds, and clients use the first few and ask again).
   */
  async blockStatus(seq: number, offset: number, length: number): Promise<Extent[]> {
    const rs = this.regionSize;
    const base = await this.base.blockStatus(offset, Math.min(length, BLOCK_STATUS_MAX_BYTES));
    const covered = Math.min(length, base.reduce((n, e) => n + e.length, 0));
    if (covered <= 0) throw new Error(`LUN ${this.lun}: block status returned no extent at ${offset}`);
    const out: Extent[] = [];
    const push = (e: Extent) => {
      const prev = out.at(-1);
      if (prev && prev.hole === e.hole && prev.zero === e.zero) prev.length += e.length;
      else out.push({ ...e });
    };
    // The LUN's extents from `from` to `to` (both within what it covered), in order.
    let bi = 0;
    let bStart = offset;
    const fromBase = (from: number, to: number) => {
      while (bi < base.length && bStart + base[bi]!.length <= from) bStart += base[bi++]!.length;
      let at = from;
      for (let i = bi, st = bStart; i < base.length && at < to; st += base[i]!.length, i++) {
        const e = base[i]!;
        const len = Math.min(st + e.length, to) - at;
        if (len > 0) push({ length: len, hole: e.hole, zero: e.zero });
        at += Math.max(len, 0);
      }
    };
    const end = offset + covered;
    let pos = offset;
    while (pos < end) {
      const region = Math.floor(pos / rs);
      const to = Math.min(end, (region + 1) * rs);
      const saved = this.savedFor(region, seq);
      if (saved) {
        const hole = await this.store.isHole(saved.slot, pos - region * rs, to - pos);
        push({ length: to - pos, hole, zero: hole });
      } else fromBase(pos, to);
      pos = to;
    }
    return out;
  }

  // ---- rollback ----

  /** Every region snapshot `seq` has saved (what a rollback writes back), in order. */
  savedRegionsOf(seq: number): SavedRegion[] {
    const out: SavedRegion[] = [];
    for (const list of this.saved.values()) for (const r of list) if (r.first <= seq && seq <= r.last) out.push(r);
    return out.sort((a, b) => a.region - b.region);
  }

  /** Writes a saved region back to the LUN (a rollback step; newer snapshots save first). */
  async restoreRegion(r: SavedRegion): Promise<void> {
    const at = r.region * this.regionSize;
    const len = Math.min(this.regionSize, this.lunSize - at);
    await this.beforeChange(at, len);
    if (await this.store.isHole(r.slot, 0, len)) {
      await this.base.writeZeroes(at, len, { noHole: false });
      return;
    }
    const data = await this.store.read(r.slot, 0, len);
    await this.base.write(at, data);
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
