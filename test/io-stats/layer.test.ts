// The I/O statistics layer over an in-memory device: what it counts per op, that it passes data
// and errors through unchanged, and where a latency lands among the buckets.
import { describe, expect, it } from 'vitest';
import { BlockError, LayerDevice, type BlockDevice, type DeviceCapabilities, type Extent } from '../../src/block/index.js';
import { IoStats, IoStatsLayer, IoStatsTable, IO_STAT_OPS, LATENCY_BUCKETS_SECONDS } from '../../src/io-stats/index.js';

class MemDevice implements BlockDevice {
  readonly size = 1 << 20;
  readonly blockSize = 512;
  readonly readOnly = false;
  readonly capabilities: DeviceCapabilities = { trim: true, writeZeroes: true, fastZero: false, sparseStatus: false, coherentAcrossHandles: true };
  private readonly data = Buffer.alloc(this.size);
  failNext: string | null = null;
  private check(what: string): void {
    if (this.failNext === what) {
      this.failNext = null;
      throw new BlockError('EIO', `${what} failed`);
    }
  }
  async read(offset: number, length: number): Promise<Buffer> {
    this.check('read');
    return Buffer.from(this.data.subarray(offset, offset + length));
  }
  async write(offset: number, data: Buffer): Promise<void> {
    this.check('write');
    data.copy(this.data, offset);
  }
  async flush(): Promise<void> {
    this.check('flush');
  }
  async trim(): Promise<void> {
    this.check('trim');
  }
  async writeZeroes(offset: number, length: number): Promise<void> {
    this.check('zero');
    this.data.fill(0, offset, offset + length);
  }
  async blockStatus(_o: number, length: number): Promise<Extent[]> {
    return [{ length, hole: false, zero: false }];
  }
  async cache(): Promise<void> {}
  async close(): Promise<void> {}
}

const op = (name: string) => IO_STAT_OPS.indexOf(name as (typeof IO_STAT_OPS)[number]);

describe('IoStatsLayer', () => {
  it('counts each op type with its bytes, and passes the data through', async () => {
    const mem = new MemDevice();
    const stats = new IoStats(0, 'disk0');
    const dev = new IoStatsLayer(mem, stats);
    expect(dev).toBeInstanceOf(LayerDevice);
    await dev.write(4096, Buffer.alloc(8192, 5));
    await dev.write(0, Buffer.alloc(512, 6), { fua: true });
    expect((await dev.read(4096, 1024)).equals(Buffer.alloc(1024, 5))).toBe(true);
    await dev.flush();
    await dev.trim(0, 65536);
    await dev.writeZeroes(4096, 512);
    await dev.blockStatus(0, 4096);
    await dev.cache(0, 4096);
    const s = stats.snapshot();
    expect(s.ops).toEqual([1, 2, 1, 1, 1]);
    expect(s.bytes).toEqual([1024, 8192 + 512, 0, 65536, 512]);
    expect(s.errors).toEqual([0, 0, 0, 0, 0]);
    for (let k = 0; k < IO_STAT_OPS.length; k++) {
      expect(s.latencyBuckets[k]!.length).toBe(LATENCY_BUCKETS_SECONDS.length + 1);
      expect(s.latencyBuckets[k]!.reduce((a, b) => a + b, 0)).toBe(s.ops[k]);
    }
  });

  it('counts a failure as an op and an error, moves no bytes, and rethrows it unchanged', async () => {
    const mem = new MemDevice();
    const stats = new IoStats(0, 'disk0');
    const dev = new IoStatsLayer(mem, stats);
    for (const name of IO_STAT_OPS) {
      mem.failNext = name;
      const call =
        name === 'read' ? dev.read(0, 512) : name === 'write' ? dev.write(0, Buffer.alloc(512)) : name === 'flush' ? dev.flush() : name === 'trim' ? dev.trim(0, 512) : dev.writeZeroes(0, 512);
      await expect(call).rejects.toMatchObject({ errno: 'EIO', message: `EIO: ${name} failed` });
    }
    const s = stats.snapshot();
    expect(s.ops).toEqual([1, 1, 1, 1, 1]);
    expect(s.errors).toEqual([1, 1, 1, 1, 1]);
    expect(s.bytes).toEqual([0, 0, 0, 0, 0]);
  });
  it('a layer below that throws instead of rejecting: a rejection here, counted as a failure', async () => {
    const thrower = new MemDevice();
    const boom = (): never => {
      throw new BlockError('EIO', 'thrown');
    };
    Object.assign(thrower, { read: boom, write: boom, flush: boom, trim: boom, writeZeroes: boom });
    const stats = new IoStats(0, 'disk0');
    const dev = new IoStatsLayer(thrower, stats);
    for (const call of [() => dev.read(0, 512), () => dev.write(0, Buffer.alloc(512)), () => dev.flush(), () => dev.trim(0, 512), () => dev.writeZeroes(0, 512)]) {
      let p: Promise<unknown> | undefined;
      expect(() => (p = call())).not.toThrow();
      await expect(p).rejects.toMatchObject({ errno: 'EIO', message: 'EIO: thrown' });
    }
    expect(stats.snapshot().errors).toEqual([1, 1, 1, 1, 1]);
  });
});

describe('IoStats buckets', () => {
  it('puts a latency in the first bucket whose bound it does not exceed', () => {
    const s = new IoStats(1, 'x');
    const w = op('write');
    s.done(w, 1, 0.02); // 20 µs: the first bucket (le 0.000025)
    s.done(w, 1, 0.026); // just over: the second
    s.done(w, 1, 40); // 40 ms: le 0.05
    s.done(w, 1, 20_000); // 20 s: +Inf
    const b = s.snapshot().latencyBuckets[w]!;
    expect(b[0]).toBe(1);
    expect(b[1]).toBe(1);
    expect(b[LATENCY_BUCKETS_SECONDS.indexOf(0.05)]).toBe(1);
    expect(b[LATENCY_BUCKETS_SECONDS.length]).toBe(1);
    expect(s.snapshot().latencySumSeconds[w]).toBeCloseTo(20.040046, 6);
  });

  it('a table keeps a LUN\'s counters across stacks, follows its name, and drops them with it', () => {
    const t = new IoStatsTable();
    const a = t.for(3, 'old');
    a.done(op('read'), 10, 1);
    expect(t.for(3, 'new')).toBe(a);
    t.for(1, 'first');
    expect(t.snapshot().map((s) => [s.lun, s.name, s.ops[op('read')]])).toEqual([
      [1, 'first', 0],
      [3, 'new', 1],
    ]);
    t.remove(3);
    expect(t.snapshot().map((s) => s.lun)).toEqual([1]);
  });
});
