import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileBackingStore, LayerDevice, type BlockDevice, type WriteOptions } from '../../src/block/index.js';
import { CMD, NbdServer } from '../../src/nbd/index.js';
import { BufferPool, SMALLEST_CLASS } from '../../src/nbd/buffer-pool.js';
import { RawClient } from './raw-client.js';

describe('BufferPool', () => {
  it('hands out views of size-class buffers and reuses what is given back', () => {
    const pool = new BufferPool(1 << 20);
    const small = pool.get(100);
    expect(small.length).toBe(100);
    expect(small.buffer.byteLength).toBe(SMALLEST_CLASS);
    const big = pool.get(5000);
    expect(big.buffer.byteLength).toBe(8192);
    pool.put(small);
    pool.put(big);
    expect(pool.retainedBytes).toBe(SMALLEST_CLASS + 8192);
    expect(pool.get(4096).buffer).toBe(small.buffer);
    expect(pool.get(8000).buffer).toBe(big.buffer);
    expect(pool.retainedBytes).toBe(0);
  });

  it('refuses a buffer it did not hand out, and keeps no more than its limit', () => {
    const pool = new BufferPool(8192);
    expect(() => pool.put(Buffer.alloc(5000))).toThrow(/did not hand out/);
    expect(() => pool.put(pool.get(8192).subarray(1))).toThrow(/did not hand out/);
    const a = pool.get(8192);
    const b = pool.get(8192);
    pool.put(a);
    pool.put(b); // over the limit: left to the GC
    expect(pool.retainedBytes).toBe(8192);
  });
});

/**
 * Holds every write for a while and checks, when it settles, that its payload still holds what
 * it held when the write began: a session that gave a payload back to the pool (or reused a
 * reply buffer) too early would have it overwritten by the requests that follow.
 */
class HoldingDevice extends LayerDevice {
  readonly changedUnderWrite: string[] = [];
  async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    const copy = Buffer.from(data);
    await new Promise((r) => setTimeout(r, 5 + (offset % 7)));
    if (!copy.equals(data)) this.changedUnderWrite.push(`${offset}+${data.length}`);
    return this.lower.write(offset, data, opts);
  }
}

describe('pooled payloads and replies through a real socket', () => {
  let dir: string;
  let store: BlockDevice;
  let device: HoldingDevice;
  let server: NbdServer;
  let port: number;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sanbox-pool-'));
    const img = path.join(dir, 'disk.img');
    await FileBackingStore.create(img, 8 << 20);
    store = await FileBackingStore.open(img);
    device = new HoldingDevice(store);
    server = new NbdServer({ catalog: { lookup: () => ({ name: 'disk', description: '', device }), list: () => [] } });
    ({ port } = await server.listen(0));
  });
  afterAll(async () => {
    await server.close(1000);
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a payload stays intact until its write settles; pipelined writes and reads read back exactly', async () => {
    const c = await RawClient.connect(port);
    await c.handshake({});
    const sizes = [512, 4096, 4096, 6000 - (6000 % 512), 65536, 131072];
    const writes: { offset: number; data: Buffer }[] = [];
    let offset = 0;
    for (let i = 0; i < 96; i++) {
      const len = sizes[i % sizes.length]!;
      const data = Buffer.alloc(len, (i * 37 + 11) & 0xff);
      data.writeUInt32BE(i, 0);
      writes.push({ offset, data });
      offset += len;
    }
    for (const [i, w] of writes.entries()) c.request(CMD.WRITE, { cookie: BigInt(i), offset: w.offset, payload: w.data });
    for (let i = 0; i < writes.length; i++) expect((await c.simpleReply()).error).toBe(0);
    expect(device.changedUnderWrite).toEqual([]);
    // Small reads pipelined in one go (done inline, so answered in order): their replies come
    // from the pool and leave joined into one pooled buffer per turn.
    const small = writes.filter((w) => w.data.length < 65536);
    for (const [i, w] of small.entries()) c.request(CMD.READ, { cookie: BigInt(i), offset: w.offset, length: w.data.length });
    for (const [i, w] of small.entries()) {
      const r = await c.simpleReply(w.data.length);
      expect([r.error, r.cookie]).toEqual([0, BigInt(i)]);
      expect(r.data.equals(w.data), `read ${i}`).toBe(true);
    }
    for (const w of writes.filter((x) => x.data.length >= 65536)) {
      c.request(CMD.READ, { offset: w.offset, length: w.data.length });
      expect((await c.simpleReply(w.data.length)).data.equals(w.data)).toBe(true);
    }
    c.close();
  });

  it('replies queued behind a client that does not read keep their pooled buffers until written', async () => {
    const c = await RawClient.connect(port);
    await c.handshake({});
    const block = (i: number) => Buffer.alloc(4096, (i * 13 + 5) & 0xff).fill(i & 0xff, 0, 4);
    const blocks = 2048; // 8 MiB of replies: more than the socket buffers hold
    for (let i = 0; i < blocks; i += 16) {
      c.request(CMD.WRITE, { cookie: BigInt(i), offset: i * 4096, payload: Buffer.concat(Array.from({ length: 16 }, (_, k) => block(i + k))) });
    }
    for (let i = 0; i < blocks; i += 16) expect((await c.simpleReply()).error).toBe(0);
    // In batches, each answered into a socket already full of the ones before (batches of 32 are
    // joined into one buffer, of 256 written as they are): a reply buffer given back before
    // its write completed would carry a later batch's data.
    c.socket.pause();
    for (let i = 0; i < blocks; ) {
      const batch = (i / 32) % 2 === 0 ? 32 : 256;
      for (const end = Math.min(blocks, i + batch); i < end; i++) c.request(CMD.READ, { cookie: BigInt(i), offset: i * 4096, length: 4096 });
      await new Promise((r) => setTimeout(r, 10));
    }
    c.socket.resume();
    for (let i = 0; i < blocks; i++) {
      const r = await c.simpleReply(4096);
      expect(r.cookie).toBe(BigInt(i));
      if (!r.data.equals(block(i))) expect.fail(`read ${i} came back with another block's data`);
    }
    c.close();
  });
});
