// SnapshotSet (src/snapshot/set.ts) through the manager: cases the model test found, pinned
// down (deleting the newest snapshot, an overflow during a rollback), and concurrency: host
// writes racing snapshot creates and snapshot reads.
import { describe, it, expect, afterAll } from 'vitest';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { BlockError } from '../../src/block/index.js';
import type { OverflowPolicy } from '../../src/snapshot/index.js';
import { seededRandom } from '../support/random.js';
import { Rig, firstDiff, tempRoot } from './helpers.js';

const root = tempRoot('sanbox-snap-set-');
afterAll(() => root.cleanup());
let dirNo = 0;
const RS = 8192;

async function rig(size: number, slots: number, policy: OverflowPolicy): Promise<Rig> {
  const dir = join(root.path, `r${dirNo++}`);
  mkdirSync(dir);
  return Rig.create(dir, size, { storeBytes: slots * RS, regionSize: RS, policy });
}
const fill = (tag: number, length: number) => Buffer.alloc(length, (tag * 53 + 11) & 0xff || 1);

describe('SnapshotSet', () => {
  for (const policy of ['refuse-writes', 'invalidate-oldest'] as const) {
    it(`after the newest snapshot is deleted, the older one's shared copies still count as saved (${policy})`, async () => {
      const r = await rig(8 * RS, 2, policy);
      try {
        await r.lun.write(0, fill(1, 2 * RS));
        const before = await r.lun.read(0, 8 * RS);
        await r.manager.create(['disk0'], 's1');
        await r.manager.create(['disk0'], 's2');
        // Regions 0 and 1 saved once for s1 and s2 together: the store (2 slots) is full.
        await r.lun.write(0, fill(2, 2 * RS));
        expect(r.manager.storeOf('disk0').usedBytes).toBe(2 * RS);
        await r.manager.delete('disk0', 's2');
        // s1 has both regions saved: overwriting them again needs no slot, so no refusal and no invalidation.
        await r.lun.write(100, fill(3, 2 * RS - 200));
        expect(r.events.filter((e) => e.type === 'snapshot.invalidated')).toEqual([]);
        expect(r.manager.list('disk0').map((v) => [v.name, v.state, v.usedBytes])).toEqual([['s1', 'valid', 2 * RS]]);
        expect((await r.readSnapshot('s1'))!.equals(before)).toBe(true);
        expect(r.manager.storeOf('disk0').usedBytes).toBe(2 * RS);
      } finally {
        await r.close();
      }
    });
  }

  it('snapshot names . and .. are refused; .hidden is a name', async () => {
    const r = await rig(8 * RS, 2, 'refuse-writes');
    try {
      for (const name of ['.', '..']) await expect(r.manager.create(['disk0'], name)).rejects.toMatchObject({ code: 'invalid-argument', message: expect.stringContaining('(not . or ..)') });
      expect(r.manager.list('disk0')).toEqual([]);
      await r.manager.create(['disk0'], '.hidden');
      expect(r.manager.list('disk0').map((v) => v.name)).toEqual(['.hidden']);
    } finally {
      await r.close();
    }
  });

  it('a rollback that overflows the store (invalidate-oldest) invalidates newer snapshots, never its target', async () => {
    const r = await rig(8 * RS, 3, 'invalidate-oldest');
    try {
      await r.lun.write(0, fill(1, 8 * RS));
      const s0 = await r.lun.read(0, 8 * RS);
      await r.manager.create(['disk0'], 's0');
      await r.lun.write(0, fill(2, 3 * RS)); // regions 0-2 saved for s0: the store is full
      await r.manager.create(['disk0'], 's1');
      // Restoring region 0 must first save it for s1, which lacks it: no room, so s1 (not s0) goes.
      await r.manager.rollback('disk0', 's0');
      expect((await r.lun.read(0, 8 * RS)).equals(s0)).toBe(true);
      expect(r.manager.list('disk0').map((v) => [v.name, v.state])).toEqual([
        ['s0', 'valid'],
        ['s1', 'invalid'],
      ]);
      expect((await r.readSnapshot('s0'))!.equals(s0)).toBe(true);
      expect(r.events.filter((e) => e.type === 'snapshot.invalidated').map((e) => e.details.snapshot)).toEqual(['s1']);
      expect(r.manager.offline(0)).toBe(false);
    } finally {
      await r.close();
    }
  });

  it('a rollback that overflows the store (refuse-writes) fails and leaves the LUN offline; a retry after a delete finishes it', async () => {
    const r = await rig(8 * RS, 3, 'refuse-writes');
    try {
      await r.lun.write(0, fill(1, 8 * RS));
      const s0 = await r.lun.read(0, 8 * RS);
      await r.manager.create(['disk0'], 's0');
      await r.lun.write(0, fill(2, 3 * RS));
      await r.manager.create(['disk0'], 's1');
      const s1 = await r.lun.read(0, 8 * RS);
      await expect(r.manager.rollback('disk0', 's0')).rejects.toMatchObject({ name: 'SnapshotError', code: 'io' });
      expect(r.manager.offline(0)).toBe(true);
      await expect(r.lun.write(0, fill(3, 512))).rejects.toSatisfy((e) => e instanceof BlockError && e.errno === 'ESHUTDOWN');
      await expect(r.manager.create(['disk0'], 's2')).rejects.toMatchObject({ code: 'busy' });
      await expect(r.manager.delete('disk0', 's0')).rejects.toMatchObject({ code: 'busy' });
      expect((await r.readSnapshot('s1'))!.equals(s1)).toBe(true);
      await r.manager.delete('disk0', 's1');
      await r.manager.rollback('disk0', 's0');
      expect(r.manager.offline(0)).toBe(false);
      expect((await r.lun.read(0, 8 * RS)).equals(s0)).toBe(true);
      await r.lun.write(0, fill(4, 512));
    } finally {
      await r.close();
    }
  });

  it("a change over many regions reads the LUN's old data once per data extent and never reads its holes", async () => {
    const r = await rig(16 * RS, 16, 'refuse-writes');
    try {
      await r.lun.write(3 * RS, fill(1, RS));
      await r.lun.write(5 * RS, fill(2, 2 * RS));
      const before = await r.lun.read(0, 16 * RS);
      await r.manager.create(['disk0'], 's1');
      const reads: Array<[number, number]> = [];
      const read = r.store.read.bind(r.store);
      r.store.read = (offset, length, into) => (reads.push([offset, length]), read(offset, length, into));
      await r.lun.write(0, fill(3, 16 * RS)); // one change: all 16 regions saved together
      r.store.read = read;
      expect(reads).toEqual([
        [3 * RS, RS],
        [5 * RS, 2 * RS],
      ]);
      expect((await r.readSnapshot('s1'))!.equals(before)).toBe(true);
      expect(r.manager.list('disk0')[0]!.usedBytes).toBe(16 * RS);
    } finally {
      await r.close();
    }
  });

  it('host writes racing snapshot creates and snapshot reads: every cut is a write boundary, and a cut snapshot never changes', async () => {
    const SIZE = 32 * RS;
    const r = await rig(SIZE, 4096, 'invalidate-oldest');
    const rand = seededRandom(0x5eed_5d01);
    const int = (n: number) => Math.floor(rand() * n);
    const snaps: Array<{ name: string; data: Buffer }> = [];
    try {
      await r.lun.write(0, fill(7, SIZE));
      for (let round = 0; round < 25; round++) {
        // Disjoint writes of random (unaligned) extent, several sharing regions.
        const cuts = new Set<number>([0, SIZE]);
        while (cuts.size < 40) cuts.add(1 + int(SIZE - 1));
        const bounds = [...cuts].sort((a, b) => a - b);
        const segs = bounds.slice(1).map((end, i) => ({ offset: bounds[i]!, length: end - bounds[i]! })).filter(() => rand() < 0.5);
        const before = await r.lun.read(0, SIZE);
        const writes = segs.map((s, i) => ({ ...s, data: fill(round * 64 + i + 1, s.length) }));
        const half = Math.floor(writes.length / 2);
        const name = `c${round}`;
        // The first half enter the gate before the create can hold it; the rest race it.
        const first = writes.slice(0, half).map((w) => r.lun.write(w.offset, w.data));
        const created = r.manager.create(['disk0'], name);
        const rest = writes.slice(half).map((w) => r.lun.write(w.offset, w.data));
        // Reads of earlier snapshots meanwhile see exactly what they saw when cut (a whole-device
        // read is one of them: 128 KiB and more go to the thread pool, concurrent with the writes).
        const reads = snaps.slice(-4).map(async (s, i) => {
          const offset = i === 0 ? 0 : int(SIZE - 1);
          const length = i === 0 ? SIZE : 1 + int(Math.min(3 * RS, SIZE - offset));
          const got = await r.manager.device(`disk0@${s.name}`)!.device.read(offset, length);
          if (!got.equals(s.data.subarray(offset, offset + length))) throw new Error(`round ${round}: snapshot ${s.name} changed at ${offset + firstDiff(got, s.data.subarray(offset, offset + length))}`);
        });
        await Promise.all([...first, created, ...rest, ...reads]);
        const data = (await r.readSnapshot(name))!;
        for (const [i, w] of writes.entries()) {
          const got = data.subarray(w.offset, w.offset + w.length);
          const isNew = got.equals(w.data);
          const isOld = got.equals(before.subarray(w.offset, w.offset + w.length));
          expect(isNew || isOld, `round ${round}: write ${i} is torn in snapshot ${name}`).toBe(true);
          if (i < half) expect(isNew, `round ${round}: write ${i} entered before the cut but is missing from ${name}`).toBe(true);
        }
        // Outside the writes, the snapshot is what the LUN was.
        const patched = Buffer.from(before);
        for (const w of writes) data.copy(patched, w.offset, w.offset, w.offset + w.length);
        expect(data.equals(patched)).toBe(true);
        snaps.push({ name, data });
        if (snaps.length > 8) await r.manager.delete('disk0', snaps.shift()!.name);
      }
      for (const s of snaps) expect((await r.readSnapshot(s.name))!.equals(s.data), s.name).toBe(true);
    } finally {
      await r.close();
    }
  });
});
