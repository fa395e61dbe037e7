import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockDevice, DeviceCapabilities, Extent, WriteOptions, ZeroOptions } from '../../src/block/device.js';
import { FileBackingStore } from '../../src/block/file-store.js';

/** Deterministic PRNG (mulberry32): the shared seeded sources live in test/support/random.ts. */
export { mulberry32 as rng } from '../support/random.js';

export async function ticks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let imageSeq = 0;
export async function newImage(dir: string, size: number): Promise<FileBackingStore> {
  const path = join(dir, `img${imageSeq++}.img`);
  await FileBackingStore.create(path, size);
  return FileBackingStore.open(path);
}

/**
 * Wraps a device and delays every operation by a random number of event-loop turns before and
 * after it reaches the device below, so operations issued in one order may land in another
 * (the hazard the cache's page locks exist for). `gate`, when set, holds writes until opened.
 */
export class JitterDevice implements BlockDevice {
  gate: Promise<void> | null = null;
  writes = 0;
  failWrites: Error | null = null;
  constructor(
    readonly inner: BlockDevice,
    private readonly rand: () => number = () => 0,
    private readonly maxTicks = 0,
  ) {}
  get size(): number {
    return this.inner.size;
  }
  get blockSize(): number {
    return this.inner.blockSize;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  get capabilities(): DeviceCapabilities {
    return this.inner.capabilities;
  }
  private async jitter(): Promise<void> {
    if (this.maxTicks > 0) await ticks(Math.floor(this.rand() * (this.maxTicks + 1)));
  }
  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    await this.jitter();
    const b = await this.inner.read(offset, length, into);
    await this.jitter();
    return b;
  }
  async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    this.writes++;
    await this.jitter();
    if (this.gate) await this.gate;
    if (this.failWrites) throw this.failWrites;
    await this.inner.write(offset, Buffer.from(data), opts);
    await this.jitter();
  }
  async flush(): Promise<void> {
    await this.jitter();
    await this.inner.flush();
  }
  async trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    await this.jitter();
    await this.inner.trim(offset, length, opts);
    await this.jitter();
  }
  async writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    await this.jitter();
    await this.inner.writeZeroes(offset, length, opts);
    await this.jitter();
  }
  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.inner.blockStatus(offset, length);
  }
  cache(offset: number, length: number): Promise<void> {
    return this.inner.cache(offset, length);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A manually opened gate. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** Bytes stamped with a write's identity, so a misplaced or stale byte is recognisable. */
export function pattern(len: number, stamp: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = (stamp * 31 + i * 7 + 1) & 0xff || 1;
  return b;
}

/** Polls `cond` every few milliseconds; throws after `ms`. */
export async function waitFor(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
