import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  TsRegionBitmap,
  NativeRegionBitmap,
  RegionBitmap,
  BitmapCorruptError,
  WriteIntentLog,
  saveBitmapFile,
  saveBitmapFileSync,
  loadBitmapFile,
  loadBitmapFileSync,
} from '../../src/native/index.js';
import { addon } from '../../src/native/addon.js';
import { fcSeed } from '../support/random.js';

type Impl = 'ts' | 'native';
const impls: Impl[] = addon ? ['ts', 'native'] : ['ts'];
const mk = (impl: Impl, lun: number, rs: number) => (impl === 'native' ? new NativeRegionBitmap(lun, rs) : new TsRegionBitmap(lun, rs));

describe.each(impls)('RegionBitmap (%s)', (impl) => {
  it('marks outward, clears inward, counts, tests', () => {
    const b = mk(impl, 10 * 4096 + 100, 4096); // 11 regions, last one short
    expect(b.regionCount).toBe(11);
    b.mark(4095, 2); // regions 0 and 1
    expect(b.countRegions()).toBe(2);
    expect(b.test(0, 1)).toBe(true);
    expect(b.test(8192, 4096)).toBe(false);
    b.clear(1, 8190); // covers no region fully
    expect(b.countRegions()).toBe(2);
    b.clear(0, 4096);
    expect(b.countRegions()).toBe(1);
    b.mark(10 * 4096 + 99, 1);
    expect(b.dirtyBytes()).toBe(4096 + 100);
    b.clear(10 * 4096, 100); // reaches LUN end: covers the short last region
    expect(b.countRegions()).toBe(1);
    b.mark(0, b.lunSize);
    expect(b.countRegions()).toBe(11);
    expect(b.dirtyBytes()).toBe(b.lunSize);
    expect(b.countRegions(4096, 8192)).toBe(2);
    b.clearAll();
    expect(b.countRegions()).toBe(0);
    expect(b.nextDirtyRun(0)).toBeNull();
  });
  it('rejects bad geometry and out-of-range ranges', () => {
    expect(() => mk(impl, 1 << 20, 4095)).toThrow();
    expect(() => mk(impl, 1 << 20, 2048)).toThrow();
    expect(() => mk(impl, 1 << 20, 128 << 20)).toThrow();
    expect(() => mk(impl, 0, 4096)).toThrow();
    const b = mk(impl, 1 << 20, 4096);
    expect(() => b.mark(1 << 20, 1)).toThrow(RangeError);
    expect(() => b.mark(-1, 1)).toThrow(RangeError);
    expect(() => b.mark(0.5, 1)).toThrow(RangeError);
    expect(() => b.markMany([0, 1, 1 << 20, 1])).toThrow(RangeError);
    expect(b.countRegions()).toBe(0);
  });
  it('walks runs across word boundaries', () => {
    const b = mk(impl, 1 << 30, 65536); // 16384 regions
    b.mark(31 * 65536, 3 * 65536); // regions 31..33 (crosses a 32-bit word)
    b.mark(63 * 65536, 2 * 65536); // 63..64 (crosses a 64-bit word)
    b.mark((1 << 30) - 1, 1);
    const runs = [...b.runs()];
    expect(runs).toEqual([
      { offset: 31 * 65536, length: 3 * 65536 },
      { offset: 63 * 65536, length: 2 * 65536 },
      { offset: (1 << 30) - 65536, length: 65536 },
    ]);
    expect(b.nextDirtyRun(32 * 65536 + 5)).toEqual({ offset: 32 * 65536, length: 2 * 65536 });
    expect(Array.from(b.dirtyRuns(0, 2))).toEqual([31 * 65536, 3 * 65536, 63 * 65536, 2 * 65536]);
  });
  it('serializes, loads and detects corruption', () => {
    const b = mk(impl, 123456789, 8192);
    b.markMany([0, 1, 5000000, 77777, 123456788, 1]);
    const img = b.serialize(42);
    const { bitmap, generation } = RegionBitmap.load(img, impl);
    expect(generation).toBe(42);
    expect(Buffer.compare(bitmap.serialize(42), img)).toBe(0);
    expect(() => RegionBitmap.load(img.subarray(0, img.length - 1), impl)).toThrow(BitmapCorruptError);
    const bad = Buffer.from(img);
    bad[100] ^= 1;
    expect(() => RegionBitmap.load(bad, impl)).toThrow(BitmapCorruptError);
  });
});

/** Random operation sequences applied to both implementations must agree step by step. */
describe('differential: native vs TS bitmaps', () => {
  it.skipIf(!addon)('agree on random operation sequences', () => {
    const geom = fc.record({
      shift: fc.integer({ min: 12, max: 16 }),
      regions: fc.integer({ min: 1, max: 300 }),
      tail: fc.integer({ min: 0, max: 4095 }),
    });
    const op = fc.record({
      kind: fc.constantFrom('mark', 'clear', 'test', 'count', 'runs', 'markMany', 'clearAll', 'union', 'copy', 'reload'),
      a: fc.double({ min: 0, max: 1, noNaN: true }),
      b: fc.double({ min: 0, max: 1, noNaN: true }),
      n: fc.integer({ min: 0, max: 5 }),
    });
    fc.assert(
      fc.property(geom, fc.array(op, { maxLength: 60 }), ({ shift, regions, tail }, ops) => {
        const rs = 2 ** shift;
        const lun = Math.max(1, (regions - 1) * rs + tail + 1);
        let t: TsRegionBitmap | NativeRegionBitmap = new TsRegionBitmap(lun, rs);
        let n: TsRegionBitmap | NativeRegionBitmap = new NativeRegionBitmap(lun, rs);
        const other = new TsRegionBitmap(lun, rs);
        other.mark(Math.floor(lun / 3), Math.floor(lun / 5));
        for (const o of ops) {
          const off = Math.floor(o.a * lun);
          const len = Math.floor(o.b * (lun - off));
          switch (o.kind) {
            case 'mark': t.mark(off, len); n.mark(off, len); break;
            case 'clear': t.clear(off, len); n.clear(off, len); break;
            case 'test': expect(n.test(off, len)).toBe(t.test(off, len)); break;
            case 'count':
              expect(n.countRegions()).toBe(t.countRegions());
              expect(n.countRegions(off, len)).toBe(t.countRegions(off, len));
              expect(n.dirtyBytes()).toBe(t.dirtyBytes());
              break;
            case 'runs': expect(Array.from(n.dirtyRuns(off, o.n))).toEqual(Array.from(t.dirtyRuns(off, o.n))); break;
            case 'markMany': {
              const r = [off, len, Math.floor(o.b * lun), 1 % lun];
              if (r[2]! + r[3]! > lun) r[3] = 0;
              t.markMany(r); n.markMany(r);
              break;
            }
            case 'clearAll': if (o.n === 0) { t.clearAll(); n.clearAll(); } break;
            case 'union': t.union(other); n.union(other); break;
            case 'copy': if (o.n === 0) { t.copyFrom(n); n.copyFrom(other); t.copyFrom(other); } break;
            case 'reload': {
              // Cross-load: each implementation loads the other's image.
              const ti = t.serialize(o.n), ni = n.serialize(o.n);
              expect(Buffer.compare(ti, ni)).toBe(0);
              t = TsRegionBitmap.load(ni);
              n = NativeRegionBitmap.load(ti);
              break;
            }
          }
          expect(Buffer.compare(n.serialize(7), t.serialize(7))).toBe(0);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe.each(impls)('WriteIntentLog over %s bitmap', (impl) => {
  it('keeps a region marked while any write is in flight', () => {
    const w = new WriteIntentLog(mk(impl, 1 << 20, 4096));
    w.begin(0, 100);
    w.begin(50, 100);
    w.end(0, 100);
    expect(w.flushClears()).toBe(0); // the second write is still in flight
    expect(w.bitmap.test(0, 1)).toBe(true);
    w.end(50, 100);
    expect(w.pendingClears).toBe(1);
    expect(w.bitmap.test(0, 1)).toBe(true); // lazy: still marked until the flush
    expect(w.flushClears()).toBe(1);
    expect(w.bitmap.countRegions()).toBe(0);
    expect(() => w.end(0, 1)).toThrow(/no write in flight/);
  });
  it('flushAged clears a region only after a whole period without a write ending in it', () => {
    const w = new WriteIntentLog(mk(impl, 1 << 20, 4096));
    w.begin(0, 4096);
    w.end(0, 4096);
    w.begin(8192, 4096);
    w.end(8192, 4096);
    expect(w.flushAged()).toBe(0); // both just written: they age first
    expect(w.bitmap.countRegions()).toBe(2);
    w.begin(8192, 4096); // rewritten during the period
    w.end(8192, 4096);
    w.begin(0, 4096); // in flight at the next tick
    expect(w.flushAged()).toBe(0);
    w.end(0, 4096);
    expect(w.bitmap.countRegions()).toBe(2);
    expect(w.flushAged()).toBe(1); // region 2: a whole period with no write; region 0 ended since
    expect(w.bitmap.test(8192, 1)).toBe(false);
    expect(w.flushAged()).toBe(1);
    expect(w.bitmap.countRegions()).toBe(0);
    // flushClears takes both generations at once
    w.begin(0, 4096);
    w.end(0, 4096);
    w.flushAged();
    w.begin(4096, 4096);
    w.end(4096, 4096);
    expect(w.pendingClears).toBe(2);
    expect(w.flushClears()).toBe(2);
    expect(w.bitmap.countRegions()).toBe(0);
  });
  it('a write not on every image stays marked', () => {
    const w = new WriteIntentLog(mk(impl, 1 << 20, 4096));
    w.begin(4096, 8192);
    w.end(4096, 8192, false);
    expect(w.flushClears()).toBe(0);
    expect(w.bitmap.countRegions()).toBe(2);
    w.clearIdle(4096, 4096);
    expect(w.bitmap.countRegions()).toBe(1);
  });
  it('random begin/end interleavings never clear a busy region', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(63), fc.integer({ min: 1, max: 3 }), fc.boolean(), fc.boolean()), { maxLength: 80 }), (ops) => {
        const w = new WriteIntentLog(mk(impl, 64 * 4096, 4096));
        const open: [number, number][] = [];
        for (const [r, nreg, finish, flush] of ops) {
          if (finish && open.length) {
            const [o, l] = open.splice(r % open.length, 1)[0]!;
            w.end(o, l);
          } else {
            const o = r * 4096 + 7, l = Math.min(nreg * 4096, 64 * 4096 - o);
            w.begin(o, l);
            open.push([o, l]);
          }
          if (flush) (r % 2 ? w.flushAged() : w.flushClears());
          for (const [o, l] of open) expect(w.bitmap.countRegions(o, l)).toBe(Math.ceil((o + l) / 4096) - Math.floor(o / 4096));
        }
        for (const [o, l] of open) w.end(o, l);
        w.flushClears();
        expect(w.bitmap.countRegions()).toBe(0);
      }),
      { numRuns: 100 },
    );
  });
});

describe('bitmap files', () => {
  it('save/load atomically, across implementations, and reject torn files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sanbox-bm-'));
    try {
      const p = join(dir, 'fracture.bm');
      const b = RegionBitmap.create(1 << 30, 65536);
      b.markMany([0, 1, 500 << 20, 3 << 20]);
      await saveBitmapFile(p, b, 3);
      for (const impl of impls) {
        const r = await loadBitmapFile(p, impl);
        expect(r.generation).toBe(3);
        expect(Buffer.compare(r.bitmap.serialize(3), b.serialize(3))).toBe(0);
      }
      saveBitmapFileSync(p, b, 4);
      expect(loadBitmapFileSync(p).generation).toBe(4);
      // Tear / corrupt at seeded random points: never loads.
      const img = readFileSync(p);
      fc.assert(
        fc.property(fc.nat(img.length - 1), fc.integer({ min: 1, max: 255 }), fc.boolean(), (at, x, truncate) => {
          const bad = truncate ? img.subarray(0, at) : Buffer.from(img);
          if (!truncate) bad[at] ^= x;
          writeFileSync(p, bad);
          for (const impl of impls) expect(() => loadBitmapFileSync(p, impl)).toThrow(BitmapCorruptError);
        }),
        { numRuns: 100, ...fcSeed(1234) },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
