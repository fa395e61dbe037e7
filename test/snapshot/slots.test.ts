// The snapshot store's slot records and files (src/snapshot/slots.ts): a record round-trips, a
// torn, zeroed or damaged record reads as a free slot, and reopening the files gives back every
// saved record and its data.
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { openSync, closeSync, writeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { fileOps } from '../../src/native/index.js';
import { SlotStore, encodeSlotRecord, decodeSlotRecord, SLOT_RECORD_BYTES, type SavedRegion } from '../../src/snapshot/index.js';
import { fcSeed } from '../support/random.js';
import { tempRoot } from './helpers.js';

const root = tempRoot('sanbox-snap-slots-');
afterAll(() => root.cleanup());
let dirNo = 0;
const freshBase = () => {
  const d = join(root.path, `d${dirNo++}`);
  mkdirSync(d);
  return join(d, 'lun0');
};

const recordArb: fc.Arbitrary<SavedRegion> = fc
  .tuple(fc.nat(1 << 20), fc.nat(0xffff_ffff), fc.nat(Number.MAX_SAFE_INTEGER), fc.nat(1 << 20))
  .map(([slot, region, first, span]) => ({ slot, region, first, last: Math.min(Number.MAX_SAFE_INTEGER, first + span) }));

const RS = 8192;
function regionData(tag: number): Buffer {
  const b = Buffer.alloc(RS);
  for (let i = 0; i < RS; i++) b[i] = (tag * 29 + i * 7 + 3) & 0xff;
  return b;
}

describe('slot records', () => {
  it('encode then decode gives the record back, in 32 bytes', () => {
    fc.assert(
      fc.property(recordArb, (r) => {
        const b = encodeSlotRecord(r);
        expect(b.length).toBe(SLOT_RECORD_BYTES);
        expect(decodeSlotRecord(b, r.slot)).toEqual(r);
      }),
      { numRuns: 500, ...fcSeed(0x5eed_5b01) },
    );
  });

  it('a record with any byte changed decodes as undefined (magic or CRC)', () => {
    fc.assert(
      fc.property(recordArb, fc.nat(SLOT_RECORD_BYTES - 1), fc.integer({ min: 1, max: 255 }), (r, at, x) => {
        const b = encodeSlotRecord(r);
        b[at]! ^= x;
        expect(decodeSlotRecord(b, r.slot)).toBeUndefined();
      }),
      { numRuns: 500, ...fcSeed(0x5eed_5b02) },
    );
  });

  it('a zeroed, short or torn record is a free slot', () => {
    const r = { slot: 3, region: 17, first: 4, last: 9 };
    const good = encodeSlotRecord(r);
    expect(decodeSlotRecord(Buffer.alloc(SLOT_RECORD_BYTES), 3)).toBeUndefined();
    expect(decodeSlotRecord(good.subarray(0, SLOT_RECORD_BYTES - 1), 3)).toBeUndefined();
    // Torn: the first sector-ish half new, the rest of an older record (or zeroes).
    for (let cut = 1; cut < SLOT_RECORD_BYTES; cut++) {
      const older = encodeSlotRecord({ slot: 3, region: 5, first: 1, last: 2 });
      const torn = Buffer.concat([good.subarray(0, cut), older.subarray(cut)]);
      const got = decodeSlotRecord(torn, 3);
      // Only a cut where both records agree on every byte after it could decode, and then it is one of them.
      if (got) expect([r, { slot: 3, region: 5, first: 1, last: 2 }]).toContainEqual(got);
      const zeroTail = Buffer.concat([good.subarray(0, cut), Buffer.alloc(SLOT_RECORD_BYTES - cut)]);
      expect(decodeSlotRecord(zeroTail, 3), `cut at ${cut}`).toBeUndefined();
    }
  });

  it('a record with a valid CRC but an impossible interval is refused', () => {
    for (const [first, last] of [
      [5, 4],
      [-1, 3],
      [1.5, 3],
      [1, Number.MAX_SAFE_INTEGER + 2],
      [Number.NaN, 3],
    ] as const) {
      expect(decodeSlotRecord(encodeSlotRecord({ slot: 0, region: 1, first, last }), 0), `[${first}, ${last}]`).toBeUndefined();
    }
  });
});

describe('SlotStore', () => {
  it('open on existing files returns the saved records, and reads back their data', async () => {
    const base = freshBase();
    {
      const { store, saved } = await SlotStore.open(base, RS, 64);
      expect(saved).toEqual([]);
      store.setUsed([]);
      for (let i = 0; i < 5; i++) {
        const slot = store.allocate()!;
        expect(slot).toBe(i);
        await store.saveMany([{ slot, region: 10 + i, first: 1 + i, last: 7 }], [i === 2 ? Buffer.alloc(RS) : regionData(i)]);
      }
      expect(store.usedSlots).toBe(5);
      await store.close();
    }
    const { store, saved } = await SlotStore.open(base, RS, 64);
    expect(saved).toEqual([0, 1, 2, 3, 4].map((i) => ({ slot: i, region: 10 + i, first: 1 + i, last: 7 })));
    for (let i = 0; i < 5; i++) {
      const want = i === 2 ? Buffer.alloc(RS) : regionData(i);
      expect((await store.read(i, 0, RS)).equals(want), `slot ${i}`).toBe(true);
      expect((await store.read(i, 100, 1000)).equals(want.subarray(100, 1100)), `slot ${i} part`).toBe(true);
      // An all-zero region is saved as a hole (where the addon can punch one).
      expect(await store.isHole(i, 0, RS)).toBe(i === 2 && fileOps !== null);
    }
    expect(() => store.read(0, RS - 10, 11)).toThrow(RangeError);
    await store.close();
  });

  it('open skips torn and zeroed records between good ones', async () => {
    const base = freshBase();
    {
      const { store } = await SlotStore.open(base, RS, 64);
      store.setUsed([]);
      for (let i = 0; i < 4; i++) await store.saveMany([{ slot: store.allocate()!, region: i, first: 1, last: 1 }], [regionData(i)]);
      await store.close();
    }
    // Slot 1: a torn record (its CRC half gone); slot 2: zeroed.
    const fd = openSync(`${base}.slots`, 'r+');
    writeSync(fd, Buffer.alloc(16), 0, 16, 1 * SLOT_RECORD_BYTES + 16);
    writeSync(fd, Buffer.alloc(SLOT_RECORD_BYTES), 0, SLOT_RECORD_BYTES, 2 * SLOT_RECORD_BYTES);
    closeSync(fd);
    const { store, saved } = await SlotStore.open(base, RS, 64);
    expect(saved).toEqual([
      { slot: 0, region: 0, first: 1, last: 1 },
      { slot: 3, region: 3, first: 1, last: 1 },
    ]);
    // The slots of unreadable records are free again (below the highest used slot).
    store.setUsed(saved.map((s) => s.slot));
    expect(store.usedSlots).toBe(2);
    expect([store.allocate(), store.allocate(), store.allocate()].sort()).toEqual([1, 2, 4]);
    await store.close();
  });

  it('allocate stops at maxSlots; released slots are reused; the files grow as slots are saved', async () => {
    const base = freshBase();
    const { store } = await SlotStore.open(base, RS, 3);
    store.setUsed([]);
    const a = [store.allocate(), store.allocate(), store.allocate()];
    expect(a).toEqual([0, 1, 2]);
    expect(store.allocate()).toBeUndefined();
    expect(store.usedSlots).toBe(3);
    store.release(1);
    expect(store.usedSlots).toBe(2);
    expect(store.allocate()).toBe(1);
    store.release(2);
    store.release(1);
    store.release(0);
    expect(store.usedSlots).toBe(0);
    expect([store.allocate(), store.allocate(), store.allocate()].sort()).toEqual([0, 1, 2]);
    expect(store.allocate()).toBeUndefined();
    await store.saveMany([{ slot: 2, region: 9, first: 1, last: 1 }], [regionData(9)]);
    expect(statSync(`${base}.store`).size).toBeGreaterThanOrEqual(3 * RS);
    expect(statSync(`${base}.slots`).size).toBeGreaterThanOrEqual(3 * SLOT_RECORD_BYTES);
    await store.close();
    await SlotStore.remove(base);
    expect(() => statSync(`${base}.store`)).toThrow();
  });
});
