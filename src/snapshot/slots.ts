/**
 * The snapshot store of one LUN: fixed-size slots, each holding the old data of one region of
 * the LUN as it was before its first overwrite, and a record per slot saying which region it
 * holds and which snapshots it serves (an interval of snapshot sequence numbers: one saved copy
 * is shared by every snapshot that lacked the region when it was overwritten).
 *
 *   lun<N>.store   slot i at offset i * regionSize (sparse: an all-zero region is a hole)
 *   lun<N>.slots   slot i's record at offset i * 32: magic, region, first, last, CRC32C
 *
 * Crash safety is by order: the data is durable before its record is written, and the record is
 * durable before the caller lets the host's write reach the LUN. A torn or missing record reads
 * as a free slot, so after a crash a snapshot shows either the saved old data or (no record) the
 * LUN's region, which the host write never reached.
 */
import { promises as fsp } from 'node:fs';
import { FileBackingStore } from '../block/index.js';
import { crc32c } from '../native/index.js';
import { SerialQueue } from '../serial/index.js';

export const SLOT_RECORD_BYTES = 32;
const SLOT_MAGIC = 0x31504e53; // 'SNP1' little-endian

/** One saved region: slot `slot` holds region `region` for the snapshots with seq in [first, last]. */
export interface SavedRegion {
  slot: number;
  region: number;
  first: number;
  last: number;
}

export function encodeSlotRecord(c: SavedRegion): Buffer {
  const b = Buffer.alloc(SLOT_RECORD_BYTES);
  b.writeUInt32LE(SLOT_MAGIC, 0);
  b.writeUInt32LE(c.region, 4);
  b.writeDoubleLE(c.first, 8);
  b.writeDoubleLE(c.last, 16);
  b.writeUInt32LE(crc32c(b.subarray(0, 28)), 28);
  return b;
}

/** A slot's record, or undefined for a free, torn or never written one. */
export function decodeSlotRecord(b: Buffer, slot: number): SavedRegion | undefined {
  if (b.length < SLOT_RECORD_BYTES || b.readUInt32LE(0) !== SLOT_MAGIC) return undefined;
  if (crc32c(b.subarray(0, 28)) !== b.readUInt32LE(28)) return undefined;
  const first = b.readDoubleLE(8);
  const last = b.readDoubleLE(16);
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first < 0 || last < first) return undefined;
  return { slot, region: b.readUInt32LE(4), first, last };
}

export class SlotStore {
  private readonly free: number[] = [];
  /**
   * Whether a used slot is wholly a hole (its region was all zeroes: punched) or wholly data:
   * known from the save, or from one look at the file; a saved slot does not change until freed.
   */
  private readonly holeSlots = new Map<number, boolean>();
  private readonly growing = new SerialQueue();
  private slotCount = 0;

  private constructor(
    readonly dataPath: string,
    readonly recordPath: string,
    private readonly data: FileBackingStore,
    private readonly records: FileBackingStore,
    readonly regionSize: number,
    /** Most slots the store may hold (its configured size over the region size). */
    public maxSlots: number,
  ) {}

  /** Opens (creating) the store files; returns the store and every valid record found. */
  static async open(base: string, regionSize: number, maxSlots: number): Promise<{ store: SlotStore; saved: SavedRegion[] }> {
    const dataPath = `${base}.store`;
    const recordPath = `${base}.slots`;
    for (const p of [dataPath, recordPath]) {
      const h = await fsp.open(p, 'a');
      await h.close();
    }
    // A zero-length file cannot be opened as a block device; keep a minimum length.
    for (const [p, min] of [
      [dataPath, regionSize],
      [recordPath, 4096],
    ] as const) {
      const st = await fsp.stat(p);
      if (st.size < min) await fsp.truncate(p, min);
    }
    const data = await FileBackingStore.open(dataPath, { blockSize: 512 });
    const records = await FileBackingStore.open(recordPath, { blockSize: 512 });
    const store = new SlotStore(dataPath, recordPath, data, records, regionSize, maxSlots);
    const all = await records.read(0, records.size - (records.size % SLOT_RECORD_BYTES));
    const saved: SavedRegion[] = [];
    for (let i = 0; i * SLOT_RECORD_BYTES < all.length; i++) {
      const r = decodeSlotRecord(all.subarray(i * SLOT_RECORD_BYTES, (i + 1) * SLOT_RECORD_BYTES), i);
      if (r) saved.push(r);
    }
    store.slotCount = Math.floor(all.length / SLOT_RECORD_BYTES);
    return { store, saved };
  }

  /** Rebuilds the free list: every slot not in `used` (below the highest slot ever written). */
  setUsed(used: Iterable<number>): void {
    const inUse = new Set(used);
    this.free.length = 0;
    let top = 0;
    for (const s of inUse) top = Math.max(top, s + 1);
    for (let s = top - 1; s >= 0; s--) if (!inUse.has(s)) this.free.push(s);
    this.slotCount = top;
  }

  get usedSlots(): number {
    return this.slotCount - this.free.length;
  }

  /** A slot for a new saved region, or undefined when the store is full. */
  allocate(): number | undefined {
    const s = this.free.pop();
    if (s !== undefined) return s;
    if (this.slotCount >= this.maxSlots) return undefined;
    return this.slotCount++;
  }

  release(slot: number): void {
    this.holeSlots.delete(slot);
    if (slot === this.slotCount - 1) this.slotCount--;
    else this.free.push(slot);
  }

  /**
   * Saves the old data of several regions (`olds[i]` in `recs[i].slot`) and makes it durable,
   * then their records. Returns once all are on disk; the caller then lets the host write go
   * on. One data sync and one record sync for the lot (shared with concurrent savers).
   */
  async saveMany(recs: SavedRegion[], olds: Buffer[]): Promise<void> {
    for (const [i, c] of recs.entries()) {
      const at = c.slot * this.regionSize;
      await this.ensureLength(this.data, at + this.regionSize);
      const zero = isZero(olds[i]!);
      if (zero) await this.data.writeZeroes(at, this.regionSize);
      else await this.data.write(at, olds[i]!);
      this.holeSlots.set(c.slot, zero);
    }
    await this.data.flush();
    for (const c of recs) {
      const rat = c.slot * SLOT_RECORD_BYTES;
      await this.ensureLength(this.records, rat + SLOT_RECORD_BYTES);
      await this.records.write(rat, encodeSlotRecord(c));
    }
    await this.records.flush();
  }

  /** Reads `length` bytes at `offset` inside slot `slot`. */
  read(slot: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (offset < 0 || offset + length > this.regionSize) throw new RangeError(`slot read ${offset}+${length} outside a ${this.regionSize}-byte region`);
    return this.data.read(slot * this.regionSize + offset, length, into);
  }

  /** Whether the saved data of a slot's range is a hole (reads as zeroes, no storage). */
  async isHole(slot: number, offset: number, length: number): Promise<boolean> {
    const known = this.holeSlots.get(slot);
    if (known !== undefined) return known;
    const whole = await this.holeState(slot, 0, this.regionSize);
    if (whole !== 'mixed') {
      this.holeSlots.set(slot, whole === 'hole');
      return whole === 'hole';
    }
    return (await this.holeState(slot, offset, length)) === 'hole';
  }

  private async holeState(slot: number, offset: number, length: number): Promise<'hole' | 'data' | 'mixed'> {
    const ext = await this.data.blockStatus(slot * this.regionSize + offset, length);
    const covered = ext.reduce((n, e) => n + e.length, 0) >= length;
    if (covered && ext.every((e) => e.hole)) return 'hole';
    if (covered && ext.every((e) => !e.hole)) return 'data';
    return 'mixed';
  }

  /** Punches the data of `count` freed slots from `slot` on (space back to the file system). */
  async discard(slot: number, count = 1): Promise<void> {
    const at = slot * this.regionSize;
    const end = Math.min(this.data.size, (slot + count) * this.regionSize);
    if (end > at) await this.data.trim(at, end - at);
  }

  private ensureLength(dev: FileBackingStore, end: number): Promise<void> {
    if (dev.size >= end) return Promise.resolve();
    // One grow at a time (a second caller finds the file long enough), in large steps so a
    // burst of first overwrites does not grow the file per slot.
    return this.growing.run(async () => {
      if (dev.size >= end) return;
      await dev.grow(Math.ceil(Math.max(end, dev.size * 2) / 4096) * 4096);
    });
  }

  async close(): Promise<void> {
    await this.data.close();
    await this.records.close();
  }

  static async remove(base: string): Promise<void> {
    await fsp.rm(`${base}.store`, { force: true });
    await fsp.rm(`${base}.slots`, { force: true });
  }
}

let zeroes = Buffer.alloc(0);
function isZero(b: Buffer): boolean {
  if (zeroes.length < b.length) zeroes = Buffer.alloc(b.length);
  return b.equals(zeroes.subarray(0, b.length));
}
