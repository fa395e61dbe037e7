import { describe, it, expect, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { CacheBudget, WriteCache, PeerMirrorStore, LocalCacheMirror, type CacheEvent, type CacheMirror } from '../../../src/array/cache/index.js';
import { BlockError, errnoOf } from '../../../src/block/device.js';
import { FileBackingStore } from '../../../src/block/file-store.js';
import { gate, JitterDevice, newImage, pattern, tempDir, ticks, waitFor } from '../helpers.js';

const PS = 4096;
const tmp = tempDir('sanbox-cache-');
afterAll(() => tmp.cleanup());

async function setup(opts: { pages?: number; budgetPages?: number; autoDestage?: boolean; mode?: 'write-back' | 'write-through' } = {}) {
  const store = await newImage(tmp.dir, (opts.pages ?? 16) * PS);
  const lower = new JitterDevice(store);
  const budget = new CacheBudget((opts.budgetPages ?? 8) * PS);
  const peer = new PeerMirrorStore();
  const mirror = new LocalCacheMirror(peer);
  const events: CacheEvent[] = [];
  const cache = new WriteCache({ lun: 1, lower, budget, mode: opts.mode ?? 'write-back', autoDestage: opts.autoDestage ?? false, idleMs: 0, onEvent: (e) => events.push(e) });
  await cache.attachMirror(mirror);
  const disk = (offset: number, length: number): Buffer => readFileSync(store.path).subarray(offset, offset + length);
  return { store, lower, budget, peer, mirror, cache, events, disk };
}

describe('WriteCache basics', () => {
  it('write-back: cached, mirrored before the ack, not on disk until destaged', async () => {
    const { cache, peer, disk, budget } = await setup();
    const data = pattern(PS, 1);
    await cache.write(PS, data);
    expect(cache.dirtyBytes).toBe(PS);
    expect(peer.pages(1)).toHaveLength(1);
    expect(peer.pages(1)[0]!.data.equals(data)).toBe(true);
    expect(disk(PS, PS).equals(Buffer.alloc(PS))).toBe(true);
    expect((await cache.read(PS, PS)).equals(data)).toBe(true);
    await cache.destageAll();
    expect(disk(PS, PS).equals(data)).toBe(true);
    expect(peer.pages(1)).toHaveLength(0); // released after destage
    expect(budget.used).toBe(0);
    await cache.close();
  });

  it('a partial write to an uncached page reads the rest of the page from below', async () => {
    const { cache, store, disk } = await setup();
    const base = pattern(PS, 9);
    await store.write(2 * PS, base);
    await cache.write(2 * PS + 100, Buffer.from('hello'));
    const expected = Buffer.from(base);
    Buffer.from('hello').copy(expected, 100);
    expect((await cache.read(2 * PS, PS)).equals(expected)).toBe(true);
    await cache.destageAll();
    expect(disk(2 * PS, PS).equals(expected)).toBe(true);
    await cache.close();
  });

  it('write-through: on disk (FUA) before the ack, nothing cached', async () => {
    const { cache, disk, peer } = await setup({ mode: 'write-through' });
    const data = pattern(3000, 2);
    await cache.write(500, data);
    expect(cache.dirtyBytes).toBe(0);
    expect(disk(500, 3000).equals(data)).toBe(true);
    expect(peer.bytes).toBe(0);
    await cache.close();
  });

  it('write-through over a dirty page merges, writes the whole page and releases the peer copy', async () => {
    const { cache, disk, peer } = await setup();
    const a = pattern(PS, 3);
    await cache.write(0, a);
    cache.setMode('write-through');
    await cache.write(10, Buffer.from('XYZ'));
    const expected = Buffer.from(a);
    Buffer.from('XYZ').copy(expected, 10);
    expect(cache.dirtyBytes).toBe(0);
    expect(disk(0, PS).equals(expected)).toBe(true);
    expect(peer.pages(1)).toHaveLength(0);
    await cache.close();
  });

  it('write-back without a mirror is refused: the write goes through', async () => {
    const store = await newImage(tmp.dir, 4 * PS);
    const budget = new CacheBudget(4 * PS);
    const events: CacheEvent[] = [];
    const cache = new WriteCache({ lun: 2, lower: store, budget, mode: 'write-back', autoDestage: false, onEvent: (e) => events.push(e) });
    await cache.write(0, pattern(PS, 1));
    expect(cache.dirtyBytes).toBe(0);
    expect(readFileSync(store.path).subarray(0, PS).equals(pattern(PS, 1))).toBe(true);
    expect(events.some((e) => e.type === 'write-through-fallback' && e.reason === 'no-mirror')).toBe(true);
    // requireMirror: false (benchmarks only) caches without a peer.
    const bench = new WriteCache({ lun: 3, lower: await newImage(tmp.dir, 4 * PS), budget, mode: 'write-back', autoDestage: false, requireMirror: false });
    await bench.write(0, pattern(PS, 2));
    expect(bench.dirtyBytes).toBe(PS);
    // FUA without a mirror must reach the disk.
    await bench.write(PS, pattern(PS, 3), { fua: true });
    expect(bench.dirtyBytes).toBe(PS);
    await bench.close();
    await cache.close();
  });

  it('a write larger than the whole budget goes through', async () => {
    const { cache, disk, events } = await setup({ budgetPages: 2 });
    const data = pattern(3 * PS, 4);
    await cache.write(0, data);
    expect(cache.dirtyBytes).toBe(0);
    expect(disk(0, 3 * PS).equals(data)).toBe(true);
    expect(events.some((e) => e.type === 'write-through-fallback' && e.reason === 'large-write')).toBe(true);
    await cache.close();
  });

  it('switching to write-through drains the dirty pages', async () => {
    const store = await newImage(tmp.dir, 8 * PS);
    const budget = new CacheBudget(8 * PS);
    const cache = new WriteCache({ lun: 1, lower: store, budget, mode: 'write-back', idleMs: 0 });
    await cache.attachMirror(new LocalCacheMirror(new PeerMirrorStore()));
    await cache.write(0, pattern(2 * PS, 5));
    expect(cache.dirtyBytes).toBe(2 * PS);
    cache.setMode('write-through');
    await waitFor(() => cache.dirtyBytes === 0);
    expect(cache.dirtyBytes).toBe(0);
    expect(readFileSync(store.path).subarray(0, 2 * PS).equals(pattern(2 * PS, 5))).toBe(true);
    await cache.close();
  });

  it('the idle timer destages a quiet cache', async () => {
    const store = await newImage(tmp.dir, 8 * PS);
    const cache = new WriteCache({ lun: 1, lower: store, budget: new CacheBudget(8 * PS), mode: 'write-back', idleMs: 10 });
    await cache.attachMirror(new LocalCacheMirror(new PeerMirrorStore()));
    await cache.write(0, pattern(PS, 6));
    expect(cache.dirtyBytes).toBe(PS);
    await new Promise((r) => setTimeout(r, 60));
    expect(cache.dirtyBytes).toBe(0);
    await cache.close();
  });

  it('the high watermark starts destaging, which stops at the low watermark', async () => {
    const store = await newImage(tmp.dir, 16 * PS);
    const budget = new CacheBudget(10 * PS, { highWatermark: 0.8, lowWatermark: 0.3 });
    const cache = new WriteCache({ lun: 1, lower: store, budget, mode: 'write-back', idleMs: 0, destageBatchPages: 1, destageConcurrency: 1 });
    await cache.attachMirror(new LocalCacheMirror(new PeerMirrorStore()));
    for (let i = 0; i < 7; i++) await cache.write(i * PS, pattern(PS, i));
    await ticks(20);
    expect(cache.dirtyBytes).toBe(7 * PS); // below the high watermark: nothing destaged
    await cache.write(7 * PS, pattern(PS, 7));
    await waitFor(() => cache.dirtyBytes <= 3 * PS && cache.destagesInFlight === 0);
    await new Promise((r) => setTimeout(r, 30));
    expect(cache.dirtyBytes).toBe(3 * PS);
    // Oldest first: pages 0..4 went down, 5..7 are still dirty.
    const file = readFileSync(store.path);
    expect(file.subarray(4 * PS, 5 * PS).equals(pattern(PS, 4))).toBe(true);
    expect(file.subarray(5 * PS, 6 * PS).equals(Buffer.alloc(PS))).toBe(true);
    await cache.close();
  });

  it('blockStatus reports dirty pages as data over holes', async () => {
    const { cache } = await setup();
    await cache.write(2 * PS, pattern(PS, 1));
    const ext = await cache.blockStatus(0, 4 * PS);
    const total = ext.reduce((s, e) => s + e.length, 0);
    expect(total).toBe(4 * PS);
    let pos = 0;
    for (const e of ext) {
      if (pos < 3 * PS && pos + e.length > 2 * PS) expect(e.hole).toBe(false);
      pos += e.length;
    }
    await cache.close();
  });

  it('rejects out-of-range requests and I/O after close', async () => {
    const { cache } = await setup({ pages: 2 });
    await expect(cache.write(2 * PS - 1, Buffer.alloc(2))).rejects.toThrow(/EINVAL/);
    await expect(cache.read(-1, 1)).rejects.toThrow(/EINVAL/);
    await cache.close();
    await expect(cache.read(0, 1)).rejects.toThrow(/ESHUTDOWN/);
  });
});

describe('WriteCache ordering against in-flight destages', () => {
  it('a write to a page being destaged stays dirty and the newer data lands last', async () => {
    const { cache, lower, disk, peer } = await setup();
    const v1 = pattern(PS, 11);
    const v2 = pattern(PS, 12);
    await cache.write(0, v1);
    const g = gate();
    lower.gate = g.promise;
    const destage = cache.destageStep();
    await ticks(3);
    await cache.write(0, v2); // acked while the destage of v1 is blocked below
    lower.gate = null;
    g.open();
    await destage;
    expect(cache.dirtyBytes).toBe(PS); // v2 is still dirty
    expect(disk(0, PS).equals(v1)).toBe(true);
    expect(peer.pages(1)[0]!.data.equals(v2)).toBe(true); // the release of v1 did not drop v2
    expect((await cache.read(0, PS)).equals(v2)).toBe(true);
    await cache.destageAll();
    expect(disk(0, PS).equals(v2)).toBe(true);
    expect(peer.bytes).toBe(0);
    await cache.close();
  });

  it('a partial write racing a destage of the same page keeps both writes', async () => {
    const { cache, lower, disk } = await setup();
    await cache.write(0, Buffer.alloc(PS, 1));
    const g = gate();
    lower.gate = g.promise;
    const destage = cache.destageStep();
    await ticks(3);
    await cache.write(100, Buffer.alloc(10, 2));
    lower.gate = null;
    g.open();
    await destage;
    await cache.destageAll();
    const expected = Buffer.alloc(PS, 1);
    expected.fill(2, 100, 110);
    expect(disk(0, PS).equals(expected)).toBe(true);
    await cache.close();
  });

  it('a trim during a destage waits for it, so the old page cannot land after the trim', async () => {
    const { cache, lower, disk, peer } = await setup();
    await cache.write(PS, pattern(PS, 13));
    const g = gate();
    lower.gate = g.promise;
    const destage = cache.destageStep();
    await ticks(3);
    let trimmed = false;
    const trim = cache.writeZeroes(PS, PS).then(() => (trimmed = true));
    await ticks(5);
    expect(trimmed).toBe(false); // holds the page lock order
    lower.gate = null;
    g.open();
    await destage;
    await trim;
    expect(cache.dirtyBytes).toBe(0);
    expect(disk(PS, PS).equals(Buffer.alloc(PS))).toBe(true);
    expect((await cache.read(PS, PS)).equals(Buffer.alloc(PS))).toBe(true);
    expect(peer.bytes).toBe(0);
    await cache.close();
  });

  it('a write-through during a destage of the same page lands after it', async () => {
    const { cache, lower, disk } = await setup();
    await cache.write(0, pattern(PS, 14));
    const g = gate();
    lower.gate = g.promise;
    const destage = cache.destageStep();
    await ticks(3);
    cache.setMode('write-through');
    const wt = cache.write(0, pattern(PS, 15));
    await ticks(3);
    lower.gate = null;
    g.open();
    await Promise.all([destage, wt]);
    expect(disk(0, PS).equals(pattern(PS, 15))).toBe(true);
    expect((await cache.read(0, PS)).equals(pattern(PS, 15))).toBe(true);
    await cache.close();
  });

  it('a partial trim zeroes the cached bytes and the peer copy alike', async () => {
    const { cache, peer } = await setup();
    await cache.write(0, Buffer.alloc(PS, 7));
    await cache.trim(100, 50);
    const expected = Buffer.alloc(PS, 7);
    expected.fill(0, 100, 150);
    expect((await cache.read(0, PS)).equals(expected)).toBe(true);
    expect(peer.pages(1)[0]!.data.equals(expected)).toBe(true);
    await cache.close();
  });
});

describe('WriteCache budget', () => {
  it('writes wait for destaging when the budget is full and the cache never exceeds it', async () => {
    const budget = new CacheBudget(3 * PS, { highWatermark: 1, lowWatermark: 1 });
    const peer = new PeerMirrorStore();
    const stores = [await newImage(tmp.dir, 8 * PS), await newImage(tmp.dir, 8 * PS)];
    const gated = stores.map((s) => new JitterDevice(s));
    const caches = gated.map((lower, i) => new WriteCache({ lun: i, lower, budget, mode: 'write-back', autoDestage: false, idleMs: 0, destageBatchPages: 1, destageConcurrency: 1 }));
    for (const c of caches) await c.attachMirror(new LocalCacheMirror(peer));
    let maxUsed = 0;
    const watch = setInterval(() => (maxUsed = Math.max(maxUsed, budget.used)), 0);
    await caches[0]!.write(0, pattern(2 * PS, 1));
    await caches[1]!.write(0, pattern(PS, 2));
    expect(budget.used).toBe(3 * PS);
    // Block the destages below so the waiting write stays blocked until we open the gate.
    const g = gate();
    for (const l of gated) l.gate = g.promise;
    let done = false;
    const w = caches[1]!.write(4 * PS, pattern(2 * PS, 3)).then(() => (done = true));
    await ticks(10);
    expect(done).toBe(false);
    expect(budget.waiting).toBe(1);
    expect(budget.used).toBeLessThanOrEqual(budget.capacity);
    for (const l of gated) l.gate = null;
    g.open();
    await w;
    clearInterval(watch);
    expect(maxUsed).toBeLessThanOrEqual(3 * PS);
    expect(budget.used).toBeLessThanOrEqual(3 * PS);
    for (const c of caches) c.checkInvariants();
    expect((await caches[1]!.read(4 * PS, 2 * PS)).equals(pattern(2 * PS, 3))).toBe(true);
    expect((await caches[0]!.read(0, 2 * PS)).equals(pattern(2 * PS, 1))).toBe(true);
    for (const c of caches) await c.close();
    expect(budget.used).toBe(0);
  });

  it('budget rejects reservations that can never fit, and bad watermarks', () => {
    expect(() => new CacheBudget(0)).toThrow(/EINVAL/);
    expect(() => new CacheBudget(100, { highWatermark: 0.2, lowWatermark: 0.5 })).toThrow(/EINVAL/);
    const b = new CacheBudget(100);
    const m = { onPressure: () => undefined };
    b.register(m);
    return expect(b.reserve(m, 101)).rejects.toThrow(/ENOSPC/);
  });
});

describe('WriteCache mirror failures and takeover', () => {
  it('a mirror that rejects fails the write with EIO and it is not acknowledged', async () => {
    const { cache, mirror, peer, events } = await setup();
    await cache.write(0, pattern(PS, 1));
    mirror.failWith = new Error('CMI down');
    const err = await cache.write(PS, pattern(PS, 2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlockError);
    expect(errnoOf(err)).toBe('EIO');
    expect(events.some((e) => e.type === 'mirror-error' && e.op === 'mirror')).toBe(true);
    expect(peer.pages(1).map((p) => p.index)).toEqual([0]);
    // The assembly reacts: no peer, write-through. Later writes are durable and succeed.
    cache.detachMirror();
    cache.setMode('write-through');
    await cache.write(2 * PS, pattern(PS, 3));
    await cache.close();
  });

  it('attachMirror resends the dirty set after the peer lost it', async () => {
    const { cache, peer } = await setup();
    await cache.write(0, pattern(2 * PS, 1));
    peer.clear(); // the peer rebooted
    await cache.attachMirror(new LocalCacheMirror(peer));
    expect(peer.pages(1).map((p) => p.index)).toEqual([0, 1]);
    await cache.close();
  });

  it('takeover from a PeerMirrorStore reproduces every acknowledged write', async () => {
    const { cache, peer, store } = await setup({ pages: 16, budgetPages: 16 });
    const expected = Buffer.alloc(16 * PS);
    for (let i = 0; i < 40; i++) {
      const off = (i * 1237) % (15 * PS);
      const data = pattern(700 + (i % 5) * 900, 100 + i);
      await cache.write(off, data);
      data.copy(expected, off);
      if (i % 7 === 3) await cache.destageStep(2);
      if (i % 11 === 5) {
        await cache.writeZeroes(off, 300);
        expected.fill(0, off, off + 300);
      }
    }
    await cache.halt(); // SP-A dies: its cache memory is gone
    const budgetB = new CacheBudget(16 * PS);
    const taken = new WriteCache({ lun: 1, lower: store, budget: budgetB, mode: 'write-through', autoDestage: false });
    await taken.loadDirty(peer.take(1));
    expect((await taken.read(0, 16 * PS)).equals(expected)).toBe(true);
    await taken.destageAll();
    expect(readFileSync(store.path).equals(expected)).toBe(true);
    await taken.close();
  });

  it('loadDirty writes pages that do not fit the budget straight below', async () => {
    const store = await newImage(tmp.dir, 8 * PS);
    const budget = new CacheBudget(2 * PS);
    const cache = new WriteCache({ lun: 1, lower: store, budget, autoDestage: false });
    const pages = [0, 1, 2, 3].map((i) => ({ index: i, generation: i + 1, data: pattern(PS, i) }));
    await cache.loadDirty(pages);
    expect(cache.dirtyBytes).toBe(2 * PS);
    for (const p of pages) expect((await cache.read(p.index * PS, PS)).equals(p.data)).toBe(true);
    await expect(cache.loadDirty([pages[0]!])).rejects.toThrow(/already cached/);
    await cache.close();
    const reopened = await FileBackingStore.open(store.path);
    for (const p of pages) expect((await reopened.read(p.index * PS, PS)).equals(p.data)).toBe(true);
    await reopened.close();
  });

  it('dropAll forgets a stale cache without writing it', async () => {
    const { cache, disk, budget } = await setup();
    await cache.write(0, pattern(PS, 1));
    await cache.dropAll();
    expect(cache.dirtyBytes).toBe(0);
    expect(budget.used).toBe(0);
    expect(disk(0, PS).equals(Buffer.alloc(PS))).toBe(true);
    await cache.close();
  });

  it('a failed destage keeps the pages dirty and destageAll rejects', async () => {
    const { cache, lower, events } = await setup();
    await cache.write(0, pattern(PS, 1));
    lower.failWrites = new Error('disk gone');
    await expect(cache.destageAll()).rejects.toThrow(/EIO/);
    expect(cache.dirtyBytes).toBe(PS);
    expect(events.some((e) => e.type === 'destage-error')).toBe(true);
    lower.failWrites = null;
    await cache.destageAll();
    expect(cache.dirtyBytes).toBe(0);
    await cache.close();
  });

  it('a failed release is retried and a later write-through still clears the peer copy', async () => {
    let failRelease = true;
    const peer = new PeerMirrorStore();
    const inner = new LocalCacheMirror(peer);
    const flaky: CacheMirror = {
      reset: (l) => inner.reset(l),
      mirror: (l, p) => inner.mirror(l, p),
      discard: (l, o, n, g) => inner.discard(l, o, n, g),
      release: (l, p) => (failRelease ? Promise.reject(new Error('lost')) : inner.release(l, p)),
    };
    const store = await newImage(tmp.dir, 4 * PS);
    const cache = new WriteCache({ lun: 1, lower: store, budget: new CacheBudget(4 * PS), mode: 'write-back', autoDestage: false });
    await cache.attachMirror(flaky);
    await cache.write(0, pattern(PS, 1));
    await cache.destageAll();
    expect(peer.pages(1)).toHaveLength(1); // stale copy left on the peer
    cache.setMode('write-through');
    await expect(cache.write(0, pattern(PS, 2))).rejects.toThrow(/EIO/); // peer would replay old data
    failRelease = false;
    await cache.write(0, pattern(PS, 3));
    expect(peer.pages(1)).toHaveLength(0);
    await cache.close();
  });
});

describe('PeerMirrorStore', () => {
  it('keeps the newest generation; release and discard only drop older-or-equal copies', () => {
    const s = new PeerMirrorStore();
    s.mirror(1, [{ index: 0, generation: 5, data: Buffer.alloc(PS, 5) }]);
    s.mirror(1, [{ index: 0, generation: 3, data: Buffer.alloc(PS, 3) }]);
    expect(s.pages(1)[0]!.generation).toBe(5);
    s.release(1, [{ index: 0, generation: 4 }]);
    expect(s.pages(1)).toHaveLength(1);
    s.discard(1, 0, PS, 4);
    expect(s.pages(1)).toHaveLength(1);
    s.discard(1, 10, 10, 6);
    expect(s.pages(1)[0]!.generation).toBe(6);
    expect(s.pages(1)[0]!.data[12]).toBe(0);
    expect(s.pages(1)[0]!.data[9]).toBe(5);
    s.release(1, [{ index: 0, generation: 6 }]);
    expect(s.pages(1)).toHaveLength(0);
    expect(s.bytes).toBe(0);
    s.mirror(2, [{ index: 3, generation: 1, data: Buffer.alloc(PS) }]);
    expect(s.lunIds()).toEqual([2]);
    expect(s.take(2)).toHaveLength(1);
    expect(s.bytes).toBe(0);
    expect(() => s.mirror(2, [{ index: -1, generation: 1, data: Buffer.alloc(PS) }])).toThrow(/malformed/);
  });
});
