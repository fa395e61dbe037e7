// GroupReceiver.betweenBatches: a function queued while batches stream in runs between two of
// them, never inside one: the members then hold exactly the records through the appliedThrough it
// reports, none after. That is where a secondary's group snapshot (and its resync protection) is
// cut, so the snapshot is the group as of a known journal record.
import { describe, expect, it, afterEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockDevice } from '../../../src/block/index.js';
import { GroupReceiver, newGroupRecord, withDefaults } from '../../../src/replication/group/index.js';
import { encodeApplyBatch, type ApplyRecordIn } from '../../../src/link/protocol/index.js';

const BLOCK = 4096;
const BLOCKS = 256;

/** A LUN in memory whose writes take a little while (a batch spans many event-loop turns). */
function slowMemoryLun(): BlockDevice & { data: Buffer } {
  const data = Buffer.alloc(BLOCKS * BLOCK);
  const later = () => new Promise<void>((r) => setTimeout(r, Math.random() < 0.3 ? 1 : 0));
  return {
    data,
    size: data.length,
    blockSize: 512,
    readOnly: false,
    capabilities: { trim: false, writeZeroes: true, fastZero: false, sparseStatus: false, coherentAcrossHandles: true },
    async read(offset, length) {
      return Buffer.from(data.subarray(offset, offset + length));
    },
    async write(offset, buf) {
      await later();
      buf.copy(data, offset);
    },
    async writeZeroes(offset, length) {
      await later();
      data.fill(0, offset, offset + length);
    },
    async trim() {},
    async flush() {
      await later();
    },
    async blockStatus(offset, length) {
      return [{ offset, length, hole: false, zero: false }];
    },
    async cache() {},
    async close() {},
  } as BlockDevice & { data: Buffer };
}

/** Record `seq` writes its number into block `seq` of member `seq % 2`. */
function recordData(seq: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.writeUInt32LE(seq, 0);
  b.writeUInt32LE((seq ^ 0xa5a5a5a5) >>> 0, BLOCK - 4);
  return b;
}

/** The members as the records through `through` leave them. */
function expected(through: number): [Buffer, Buffer] {
  const m: [Buffer, Buffer] = [Buffer.alloc(BLOCKS * BLOCK), Buffer.alloc(BLOCKS * BLOCK)];
  for (let seq = 1; seq <= through; seq++) recordData(seq).copy(m[seq % 2]!, seq * BLOCK);
  return m;
}

let root: string | undefined;
afterEach(async () => {
  if (root) await rm(root, { recursive: true, force: true });
  root = undefined;
});

describe('GroupReceiver.betweenBatches', () => {
  it('runs between two applied batches and reports exactly the records the members hold', async () => {
    root = await mkdtemp(join(tmpdir(), 'sanbox-between-'));
    const luns = [slowMemoryLun(), slowMemoryLun()];
    const record = newGroupRecord('g0-test', 'g0', ['m0', 'm1'], withDefaults({}));
    const rx = await GroupReceiver.open(root, record, (id) => (id === 'm0' || id === 'm1' ? { mirrorId: id, device: luns[id === 'm0' ? 0 : 1]!, size: BLOCKS * BLOCK, primaryArray: 'alpha' } : undefined), { sync: false });
    const LAST = BLOCKS - 1;
    const applies: Promise<unknown>[] = [];
    const cuts: Array<Promise<{ result: { images: Buffer[]; through: number }; appliedThrough: number }>> = [];
    let seq = 1;
    let batchNo = 0;
    while (seq <= LAST) {
      // batches of 1 to 12 records, each a write to a block never written before
      const n = Math.min(LAST - seq + 1, 1 + ((batchNo * 7) % 12));
      const records: ApplyRecordIn[] = [];
      for (let i = 0; i < n; i++, seq++) records.push({ seq, index: seq % 2, offset: seq * BLOCK, flags: 0, data: recordData(seq) });
      applies.push(rx.apply({ groupId: 'g0-test', count: records.length }, encodeApplyBatch(records), 'alpha'));
      // a cut asked for while this batch (and maybe others) are queued or under way
      if (batchNo % 3 === 1) cuts.push(rx.betweenBatches(async (through) => ({ images: luns.map((l) => Buffer.from(l.data)), through })));
      batchNo++;
    }
    await Promise.all(applies);
    const done = await Promise.all(cuts);
    expect(done.length).toBeGreaterThan(5);
    let prev = 0;
    for (const c of done) {
      expect(c.appliedThrough).toBe(c.result.through);
      // in order, and each between batches: what the members hold is exactly records 1..appliedThrough
      expect(c.appliedThrough).toBeGreaterThanOrEqual(prev);
      prev = c.appliedThrough;
      const want = expected(c.appliedThrough);
      expect(c.result.images[0]!.equals(want[0]), `member 0 at record ${c.appliedThrough}`).toBe(true);
      expect(c.result.images[1]!.equals(want[1]), `member 1 at record ${c.appliedThrough}`).toBe(true);
    }
    // the cuts saw the stream at different points, not all at its end
    expect(new Set(done.map((c) => c.appliedThrough)).size).toBeGreaterThan(3);
    expect(rx.nextExpected).toBe(LAST + 1);
    await rx.close();
  });
});
