// The BlockDevice contract (src/block/device.ts), run against every implementation in the tree
// the way nbdkit's test-layers runs every filter: read-after-write against a model, FUA, flush,
// trim and zeroes semantics, truthful block status, range errors that change nothing, close.
// Seeded (test/support/random.ts): a failure prints the seed and the command that reruns it.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mulberry32, reportSeedOnFailure, testSeed } from '../support/random.js';
import { BlockError, type BlockDevice } from '../../src/block/index.js';
import { SUBJECTS, SUBJECT_SIZE, type Opened } from './subjects.js';

// A fixed default seed (every run reproducible); SANBOX_SEED=N runs another.
const SEED = testSeed(20261201);
const BS = 512;

/** A test of the suite: on failure it prints the seed and the command that reruns it. */
function check(name: string, fn: () => Promise<void> | void): void {
  it(name, async () => {
    reportSeedOnFailure(SEED);
    await fn();
  });
}

function fill(rand: () => number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i += 4) b.writeUInt32LE(Math.floor(rand() * 2 ** 32), i);
  return b;
}

/** A block-aligned range inside the device, up to `maxBlocks` long. */
function range(rand: () => number, maxBlocks: number): [number, number] {
  const blocks = 1 + Math.floor(rand() * maxBlocks);
  const offset = Math.floor(rand() * (SUBJECT_SIZE / BS - blocks)) * BS;
  return [offset, blocks * BS];
}

async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (!(e instanceof BlockError)) throw new Error(`expected a BlockError, got ${(e as Error)?.stack ?? String(e)}`);
    return e.errno;
  }
}

async function expectModel(dev: BlockDevice, model: Buffer): Promise<void> {
  const got = await dev.read(0, SUBJECT_SIZE);
  if (!got.equals(model)) {
    let i = 0;
    while (got[i] === model[i]) i++;
    throw new Error(`device differs from the model at byte ${i} (seed ${SEED})`);
  }
}

for (const subject of SUBJECTS) {
  describe(`BlockDevice conformance: ${subject.name}`, () => {
    let o: Opened;
    let dev: BlockDevice;
    // The model of what every byte must read as; tests run in order and keep it current.
    const model = Buffer.alloc(SUBJECT_SIZE);
    const rand = mulberry32(SEED);

    beforeAll(async () => {
      o = await subject.open();
      dev = o.dev;
    });
    afterAll(async () => {
      await o?.cleanup();
    });

    check('describes itself: size, block size, capabilities', () => {
      expect(dev.size).toBe(SUBJECT_SIZE);
      expect([512, 4096]).toContain(dev.blockSize);
      expect(dev.readOnly).toBe(false);
      for (const k of ['trim', 'writeZeroes', 'fastZero', 'sparseStatus', 'coherentAcrossHandles'] as const) expect(typeof dev.capabilities[k]).toBe('boolean');
    });

    check('a new device reads as zeroes', async () => {
      await expectModel(dev, model);
    });

    check('read after write, at random ranges and into a caller buffer', async () => {
      for (let i = 0; i < 64; i++) {
        const [off, len] = range(rand, 64);
        const data = fill(rand, len);
        await dev.write(off, data, i % 8 === 0 ? { fua: true } : undefined);
        data.copy(model, off);
        const into = Buffer.alloc(len + 512, 0xee);
        const back = await dev.read(off, len, into);
        expect(back.length >= len).toBe(true);
        expect(back.subarray(0, len).equals(data), `write ${i} at ${off}+${len}`).toBe(true);
        expect(into.subarray(0, len).equals(data)).toBe(true);
      }
      await expectModel(dev, model);
    });

    check('writes in flight at once all land (disjoint ranges: concurrent overlapping writes have no order)', async () => {
      const slot = SUBJECT_SIZE / 32;
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 32; i++) {
        const len = (1 + Math.floor(rand() * 16)) * BS;
        const off = i * slot + Math.floor(rand() * ((slot - len) / BS)) * BS;
        const data = fill(rand, len);
        data.copy(model, off);
        writes.push(dev.write(off, data));
      }
      await Promise.all(writes);
      await expectModel(dev, model);
    });

    check('FUA write and flush: the data is below every layer afterwards', async () => {
      const [off, len] = range(rand, 32);
      const data = fill(rand, len);
      await dev.write(off, data, { fua: true });
      data.copy(model, off);
      await dev.flush();
      await dev.flush(); // a flush with nothing to do
      if (o.below) expect((await o.below()).equals(model)).toBe(true);
      await expectModel(dev, model);
    });

    check('write-zeroes (punched or written) reads as zeroes and leaves the rest alone', async () => {
      for (const noHole of [false, true]) {
        const [off, len] = range(rand, 128);
        await dev.writeZeroes(off, len, { noHole });
        model.fill(0, off, off + len);
        await expectModel(dev, model);
      }
    });

    check('FAST_ZERO either zeroes without writing or fails at once with ENOTSUP, changing nothing', async () => {
      const [off, len] = range(rand, 16);
      const e = await errnoOf(dev.writeZeroes(off, len, { fastZero: true }));
      if (dev.capabilities.fastZero) {
        expect(e).toBe('ok');
        model.fill(0, off, off + len);
      } else expect(e).toBe('ENOTSUP');
      await expectModel(dev, model);
    });

    check('trim: each block reads as before or as zeroes; nothing outside the range changes', async () => {
      const [off, len] = range(rand, 64);
      await dev.trim(off, len);
      const got = await dev.read(0, SUBJECT_SIZE);
      const zero = Buffer.alloc(BS);
      for (let b = off; b < off + len; b += BS) {
        const blk = got.subarray(b, b + BS);
        expect(blk.equals(model.subarray(b, b + BS)) || blk.equals(zero), `block at ${b}`).toBe(true);
      }
      got.copy(model, off, off, off + len);
      expect(got.equals(model)).toBe(true);
    });

    check('block status tells the truth: extents cover the start, never past the end; holes and zeroes read as zeroes', async () => {
      for (let i = 0; i < 16; i++) {
        const [off, len] = range(rand, 2048);
        const ext = await dev.blockStatus(off, len);
        expect(ext.length).toBeGreaterThan(0);
        let pos = off;
        for (const e of ext) {
          expect(e.length).toBeGreaterThan(0);
          if (e.hole) expect(e.zero).toBe(true);
          if (e.zero) expect(model.subarray(pos, pos + e.length).equals(Buffer.alloc(e.length)), `extent at ${pos}+${e.length}`).toBe(true);
          pos += e.length;
        }
        expect(pos).toBeLessThanOrEqual(off + len);
      }
    });

    check('cache hints succeed and change nothing', async () => {
      const [off, len] = range(rand, 64);
      await dev.cache(off, len);
      await expectModel(dev, model);
    });

    check('out-of-range requests fail with EINVAL or ENOSPC and change nothing', async () => {
      const end = SUBJECT_SIZE;
      const bad: Array<[string, () => Promise<unknown>, string[]]> = [
        ['read past the end', () => dev.read(end - BS, 2 * BS), ['EINVAL']],
        ['read at a negative offset', () => dev.read(-BS, BS), ['EINVAL']],
        ['write past the end', () => dev.write(end - BS, Buffer.alloc(2 * BS, 7)), ['EINVAL', 'ENOSPC']],
        ['write at the end', () => dev.write(end, Buffer.alloc(BS, 7)), ['EINVAL', 'ENOSPC']],
        ['write at a fractional offset', () => dev.write(0.5, Buffer.alloc(BS, 7)), ['EINVAL']],
        ['trim past the end', () => dev.trim(end - BS, 2 * BS), ['EINVAL', 'ENOSPC']],
        ['zeroes past the end', () => dev.writeZeroes(end - BS, 2 * BS), ['EINVAL', 'ENOSPC']],
        ['block status past the end', () => dev.blockStatus(end, BS), ['EINVAL']],
        ['cache past the end', () => dev.cache(end - BS, 2 * BS), ['EINVAL']],
      ];
      for (const [what, run, allowed] of bad) expect(allowed, what).toContain(await errnoOf(run()));
      await expectModel(dev, model);
    });

    check('close resolves; a device that owns its store fails later I/O with an error, never a crash', async () => {
      await dev.flush();
      if (o.below) expect((await o.below()).equals(model)).toBe(true);
      if (!o.ownsStore) return;
      await dev.close();
      expect(['ESHUTDOWN', 'EIO']).toContain(await errnoOf(dev.read(0, BS)));
      expect(['ESHUTDOWN', 'EIO']).toContain(await errnoOf(dev.write(0, Buffer.alloc(BS))));
    });
  });
}
