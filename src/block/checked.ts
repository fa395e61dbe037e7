import { assertRange, BlockError, type BlockDevice, type Extent, type WriteOptions, type ZeroOptions } from './device.js';
import { LayerDevice } from './layer.js';

/**
 * A checked hop between two layers, as nbdkit's server checks every call between filters: each
 * request crossing it is asserted against the device below (integer offset and length inside the
 * device, aligned to `alignment`, a read buffer large enough, no modification of a read-only
 * device, no request after close), and each answer is asserted too (a read returns exactly the
 * bytes asked for; block status returns extents that cover at least one byte and no more than
 * asked). A failure is a bug of the layer above (a request) or below (an answer), reported with
 * the hop's name. It costs a few comparisons per request (bench/layers.mjs), so it stays on.
 */
export interface HopOptions {
  /** Names the hop in errors, e.g. "disk0: replication -> cache". */
  name: string;
  /** Offsets and lengths must be multiples of this (bytes; 1 = any byte range). */
  alignment?: number;
}

export function checked(lower: BlockDevice, opts: HopOptions): BlockDevice {
  return new CheckedHop(lower, opts);
}

class CheckedHop extends LayerDevice {
  private closed = false;
  private readonly name: string;
  private readonly alignment: number;

  constructor(lower: BlockDevice, opts: HopOptions) {
    super(lower);
    this.name = opts.name;
    this.alignment = opts.alignment ?? 1;
    if (!Number.isSafeInteger(this.alignment) || this.alignment < 1) throw new Error(`hop ${this.name}: alignment ${this.alignment} must be a positive integer`);
  }

  private request(what: string, offset: number, length: number, modifies: boolean): void {
    if (this.closed) throw new BlockError('ESHUTDOWN', `${this.name}: ${what} after close`);
    if (modifies && this.lower.readOnly) throw new BlockError('EPERM', `${this.name}: ${what} on a read-only device`);
    assertRange(this.lower, offset, length);
    const a = this.alignment;
    if (a > 1 && (offset % a !== 0 || length % a !== 0)) throw new BlockError('EINVAL', `${this.name}: ${what} ${offset}+${length} is not aligned to ${a} bytes`);
  }

  override async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.request('read', offset, length, false);
    if (into && into.length < length) throw new BlockError('EINVAL', `${this.name}: read of ${length} bytes into a buffer of ${into.length}`);
    const got = await this.lower.read(offset, length, into);
    if (!Buffer.isBuffer(got) || got.length !== length) {
      throw new BlockError('EIO', `${this.name}: read of ${length} bytes at ${offset} returned ${Buffer.isBuffer(got) ? got.length : typeof got} bytes`);
    }
    return got;
  }

  // The modifying requests are not async: a request that passes costs the checks and the call
  // below, not a promise of this hop's own (a failed check is a rejected promise all the same).
  override write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    try {
      if (!Buffer.isBuffer(data)) throw new BlockError('EINVAL', `${this.name}: write without a data buffer`);
      this.request('write', offset, data.length, true);
      return this.lower.write(offset, data, opts);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  override async flush(): Promise<void> {
    if (this.closed) throw new BlockError('ESHUTDOWN', `${this.name}: flush after close`);
    return this.lower.flush();
  }

  override trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    try {
      this.request('trim', offset, length, true);
      return this.lower.trim(offset, length, opts);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  override writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    try {
      this.request('write-zeroes', offset, length, true);
      return this.lower.writeZeroes(offset, length, opts);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  override async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.request('block-status', offset, length, false);
    const extents = await this.lower.blockStatus(offset, length);
    assertExtents(this.name, extents, length);
    return extents;
  }

  override async cache(offset: number, length: number): Promise<void> {
    this.request('cache', offset, length, false);
    return this.lower.cache(offset, length);
  }

  override close(): Promise<void> {
    this.closed = true;
    return this.lower.close();
  }
}

/** Extents answer a block-status request of `length` bytes: at least one byte, at most `length`. */
export function assertExtents(name: string, extents: Extent[], length: number): void {
  if (!Array.isArray(extents)) throw new BlockError('EIO', `${name}: block status returned no extent list`);
  let covered = 0;
  for (const e of extents) {
    if (!Number.isSafeInteger(e.length) || e.length <= 0) throw new BlockError('EIO', `${name}: block status returned an extent of ${e.length} bytes`);
    if (e.hole && !e.zero) throw new BlockError('EIO', `${name}: block status returned a hole that does not read as zeroes`);
    covered += e.length;
  }
  if (length > 0 && covered === 0) throw new BlockError('EIO', `${name}: block status of ${length} bytes returned no extent`);
  if (covered > length) throw new BlockError('EIO', `${name}: block status of ${length} bytes returned ${covered}`);
}
