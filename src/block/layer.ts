import type { BlockDevice, DeviceCapabilities, Extent, WriteOptions, ZeroOptions } from './device.js';

/**
 * The pass-through base of every layer in a LUN's stack, in the spirit of an nbdkit filter: a
 * layer extends it and overrides only the requests it changes; everything else reaches the
 * device below unchanged. Size, block size, read-only and capabilities are read from below on
 * every access, so a LUN grown below is seen at once by every layer above it.
 *
 * Range checks are not done here (a pass-through costs nothing): the hops between layers are
 * `checked()` (./checked.ts), and a layer that acts on a range itself (marks a bitmap, copies
 * old data) asserts it with `assertRange` first.
 */
export class LayerDevice implements BlockDevice {
  constructor(protected readonly lower: BlockDevice) {}

  get size(): number {
    return this.lower.size;
  }
  get blockSize(): number {
    return this.lower.blockSize;
  }
  get readOnly(): boolean {
    return this.lower.readOnly;
  }
  get capabilities(): DeviceCapabilities {
    return this.lower.capabilities;
  }

  read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return this.lower.read(offset, length, into);
  }
  write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    return this.lower.write(offset, data, opts);
  }
  flush(): Promise<void> {
    return this.lower.flush();
  }
  trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    return this.lower.trim(offset, length, opts);
  }
  writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    return this.lower.writeZeroes(offset, length, opts);
  }
  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.lower.blockStatus(offset, length);
  }
  cache(offset: number, length: number): Promise<void> {
    return this.lower.cache(offset, length);
  }
  close(): Promise<void> {
    return this.lower.close();
  }
}

/**
 * The promise of `call`, a rejected one if it throws: for a layer method that is not async but
 * must still fail by rejection, never by throwing. Pass a function already at hand: a closure
 * made for the call is an allocation per request (on a per-write path, catch inline instead).
 */
export function promised<T>(call: () => Promise<T>): Promise<T> {
  try {
    return call();
  } catch (e) {
    return Promise.reject(e);
  }
}
