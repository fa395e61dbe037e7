/**
 * Model test: a WriteCache over a real FileBackingStore (with random delays below and on the
 * mirror, random background destaging, mode switches, a small budget) against a plain byte
 * array. Operations run in rounds; the operations of one round run concurrently on disjoint
 * byte ranges (often sharing pages). Reads must return the model; at the end either the cache
 * is destaged and the image file must equal the model, or the SP "dies" and a takeover cache
 * built from the peer's PeerMirrorStore must read back every acknowledged write.
 */
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { CacheBudget, WriteCache, PeerMirrorStore, LocalCacheMirror } from '../../../src/array/cache/index.js';
import { fileOps } from '../../../src/native/index.js';
import { JitterDevice, newImage, pattern, rng, tempDir, ticks } from '../helpers.js';
import { fcSeed } from '../../support/random.js';

const PS = 4096;
const PAGES = 12;
const SIZE = PS * PAGES;
const tmp = tempDir('sanbox-cache-model-');
afterAll(() => tmp.cleanup());

type Op =
  | { kind: 'write'; offset: number; length: number; fua: boolean }
  | { kind: 'read'; offset: number; length: number }
  | { kind: 'trim'; offset: number; length: number }
  | { kind: 'zero'; offset: number; length: number }
  | { kind: 'flush' }
  | { kind: 'destage'; pages: number };

interface Round {
  mode: 'write-back' | 'write-through' | null;
  ops: Op[];
}

const rangeArb = fc
  .tuple(fc.integer({ min: 0, max: SIZE - 1 }), fc.oneof(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 3 * PS + 100 })))
  .map(([offset, len]) => ({ offset, length: Math.min(len, SIZE - offset) }));
const alignedArb = fc.tuple(fc.integer({ min: 0, max: PAGES - 1 }), fc.integer({ min: 1, max: 3 })).map(([p, n]) => ({ offset: p * PS, length: Math.min(n, PAGES - p) * PS }));
const anyRange = fc.oneof(rangeArb, rangeArb, alignedArb);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(anyRange, fc.boolean()).map(([r, fua]) => ({ kind: 'write' as const, ...r, fua: fua && r.length % 3 === 0 })) },
  { weight: 3, arbitrary: anyRange.map((r) => ({ kind: 'read' as const, ...r })) },
  { weight: 1, arbitrary: anyRange.map((r) => ({ kind: 'trim' as const, ...r })) },
  { weight: 1, arbitrary: anyRange.map((r) => ({ kind: 'zero' as const, ...r })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 4 }).map((pages) => ({ kind: 'destage' as const, pages })) },
);
const roundArb: fc.Arbitrary<Round> = fc.record({
  mode: fc.oneof({ weight: 5, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom('write-back' as const, 'write-through' as const) }),
  ops: fc.array(opArb, { minLength: 1, maxLength: 5 }),
});

function overlaps(a: { offset: number; length: number }, b: { offset: number; length: number }): boolean {
  return a.offset < b.offset + b.length && b.offset < a.offset + a.length;
}

/** Model: bytes plus a mask of bytes whose value is unspecified (trimmed without a hole punch). */
class Model {
  bytes = Buffer.alloc(SIZE);
  unknown = new Uint8Array(SIZE);
  check(offset: number, got: Buffer, what: string): void {
    for (let i = 0; i < got.length; i++) {
      if (this.unknown[offset + i]) continue;
      if (got[i] !== this.bytes[offset + i]) {
        throw new Error(`${what}: byte ${offset + i} (page ${Math.floor((offset + i) / PS)}) is ${got[i]}, expected ${this.bytes[offset + i]}`);
      }
    }
  }
}

async function withWatchdog<T>(p: Promise<T>, what: () => string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const dog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`watchdog: ${what()}`)), ms);
  });
  try {
    return await Promise.race([p, dog]);
  } finally {
    clearTimeout(timer);
  }
}

async function runScenario(seed: number, rounds: Round[], ending: 'destage' | 'takeover'): Promise<void> {
  const rand = rng(seed);
  const store = await newImage(tmp.dir, SIZE);
  const lower = new JitterDevice(store, rand, 3);
  const budget = new CacheBudget(5 * PS, { highWatermark: 0.6, lowWatermark: 0.2 });
  const peer = new PeerMirrorStore();
  const mirror = new LocalCacheMirror(peer, () => ticks(Math.floor(rand() * 3)));
  const cache = new WriteCache({ lun: 7, lower, budget, mode: 'write-back', idleMs: 5, destageBatchPages: 3, destageConcurrency: 2, autoDestage: rand() < 0.7 });
  await cache.attachMirror(mirror);
  const model = new Model();
  // Trim without the addon leaves the image as it was; with it, trim punches (zeroes).
  const trimZeroes = fileOps !== null;
  let stamp = seed * 1000;
  try {
    for (const round of rounds) {
      if (round.mode) cache.setMode(round.mode);
      // Keep the ops of a round on disjoint byte ranges (reads may not overlap writes either).
      const ops: Op[] = [];
      for (const op of round.ops) {
        if ('offset' in op && ops.some((o) => 'offset' in o && overlaps(o, op))) continue;
        ops.push(op);
      }
      const before = { bytes: Buffer.from(model.bytes), unknown: Uint8Array.from(model.unknown) };
      const snapshotModel = new Model();
      snapshotModel.bytes = before.bytes;
      snapshotModel.unknown = before.unknown;
      const tasks: Promise<void>[] = [];
      for (const op of ops) {
        switch (op.kind) {
          case 'write': {
            const data = pattern(op.length, ++stamp);
            tasks.push(cache.write(op.offset, data, { fua: op.fua }));
            data.copy(model.bytes, op.offset);
            model.unknown.fill(0, op.offset, op.offset + op.length);
            break;
          }
          case 'read':
            tasks.push(cache.read(op.offset, op.length).then((got) => snapshotModel.check(op.offset, got, `read ${op.offset}+${op.length}`)));
            break;
          case 'trim':
            tasks.push(cache.trim(op.offset, op.length));
            model.bytes.fill(0, op.offset, op.offset + op.length);
            model.unknown.fill(trimZeroes ? 0 : 1, op.offset, op.offset + op.length);
            break;
          case 'zero':
            tasks.push(cache.writeZeroes(op.offset, op.length));
            model.bytes.fill(0, op.offset, op.offset + op.length);
            model.unknown.fill(0, op.offset, op.offset + op.length);
            break;
          case 'flush':
            tasks.push(cache.flush());
            break;
          case 'destage':
            tasks.push(cache.destageStep(op.pages).then(() => undefined));
            break;
        }
        // Start the next op a little later sometimes, so ops overlap at different phases.
        if (rand() < 0.5) await ticks(Math.floor(rand() * 3));
      }
      await withWatchdog(Promise.all(tasks), () => `round ${JSON.stringify(round)} stuck: dirty ${cache.dirtyBytes}, budget ${budget.used}/${budget.capacity} waiting ${budget.waiting}, destages ${cache.destagesInFlight}`);
      cache.checkInvariants();
      expect(budget.used).toBeLessThanOrEqual(budget.capacity);
      // Every byte through the cache equals the model after each round.
      model.check(0, await cache.read(0, SIZE), 'full read after round');
    }

    if (ending === 'destage') {
      await cache.destageAll();
      expect(cache.dirtyBytes).toBe(0);
      model.check(0, readFileSync(store.path), 'image file after destageAll');
      await cache.close();
      expect(budget.used).toBe(0);
    } else {
      // The owner dies; the peer builds a cache from its mirror copy over the same image.
      await cache.halt();
      const budget2 = new CacheBudget(PAGES * PS);
      const taken = new WriteCache({ lun: 7, lower: store, budget: budget2, mode: 'write-through', autoDestage: false, initialGeneration: 0 });
      await taken.loadDirty(peer.take(7));
      model.check(0, await taken.read(0, SIZE), 'read through the takeover cache');
      await taken.destageAll();
      model.check(0, readFileSync(store.path), 'image file after takeover and destage');
      await taken.close();
    }
  } catch (e) {
    await cache.halt().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw e;
  }
}

describe('WriteCache against an in-memory model', () => {
  it('matches the model through random concurrent rounds, then destages to the file', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1 << 30 }), fc.array(roundArb, { minLength: 1, maxLength: 14 }), async (seed, rounds) => {
        await runScenario(seed, rounds, 'destage');
      }),
      { numRuns: 150, ...fcSeed(0x5eed_0004), endOnFailure: true },
    );
  });

  it('a takeover from the PeerMirrorStore reproduces every acknowledged write', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1 << 30 }), fc.array(roundArb, { minLength: 1, maxLength: 14 }), async (seed, rounds) => {
        await runScenario(seed, rounds, 'takeover');
      }),
      { numRuns: 150, ...fcSeed(0x5eed_0005), endOnFailure: true },
    );
  });
});
