// The clone layer and its copy against a byte model, on real image files: random reads, writes,
// zeroes and trims at random offsets and lengths, many at once, while the background copy runs;
// at the end the clone equals the source with the clone's own changes applied. A restart in the
// middle (the copied map as last committed, as after a crash) loses nothing acknowledged.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlockError, FileBackingStore } from '../../src/block/index.js';
import { CopiedMap } from '../../src/clone/index.js';
import { fileOps } from '../../src/native/index.js';
import { seededRandom, type Random } from '../support/random.js';
import { CloneModel, CopyRig, fillSource, KiB, MiB, RangeLock, SECTOR, tempRoot } from './helpers.js';

const SIZE = 32 * MiB;
const REGION = 64 * KiB;

let root: ReturnType<typeof tempRoot>;
let rig: CopyRig;
let sourceData: Buffer;

async function makeRig(rnd: Random, size = SIZE): Promise<void> {
  await FileBackingStore.create(join(root.path, 'source.img'), size);
  const source = await FileBackingStore.open(join(root.path, 'source.img'), { blockSize: 512 });
  sourceData = await fillSource(source, rnd);
  rig = await CopyRig.create(root.path, source, REGION);
}

beforeEach(() => {
  root = tempRoot('sanbox-clone-layer-');
});
afterEach(async () => {
  await rig?.close();
  root.cleanup();
});

/** One random operation through the layer, checked against (and applied to) the model. */
async function randomOp(rnd: Random, model: CloneModel, lock: RangeLock, stats: Record<string, number>): Promise<void> {
  const sectors = SIZE / SECTOR;
  const lenSectors = 1 + Math.floor(rnd() * (rnd() < 0.05 ? (3 * REGION) / SECTOR : 16));
  const first = Math.floor(rnd() * (sectors - lenSectors));
  const offset = first * SECTOR;
  const length = lenSectors * SECTOR;
  const pick = rnd();
  await lock.run(offset, length, async () => {
    if (pick < 0.35) {
      const got = await rig.layer.read(offset, length);
      const bad = model.mismatch(offset, got);
      expect(bad, `read ${offset}+${length}: first wrong sector at ${bad}`).toBe(-1);
      stats.read = (stats.read ?? 0) + 1;
    } else if (pick < 0.8) {
      const data = Buffer.alloc(length);
      for (let i = 0; i < length; i += 8) data.writeDoubleLE(rnd(), i);
      await rig.layer.write(offset, data, { fua: rnd() < 0.1 });
      model.write(offset, data);
      stats.write = (stats.write ?? 0) + 1;
    } else if (pick < 0.9) {
      await rig.layer.writeZeroes(offset, length, { noHole: rnd() < 0.5 });
      model.zero(offset, length);
      stats.zero = (stats.zero ?? 0) + 1;
    } else if (pick < 0.95) {
      await rig.layer.trim(offset, length);
      model.trim(offset, length);
      stats.trim = (stats.trim ?? 0) + 1;
    } else {
      const ext = await rig.layer.blockStatus(offset, length);
      expect(ext.reduce((n, e) => n + e.length, 0)).toBe(length);
      let at = offset;
      for (const e of ext) {
        if (e.zero) expect(model.mismatch(at, Buffer.alloc(e.length)), `zero extent ${at}+${e.length}`).toBe(-1);
        at += e.length;
      }
      stats.status = (stats.status ?? 0) + 1;
    }
  });
}

/** `workers` clients doing random operations until `until()` says stop. */
async function workload(rnd: Random, model: CloneModel, workers: number, until: () => boolean): Promise<Record<string, number>> {
  const lock = new RangeLock();
  const stats: Record<string, number> = {};
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (!until()) {
        await randomOp(rnd, model, lock, stats);
        // A host's pace: the background copy and the hosts' first writes both fill the clone.
        await new Promise((r) => setTimeout(r, 5));
      }
    }),
  );
  return stats;
}

async function checkWhole(model: CloneModel): Promise<void> {
  const got = await rig.layer.read(0, SIZE);
  const bad = model.mismatch(0, got);
  expect(bad, `clone differs from the model at ${bad}`).toBe(-1);
}

describe('CloneLayer against a model', () => {
  it('reads the source where nothing is copied, and a partial write copies its region first', async () => {
    await makeRig(seededRandom(11));
    const model = new CloneModel(sourceData);
    await checkWhole(model);
    const data = Buffer.alloc(4 * KiB, 0xab);
    // 4 KiB in the middle of region 3, and a write straddling regions 5 and 6.
    await rig.layer.write(3 * REGION + 8 * KiB, data);
    model.write(3 * REGION + 8 * KiB, data);
    await rig.layer.write(6 * REGION - 2 * KiB, data);
    model.write(6 * REGION - 2 * KiB, data);
    expect(rig.copy.map.isCopied(3)).toBe(true);
    expect(rig.copy.map.isCopied(5) && rig.copy.map.isCopied(6)).toBe(true);
    expect(rig.copy.map.isCopied(4)).toBe(false);
    // The rest of each region came from the source: the clone's image holds it.
    const image = await rig.target.read(3 * REGION, REGION);
    expect(model.mismatch(3 * REGION, image)).toBe(-1);
    await checkWhole(model);
    // The bits were on disk before the writes were acknowledged.
    const onDisk = await CopiedMap.load(rig.mapPath, SIZE, REGION, rig.target);
    expect([3, 5, 6].map((r) => onDisk.isCopied(r))).toEqual([true, true, true]);
    expect(rig.copy.map.pending).toBe(0);
  });

  it('a fast zero of part of a region not yet copied is ENOTSUP; of a whole region it goes through', async () => {
    await makeRig(seededRandom(12));
    await expect(rig.layer.writeZeroes(REGION + 512, 4096, { fastZero: true })).rejects.toMatchObject({ errno: 'ENOTSUP' } satisfies Partial<BlockError>);
    expect(rig.copy.map.isCopied(1)).toBe(false);
    // A whole region needs no copy: the request reaches the image (which, without hole punching
    // in the TypeScript twin, refuses a fast zero itself).
    if (!fileOps) {
      await expect(rig.layer.writeZeroes(2 * REGION, REGION, { fastZero: true })).rejects.toThrow(/zeroing would write data/);
      return;
    }
    await rig.layer.writeZeroes(2 * REGION, REGION, { fastZero: true });
    expect(rig.copy.map.isCopied(2)).toBe(true);
    expect((await rig.layer.read(2 * REGION, REGION)).equals(Buffer.alloc(REGION))).toBe(true);
  });

  it('random I/O from 6 clients during the background copy: every read as the model says, the clone equals it at the end', async () => {
    const rnd = seededRandom(20261201);
    await makeRig(rnd);
    const model = new CloneModel(sourceData);
    rig.copier.setRate(8 * MiB);
    const copying = rig.copier.run();
    let done = false;
    void copying.finally(() => (done = true));
    const stats = await workload(rnd, model, 6, () => done);
    expect(await copying).toBe('completed');
    expect(stats.write).toBeGreaterThan(50);
    expect(rig.copy.map.complete).toBe(true);
    expect(rig.progress.length).toBeGreaterThan(0);
    await checkWhole(model);
    // Completed: the clone's image alone holds the clone (the source is no longer needed).
    const image = await rig.target.read(0, SIZE);
    expect(model.mismatch(0, image)).toBe(-1);
  });

  it('a restart in the middle of the copy (map as last committed) loses no acknowledged change', async () => {
    const rnd = seededRandom(20261202);
    await makeRig(rnd);
    const model = new CloneModel(sourceData);
    rig.copier.setRate(8 * MiB);
    void rig.copier.run();
    const t0 = Date.now();
    await workload(rnd, model, 4, () => Date.now() - t0 > 700);
    const before = rig.copy.map.copiedBytes;
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(SIZE);
    // The crash: the copy stops where it is; what was not committed is lost.
    await rig.restart();
    expect(rig.copy.map.copiedBytes).toBeLessThanOrEqual(before);
    await checkWhole(model);
    rig.copier.setRate(16 * MiB);
    const copying = rig.copier.run();
    let done = false;
    void copying.finally(() => (done = true));
    await workload(rnd, model, 4, () => done);
    expect(await copying).toBe('completed');
    await checkWhole(model);
  });

  it('a region the source has as zeroes is zeroed in the clone, not skipped (the image may hold an unacknowledged write)', async () => {
    await makeRig(seededRandom(13));
    const zeroRegion = [...Array(SIZE / REGION).keys()].find((r) => sourceData.subarray(r * REGION, (r + 1) * REGION).equals(Buffer.alloc(REGION)))!;
    expect(zeroRegion).toBeDefined();
    // Garbage left in the clone's image by a write that was never acknowledged (no bit set).
    await rig.target.write(zeroRegion * REGION, Buffer.alloc(REGION, 0x5a));
    rig.copier.setRate(64 * MiB);
    expect(await rig.copier.run()).toBe('completed');
    expect((await rig.layer.read(zeroRegion * REGION, REGION)).equals(Buffer.alloc(REGION))).toBe(true);
  });

  it('stops at once when stopped, even at a very low rate, and changes rate while it runs', async () => {
    await makeRig(seededRandom(14));
    rig.copier.setRate(64 * KiB); // one region a second
    const run = rig.copier.run();
    await new Promise((r) => setTimeout(r, 100));
    rig.copier.setRate(256 * MiB);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    rig.copier.setRate(64 * KiB);
    await new Promise((r) => setTimeout(r, 50));
    await rig.copier.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(['stopped', 'completed']).toContain(await run);
    expect(rig.copy.map.copiedBytes).toBeGreaterThan(2 * REGION);
  });
});
