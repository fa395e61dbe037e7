// Lose-unflushed: the disk fault layer as a disk with a volatile write cache, over a real image
// file. What is not FUA is readable at once but reaches the image only at a flush; a FUA write goes
// down at once and wins over older held data; dropping the layer (a crash) loses exactly what was
// neither flushed nor FUA; the overlay stays under its limit by writing its oldest content down;
// turning the mode off or clearing writes everything down first. Plus a seeded random run
// against a model of what reads return and of what a crash leaves.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBackingStore } from '../../../src/block/index.js';
import { DiskFaultLayer, DiskFaultState, DiskFaultTable, validateDiskFault, type DiskFaultInput, type DiskFaultSpec } from '../../../src/fault/index.js';
import { mulberry32, reportSeedOnFailure, testSeed } from '../../support/random.js';

const KiB = 1024;
const SIZE = 1024 * KiB;
let dir: string;
let store: FileBackingStore;
let state: DiskFaultState;
let dev: DiskFaultLayer;

function spec(input: DiskFaultInput): DiskFaultSpec {
  const v = validateDiskFault(input, SIZE);
  if (!v.spec) throw new Error(v.problems.join('; '));
  return v.spec;
}

const fill = (n: number, b: number) => Buffer.alloc(n, b);
/** What the image holds, below the layer (what survives a crash of the process). */
const below = (offset: number, length: number) => store.read(offset, length);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-unflushed-'));
  await FileBackingStore.create(join(dir, 'lun.img'), SIZE);
  store = await FileBackingStore.open(join(dir, 'lun.img'), { blockSize: 512 });
  state = new DiskFaultState(0);
  dev = new DiskFaultLayer(store, state);
  state.set(spec({ loseUnflushed: true }));
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('lose-unflushed', () => {
  it('holds a write: readable at once, on the image only after a flush', async () => {
    await dev.write(4096, fill(4096, 0xa1));
    expect((await dev.read(4096, 4096)).equals(fill(4096, 0xa1))).toBe(true);
    expect((await below(4096, 4096)).equals(fill(4096, 0))).toBe(true);
    expect(state.view()).toMatchObject({ unflushedBytes: 4096, counters: { unflushed: { held: 1, flushedBytes: 0 } } });
    await dev.flush();
    expect((await below(4096, 4096)).equals(fill(4096, 0xa1))).toBe(true);
    expect(state.view()).toMatchObject({ unflushedBytes: 0, counters: { unflushed: { held: 1, flushedBytes: 4096 } } });
  });

  it('merges at byte granularity: unaligned and overlapping writes, read into a caller buffer', async () => {
    await store.write(0, fill(2048, 0x11));
    await dev.write(100, fill(300, 0x22));
    await dev.write(350, fill(10, 0x33));
    const into = Buffer.alloc(1024, 0xee);
    const got = await dev.read(0, 1000, into);
    const want = fill(1000, 0x11);
    want.fill(0x22, 100, 400);
    want.fill(0x33, 350, 360);
    expect(got.equals(want)).toBe(true);
    expect(into.subarray(0, 1000).equals(want)).toBe(true);
    expect((await below(0, 1000)).equals(fill(1000, 0x11))).toBe(true);
  });

  it('a FUA write goes down at once and wins over older held data; a newer held write wins over it', async () => {
    await dev.write(0, fill(8192, 1));
    await dev.write(4096, fill(4096, 2), { fua: true });
    const img = await below(0, 8192);
    expect(img.subarray(0, 4096).equals(fill(4096, 0))).toBe(true); // the held half is not down
    expect(img.subarray(4096).equals(fill(4096, 2))).toBe(true);
    expect((await dev.read(0, 8192)).equals(Buffer.concat([fill(4096, 1), fill(4096, 2)]))).toBe(true);
    await dev.write(6144, fill(1024, 3));
    await dev.flush();
    // the older held data never lands over the FUA write; the newer held write does
    expect((await below(0, 8192)).equals(Buffer.concat([fill(4096, 1), fill(2048, 2), fill(1024, 3), fill(1024, 2)]))).toBe(true);
  });

  it('a crash (the layer dropped, nothing written down) loses exactly the writes neither flushed nor FUA', async () => {
    await dev.write(0, fill(4096, 0xa));
    await dev.flush();
    await dev.write(4096, fill(4096, 0xb));
    await dev.write(8192, fill(4096, 0xc), { fua: true });
    await dev.write(0, fill(512, 0xd)); // over flushed data: the flushed version survives
    // the process dies: the overlay goes with it; a new process opens the image and reads
    const restarted = new DiskFaultLayer(store, new DiskFaultState(0));
    expect((await restarted.read(0, 4096)).equals(fill(4096, 0xa))).toBe(true);
    expect((await restarted.read(4096, 4096)).equals(fill(4096, 0))).toBe(true);
    expect((await restarted.read(8192, 4096)).equals(fill(4096, 0xc))).toBe(true);
  });

  it('holds trims and write-zeroes as zeroes, written down at the flush', async () => {
    await store.write(0, fill(16384, 7));
    await dev.writeZeroes(0, 4096);
    await dev.trim(8192, 4096);
    const want = fill(16384, 7);
    want.fill(0, 0, 4096);
    want.fill(0, 8192, 12288);
    expect((await dev.read(0, 16384)).equals(want)).toBe(true);
    expect((await below(0, 16384)).equals(fill(16384, 7))).toBe(true);
    expect((await dev.blockStatus(0, 16384))[0]).toEqual({ length: 4096, hole: false, zero: true });
    await dev.flush();
    expect((await below(0, 16384)).equals(want)).toBe(true);
  });

  it('block status shows held data as data over a hole', async () => {
    await dev.write(65536, fill(4096, 9));
    expect((await dev.blockStatus(65536, 8192))[0]).toEqual({ length: 4096, hole: false, zero: false });
    const before = await dev.blockStatus(0, 65536 + 4096);
    expect(before.reduce((n, e) => n + e.length, 0)).toBeLessThanOrEqual(65536); // stops where the held piece starts
  });

  it('stays under its limit: the oldest content goes down by itself, the newest stays held', async () => {
    state.set(spec({ loseUnflushed: true, maxUnflushed: '64K' }));
    for (let i = 0; i < 64; i++) {
      await dev.write(i * 4096, fill(4096, i + 1));
      expect(state.view()!.unflushedBytes).toBeLessThanOrEqual(64 * KiB);
    }
    const v = state.view()!;
    expect(v.counters.unflushed.destagedBytes).toBeGreaterThanOrEqual(192 * KiB);
    expect((await below(0, 4096)).equals(fill(4096, 1))).toBe(true); // the oldest is down
    expect((await below(63 * 4096, 4096)).equals(fill(4096, 0))).toBe(true); // the newest is held
    for (let i = 0; i < 64; i++) expect((await dev.read(i * 4096, 4096)).equals(fill(4096, i + 1)), `block ${i}`).toBe(true);
  });

  it('bounds memory under overlapping rewrites too (a cut piece keeps no big buffer alive)', async () => {
    state.set(spec({ loseUnflushed: true, maxUnflushed: '64K' }));
    for (let i = 0; i < 200; i++) await dev.write((i % 8) * 512, fill(8192 - (i % 8) * 512, i & 0xff));
    expect(state.view()!.unflushedBytes).toBeLessThanOrEqual(64 * KiB);
    await dev.flush();
    expect((await below(0, 8192)).equals(await dev.read(0, 8192))).toBe(true);
  });

  it('concurrent writes and a flush: every write answered before the flush is on the image after it', async () => {
    const writes = Array.from({ length: 32 }, (_, i) => dev.write(i * 8192, fill(8192, i + 1)));
    await Promise.all(writes);
    const late = dev.write(SIZE - 4096, fill(4096, 0xff));
    await dev.flush();
    await late;
    for (let i = 0; i < 32; i++) expect((await below(i * 8192, 8192)).equals(fill(8192, i + 1)), `write ${i}`).toBe(true);
  });

  it('an orderly close writes what is held down', async () => {
    const own = await FileBackingStore.open(join(dir, 'lun.img'), { blockSize: 512 });
    const s = new DiskFaultState(1);
    s.set(spec({ loseUnflushed: true }));
    const d = new DiskFaultLayer(own, s);
    await d.write(0, fill(512, 5));
    await d.close();
    expect((await below(0, 512)).equals(fill(512, 5))).toBe(true);
    await expect(d.write(0, fill(512, 6))).rejects.toThrow(/ESHUTDOWN/);
  });

  it('two layers over one LUN share the overlay (the host path and the mirror driver path)', async () => {
    const other = new DiskFaultLayer(store, state);
    await dev.write(0, fill(512, 4));
    expect((await other.read(0, 512)).equals(fill(512, 4))).toBe(true);
    await other.flush();
    expect((await below(0, 512)).equals(fill(512, 4))).toBe(true);
  });

  it('errors still apply: a failed flush writes nothing down', async () => {
    state.set(spec({ errors: 'flush', loseUnflushed: true }));
    await dev.write(0, fill(512, 8));
    await expect(dev.flush()).rejects.toThrow(/EIO/);
    expect((await below(0, 512)).equals(fill(512, 0))).toBe(true);
    expect(state.view()!.unflushedBytes).toBe(512);
  });
});

describe('turning lose-unflushed off (DiskFaultTable)', () => {
  it('a new fault without it, or a clear, writes everything held down first; a new fault with it keeps holding', async () => {
    const t = new DiskFaultTable();
    const d = new DiskFaultLayer(store, t.state(5));
    t.set(5, spec({ loseUnflushed: true }));
    await d.write(0, fill(4096, 1));
    t.set(5, spec({ errors: 'read', range: '512K:4K', loseUnflushed: true }));
    await t.settle(5);
    expect((await below(0, 4096)).equals(fill(4096, 0))).toBe(true);
    expect(t.list()[0]).toMatchObject({ unflushedBytes: 4096, counters: { unflushed: { held: 0 } } }); // counters restart, the overlay stays
    t.set(5, spec({ errors: 'read', range: '512K:4K' }));
    await t.settle(5);
    expect((await below(0, 4096)).equals(fill(4096, 1))).toBe(true);
    t.set(5, spec({ loseUnflushed: true }));
    await d.write(4096, fill(4096, 2));
    expect(t.clear(5)?.unflushedBytes).toBe(4096);
    await t.settle(5);
    expect((await below(4096, 4096)).equals(fill(4096, 2))).toBe(true);
    // cleared and empty: requests pass straight through again
    await d.write(8192, fill(512, 3));
    expect((await below(8192, 512)).equals(fill(512, 3))).toBe(true);
  });
});

describe('lose-unflushed against a model (seeded)', () => {
  const SEED = testSeed(20261207);

  it('reads always return the newest data; a crash leaves the last flush plus the FUA writes since', async () => {
    reportSeedOnFailure(SEED);
    const rand = mulberry32(SEED);
    state.set(spec({ loseUnflushed: true, maxUnflushed: '1G' })); // no destaging of its own: what is down is known
    const model = Buffer.alloc(SIZE); // what reads must return
    const durable = Buffer.alloc(SIZE); // what a crash must leave
    const pick = (max: number): [number, number] => {
      const len = 1 + Math.floor(rand() * max);
      return [Math.floor(rand() * (SIZE - len)), len];
    };
    for (let round = 0; round < 40; round++) {
      // a batch of requests in flight at once, on disjoint slots (overlapping concurrent writes have no order)
      const slot = SIZE / 8;
      const batch: Promise<unknown>[] = [];
      for (let k = 0; k < 8; k++) {
        const len = 1 + Math.floor(rand() * 8192);
        const off = k * slot + Math.floor(rand() * (slot - len));
        const r = rand();
        if (r < 0.15) {
          batch.push(dev.writeZeroes(off, len));
          model.fill(0, off, off + len);
        } else {
          const data = fill(len, 1 + Math.floor(rand() * 255));
          const fua = r > 0.85;
          batch.push(dev.write(off, data, { fua }));
          data.copy(model, off);
          if (fua) data.copy(durable, off);
        }
      }
      await Promise.all(batch);
      expect((await below(0, SIZE)).equals(durable), `round ${round}: the image (what a crash leaves)`).toBe(true);
      const [off, len] = pick(65536);
      expect((await dev.read(off, len)).equals(model.subarray(off, off + len)), `round ${round} read ${off}+${len}`).toBe(true);
      if (rand() < 0.3) {
        await dev.flush();
        model.copy(durable);
      }
    }
    expect((await dev.read(0, SIZE)).equals(model)).toBe(true);
    expect((await below(0, SIZE)).equals(durable), 'the image after a crash').toBe(true);
  });
});
