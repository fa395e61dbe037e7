// The disk fault layer over a real image file: errors with the right errno (and a failed write
// changes nothing), rate and seed deterministic, the range honoured, delays, counters, clear.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockError, FileBackingStore } from '../../../src/block/index.js';
import { DiskFaultLayer, DiskFaultState, DiskFaultTable, validateDiskFault, type DiskFaultInput, type DiskFaultSpec } from '../../../src/fault/index.js';

const SIZE = 1024 * 1024;
let dir: string;
let store: FileBackingStore;
let state: DiskFaultState;
let dev: DiskFaultLayer;

function spec(input: DiskFaultInput): DiskFaultSpec {
  const v = validateDiskFault(input, SIZE);
  if (!v.spec) throw new Error(v.problems.join('; '));
  return v.spec;
}

async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (!(e instanceof BlockError)) throw e;
    return e.errno;
  }
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-diskfault-'));
  await FileBackingStore.create(join(dir, 'lun.img'), SIZE);
  store = await FileBackingStore.open(join(dir, 'lun.img'), { blockSize: 512 });
  state = new DiskFaultState(0);
  dev = new DiskFaultLayer(store, state);
});
afterEach(async () => {
  await dev.close();
  await rm(dir, { recursive: true, force: true });
});

describe('DiskFaultLayer', () => {
  it('passes everything through while no fault is set', async () => {
    await dev.write(0, Buffer.alloc(512, 7));
    await dev.flush();
    expect((await dev.read(0, 512)).equals(Buffer.alloc(512, 7))).toBe(true);
    expect(state.view()).toBeUndefined();
  });

  it('fails each chosen op with the chosen errno, and the others not', async () => {
    await dev.write(0, Buffer.alloc(512, 1));
    state.set(spec({ errors: 'read,zero', errno: 'EIO' }));
    expect(await errnoOf(dev.read(0, 512))).toBe('EIO');
    expect(await errnoOf(dev.writeZeroes(0, 512))).toBe('EIO');
    expect(await errnoOf(dev.write(512, Buffer.alloc(512, 2)))).toBe('ok');
    expect(await errnoOf(dev.flush())).toBe('ok');
    expect(await errnoOf(dev.trim(4096, 4096))).toBe('ok');
    state.set(spec({ errors: 'write,flush,trim', errno: 'ENOSPC' }));
    expect(await errnoOf(dev.write(0, Buffer.alloc(512, 9)))).toBe('ENOSPC');
    expect(await errnoOf(dev.flush())).toBe('ENOSPC');
    expect(await errnoOf(dev.trim(0, 512))).toBe('ENOSPC');
    // the failed write and zero never reached the image
    expect((await store.read(0, 512)).equals(Buffer.alloc(512, 1))).toBe(true);
  });

  it('faults only requests that overlap the range', async () => {
    state.set(spec({ errors: 'read,write', range: '4096:4096' }));
    expect(await errnoOf(dev.read(0, 4096))).toBe('ok');
    expect(await errnoOf(dev.read(8192, 4096))).toBe('ok');
    expect(await errnoOf(dev.read(4096 - 512, 1024))).toBe('EIO');
    expect(await errnoOf(dev.read(8192 - 512, 512))).toBe('EIO');
    expect(await errnoOf(dev.write(0, Buffer.alloc(16384)))).toBe('EIO');
    expect(await errnoOf(dev.write(12288, Buffer.alloc(512)))).toBe('ok');
  });

  it('draws from the seed: the same seed fails the same requests, another seed others, about rate of them', async () => {
    const pattern = async (seed: number) => {
      state.set(spec({ errors: 'read', rate: 0.3, seed }));
      const out: string[] = [];
      for (let i = 0; i < 200; i++) out.push(await errnoOf(dev.read((i % 64) * 512, 512)));
      return out.join(',');
    };
    const a = await pattern(42);
    expect(await pattern(42)).toBe(a); // set again: the generator restarts at its seed
    expect(await pattern(43)).not.toBe(a);
    const failed = a.split(',').filter((x) => x === 'EIO').length;
    expect(failed).toBeGreaterThan(30);
    expect(failed).toBeLessThan(90);
    expect(state.view()!.counters.injected.read).toBeGreaterThan(0);
  });

  it('rate 0 injects nothing', async () => {
    state.set(spec({ rate: 0 }));
    for (let i = 0; i < 50; i++) expect(await errnoOf(dev.read(i * 512, 512))).toBe('ok');
    expect(state.view()!.counters.injected.read).toBe(0);
  });

  it('delays matching requests by MS plus jitter, and only those', async () => {
    state.set(spec({ delay: '60', range: '0:4096' }));
    let t = Date.now();
    await dev.read(0, 512);
    expect(Date.now() - t).toBeGreaterThanOrEqual(55);
    t = Date.now();
    await dev.read(65536, 512);
    expect(Date.now() - t).toBeLessThan(40);
    state.set(spec({ delay: '20:40', seed: 5 }));
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      t = Date.now();
      await dev.write(0, Buffer.alloc(512));
      waits.push(Date.now() - t);
    }
    for (const w of waits) expect(w).toBeGreaterThanOrEqual(18);
    expect(Math.max(...waits)).toBeLessThan(20 + 40 + 30);
    expect(state.view()!.counters.delayed.write).toBe(6);
    expect(state.view()!.counters.injected.write).toBe(0);
  });

  it('counts injected errors and delayed requests per op; a new fault starts from 0; clear reports and stops', async () => {
    state.set(spec({ errors: 'read,flush', delay: '1' }));
    await errnoOf(dev.read(0, 512));
    await errnoOf(dev.read(0, 512));
    await errnoOf(dev.flush());
    await errnoOf(dev.write(0, Buffer.alloc(512)));
    const v = state.view()!;
    expect(v.counters.injected).toEqual({ read: 2, write: 0, flush: 1, trim: 0, zero: 0 });
    expect(v.counters.delayed).toEqual({ read: 2, write: 1, flush: 1, trim: 0, zero: 0 });
    state.set(spec({ errors: 'trim' }));
    expect(state.view()!.counters.injected.read).toBe(0);
    await errnoOf(dev.trim(0, 512));
    const cleared = state.clear()!;
    expect(cleared.counters.injected.trim).toBe(1);
    expect(state.view()).toBeUndefined();
    expect(await errnoOf(dev.trim(0, 512))).toBe('ok');
    expect(await errnoOf(dev.read(0, 512))).toBe('ok');
  });

  it('never faults block status or cache', async () => {
    state.set(spec({}));
    expect((await dev.blockStatus(0, 4096)).length).toBeGreaterThan(0);
    await dev.cache(0, 4096);
  });
});

describe('DiskFaultTable', () => {
  it('keeps one state per LUN for its life, lists the active ones, forgets a removed LUN', () => {
    const t = new DiskFaultTable();
    const s0 = t.state(0);
    expect(t.state(0)).toBe(s0);
    t.set(3, spec({ errors: 'write' }));
    t.set(1, spec({ errors: 'read' }));
    expect(t.list().map((v) => v.lun)).toEqual([1, 3]);
    expect(t.clear(1)?.lun).toBe(1);
    expect(t.clear(1)).toBeUndefined();
    t.remove(3);
    expect(t.list()).toEqual([]);
  });
});
