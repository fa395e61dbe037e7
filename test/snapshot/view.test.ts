// A snapshot as a block device (src/snapshot/view.ts): block status comes from the store for
// saved regions (a region saved from all-zero data is a hole) and from the LUN's own allocation
// elsewhere; extents cover the requested range exactly and never call data zero. The device is
// read-only and goes away with its snapshot.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { BlockError, type BlockDevice, type Extent } from '../../src/block/index.js';
import { fileOps } from '../../src/native/index.js';
import type { SnapshotDevice } from '../../src/snapshot/index.js';
import { seededRandom } from '../support/random.js';
import { Rig, tempRoot } from './helpers.js';

const root = tempRoot('sanbox-snap-view-');
afterAll(() => root.cleanup());

const RS = 8192;
const SIZE = 16 * RS;
const K4 = 4096;
const data = (tag: number, length: number) => Buffer.alloc(length, (tag * 41 + 7) & 0xff || 1);

/** Per 4 KiB block of the snapshot: what its allocation must say ('data' or 'hole'). */
type Alloc = 'data' | 'hole';

describe('snapshot block status', () => {
  let rig: Rig;
  let dev: SnapshotDevice;
  let want: Alloc[];
  let content: Buffer;

  beforeAll(async () => {
    const dir = join(root.path, 'status');
    mkdirSync(dir);
    rig = await Rig.create(dir, SIZE, { storeBytes: 64 * RS, regionSize: RS, policy: 'refuse-writes' });
    const lun = rig.lun;
    // Before the snapshot:
    await lun.write(0 * RS, data(1, RS)); //                       region 0: data, overwritten later (saved data)
    await lun.write(1 * RS, data(2, RS)); //                       region 1: data, never overwritten (the LUN's)
    await lun.writeZeroes(2 * RS, RS, { noHole: true }); //         region 2: zeroes written as data, overwritten later (saved from zeroes)
    //                                                             region 3: a hole, overwritten later (saved from zeroes)
    await lun.write(5 * RS, data(5, K4)); //                       region 5: half data, half hole, never overwritten
    await lun.write(6 * RS, data(6, K4)); //                       region 6: half data, half hole, overwritten later (saved as data)
    await lun.write(9 * RS + K4, data(9, K4)); //                  region 9: hole then data, trimmed later (saved as data)
    //                                                             the rest: holes, region 12 overwritten later (saved from zeroes)
    content = await lun.read(0, SIZE);
    await rig.manager.create(['disk0'], 'snap');
    for (const r of [0, 2, 3, 6, 12]) await lun.write(r * RS + 100, data(20 + r, 300));
    await lun.trim(9 * RS, RS);
    dev = rig.manager.device('disk0@snap')!.device;
    want = new Array<Alloc>(SIZE / K4).fill('hole');
    for (const b of [0, 1, 2, 3, 10, 12, 13, 18, 19]) want[b] = 'data';
    // Without the addon nothing is a hole: block status says data everywhere.
    if (!fileOps) want.fill('data');
  });
  afterAll(async () => {
    await rig.close();
  });

  /** The expected allocation of [offset, offset+length) as merged extents. */
  function expected(offset: number, length: number): Array<[number, Alloc]> {
    const out: Array<[number, Alloc]> = [];
    for (let at = offset; at < offset + length; ) {
      const end = Math.min(offset + length, (Math.floor(at / K4) + 1) * K4);
      const a = want[Math.floor(at / K4)]!;
      const prev = out.at(-1);
      if (prev && prev[1] === a) prev[0] += end - at;
      else out.push([end - at, a]);
      at = end;
    }
    return out;
  }

  async function truthful(ext: Extent[], offset: number, length: number): Promise<void> {
    expect(ext.length).toBeGreaterThan(0);
    expect(ext.reduce((n, e) => n + e.length, 0), `extents of ${offset}+${length} sum to its length`).toBe(length);
    let at = offset;
    for (const [i, e] of ext.entries()) {
      expect(e.length).toBeGreaterThan(0);
      expect(e.hole && !e.zero, 'a hole reads as zeroes').toBe(false);
      if (i > 0) expect([ext[i - 1]!.hole, ext[i - 1]!.zero], 'adjacent extents are merged').not.toEqual([e.hole, e.zero]);
      if (e.zero) expect(content.subarray(at, at + e.length).equals(Buffer.alloc(e.length)), `zero extent at ${at}+${e.length} reads as zeroes`).toBe(true);
      at += e.length;
    }
  }

  it('reads as it was taken', async () => {
    expect((await dev.read(0, SIZE)).equals(content)).toBe(true);
  });

  it('the whole device: saved regions from zero data are holes, saved data is data, unsaved regions show the LUN', async () => {
    const ext = await dev.blockStatus(0, SIZE);
    await truthful(ext, 0, SIZE);
    expect(ext.map((e) => [e.length, e.hole ? 'hole' : 'data'])).toEqual(expected(0, SIZE));
    // Saved from zeroes: hole and zero.
    for (const r of [2, 3, 12]) expect(await dev.blockStatus(r * RS, RS), `region ${r}`).toEqual([{ length: RS, hole: !!fileOps, zero: !!fileOps }]);
    // Saved data (region 6 was half a hole in the LUN: the saved copy is data all through).
    for (const r of [0, 6, 9]) expect(await dev.blockStatus(r * RS, RS), `region ${r}`).toEqual([{ length: RS, hole: false, zero: false }]);
  });

  it('any range: extents cover it exactly and match the allocation', async () => {
    const rand = seededRandom(0x5eed_5c01);
    for (let i = 0; i < 300; i++) {
      const aligned = rand() < 0.5;
      const unit = aligned ? K4 : 1;
      const offset = Math.floor((rand() * SIZE) / unit) * unit;
      const length = Math.max(unit, Math.min(SIZE - offset, Math.floor((rand() * 4 * RS) / unit) * unit));
      const ext = await dev.blockStatus(offset, length);
      await truthful(ext, offset, length);
      if (aligned) expect(ext.map((e) => [e.length, e.hole ? 'hole' : 'data']), `${offset}+${length}`).toEqual(expected(offset, length));
    }
  });

  it('is read-only', async () => {
    const d: BlockDevice = dev;
    for (const p of [d.write(0, Buffer.alloc(512)), d.trim(0, 512), d.writeZeroes(0, 512)]) {
      await expect(p).rejects.toSatisfy((e) => e instanceof BlockError && e.errno === 'EPERM');
    }
    expect(dev.readOnly).toBe(true);
    expect(dev.size).toBe(SIZE);
  });

  it('a deleted snapshot fails reads and block status with EIO; the export is gone', async () => {
    const dir = join(root.path, 'gone');
    mkdirSync(dir);
    const r = await Rig.create(dir, SIZE, { storeBytes: 64 * RS, regionSize: RS, policy: 'refuse-writes' });
    try {
      await r.manager.create(['disk0'], 'old');
      const d = r.manager.device('disk0@old')!.device;
      await r.lun.write(0, data(3, RS));
      await r.manager.delete('disk0', 'old');
      expect(r.manager.device('disk0@old')).toBeUndefined();
      // (The device throws synchronously rather than rejecting; an async caller sees a rejection either way.)
      await expect((async () => d.read(0, 512))()).rejects.toSatisfy((e) => e instanceof BlockError && e.errno === 'EIO');
      await expect((async () => d.blockStatus(0, 512))()).rejects.toSatisfy((e) => e instanceof BlockError && e.errno === 'EIO');
      // Unknown names have no device.
      for (const name of ['disk0', 'disk0@', '@old', 'disk1@old', 'disk0@nope']) expect(r.manager.device(name), name).toBeUndefined();
    } finally {
      await r.close();
    }
  });
});
