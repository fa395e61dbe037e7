/**
 * The I/O statistics layer: the topmost layer of every LUN stack (what the host sees), counting
 * each request into the LUN's IoStats (./counters.ts) with its latency. Everything else passes
 * through uncounted (LayerDevice): block status and cache hints are no data requests. Timing
 * uses `performance.now()`, a double: `process.hrtime.bigint()` would allocate a BigInt per
 * request.
 */
import { LayerDevice, type BlockDevice, type WriteOptions, type ZeroOptions } from '../block/index.js';
import { OP_FLUSH, OP_READ, OP_TRIM, OP_WRITE, OP_ZERO, type IoStats } from './counters.js';

export class IoStatsLayer extends LayerDevice {
  constructor(
    lower: BlockDevice,
    private readonly stats: IoStats,
  ) {
    super(lower);
  }

  override async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const t0 = performance.now();
    let out: Buffer;
    try {
      out = await this.lower.read(offset, length, into);
    } catch (e) {
      this.stats.failed(OP_READ, performance.now() - t0);
      throw e;
    }
    this.stats.done(OP_READ, length, performance.now() - t0);
    return out;
  }

  override async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    const t0 = performance.now();
    try {
      await this.lower.write(offset, data, opts);
    } catch (e) {
      this.stats.failed(OP_WRITE, performance.now() - t0);
      throw e;
    }
    this.stats.done(OP_WRITE, data.length, performance.now() - t0);
  }

  override async flush(): Promise<void> {
    const t0 = performance.now();
    try {
      await this.lower.flush();
    } catch (e) {
      this.stats.failed(OP_FLUSH, performance.now() - t0);
      throw e;
    }
    this.stats.done(OP_FLUSH, 0, performance.now() - t0);
  }

  override async trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    const t0 = performance.now();
    try {
      await this.lower.trim(offset, length, opts);
    } catch (e) {
      this.stats.failed(OP_TRIM, performance.now() - t0);
      throw e;
    }
    this.stats.done(OP_TRIM, length, performance.now() - t0);
  }

  override async writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    const t0 = performance.now();
    try {
      await this.lower.writeZeroes(offset, length, opts);
    } catch (e) {
      this.stats.failed(OP_ZERO, performance.now() - t0);
      throw e;
    }
    this.stats.done(OP_ZERO, length, performance.now() - t0);
  }
}
