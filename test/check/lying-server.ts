/**
 * A server that lies (the checkers' planted bug): an in-process NBD server over an image file whose
 * device acknowledges every write but drops every `dropEvery`th one, and every write to block 5
 * (of 4096 bytes) after its first, so block 5 serves a stale copy after every later ack.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBackingStore } from '../../src/block/index.js';
import type { BlockDevice, WriteOptions } from '../../src/block/index.js';
import { NbdServer } from '../../src/nbd/index.js';

class LyingDevice implements BlockDevice {
  private n = 0;
  private frozen = 0;
  constructor(
    private readonly inner: BlockDevice,
    private readonly dropEvery: number,
  ) {}
  get size() {
    return this.inner.size;
  }
  get blockSize() {
    return this.inner.blockSize;
  }
  get readOnly() {
    return false;
  }
  get capabilities() {
    return this.inner.capabilities;
  }
  read(o: number, l: number, into?: Buffer) {
    return this.inner.read(o, l, into);
  }
  async write(o: number, d: Buffer, opts?: WriteOptions) {
    if (++this.n % this.dropEvery === 0) return; // acked, never written
    // Block 5 keeps its first version for ever: a stale copy served after every later ack.
    if (o === 5 * 4096 && this.frozen++ > 0) return;
    return this.inner.write(o, d, opts);
  }
  flush() {
    return this.inner.flush();
  }
  trim(o: number, l: number) {
    return this.inner.trim(o, l);
  }
  writeZeroes(o: number, l: number) {
    return this.inner.writeZeroes(o, l);
  }
  blockStatus(o: number, l: number) {
    return this.inner.blockStatus(o, l);
  }
  cache(o: number, l: number) {
    return this.inner.cache(o, l);
  }
  close() {
    return this.inner.close();
  }
}

export interface LyingServer {
  uri: string;
  close(): Promise<void>;
}

/** Starts the lying server on a free port (an 8 MiB export named `lie`). */
export async function startLyingServer(dropEvery = 50): Promise<LyingServer> {
  const dir = mkdtempSync(join(tmpdir(), 'sanbox-ledger-lie-'));
  const path = join(dir, 'lie.img');
  await FileBackingStore.create(path, 8 << 20);
  const store = await FileBackingStore.open(path);
  const exp = { name: 'lie', device: new LyingDevice(store, dropEvery) };
  const nbd = new NbdServer({ catalog: { lookup: (n: string) => (n === 'lie' || n === '' ? exp : undefined), list: () => [exp] } });
  const { port } = await nbd.listen(0, '127.0.0.1');
  return {
    uri: `nbd://127.0.0.1:${port}/lie`,
    close: async () => {
      await nbd.close?.();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
