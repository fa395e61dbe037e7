/**
 * The acknowledged-write ledger, validated against `sanbox serve` (one process, no cache: an
 * acknowledged write is in the image file's page cache, so it survives a SIGKILL of the server),
 * and shown able to fail: rolled-back, torn, zeroed, misplaced blocks and a server that lies about
 * its writes are all reported as violations.
 */
import { mkdtempSync, openSync, readSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkBlock, decodeBlock, encodeBlock, formatVerifyReport, formatWriteReport, Ledger, LedgerWriter, verifyImageFile, verifyLedger } from './ledger.mjs';
import { serve, type Served } from '../serve.js';
import { freePort } from '../net.js';
import { FileBackingStore } from '../../../src/block/index.js';
import type { BlockDevice, WriteOptions } from '../../../src/block/index.js';
import { NbdServer } from '../../../src/nbd/index.js';

describe('block format', () => {
  it('round-trips and tells zero, stamp, mixed and garbage apart', () => {
    const a = encodeBlock(7, 1, 3, 10, 4096);
    const b = encodeBlock(7, 2, 3, 11, 4096);
    expect(decodeBlock(a)).toEqual({ kind: 'stamp', run: 7, writer: 1, block: 3, seq: 10 });
    expect(decodeBlock(Buffer.alloc(4096)).kind).toBe('zero');
    const torn = Buffer.concat([a.subarray(0, 2048), b.subarray(2048)]);
    const d = decodeBlock(torn);
    if (d.kind !== 'mixed') throw new Error(`expected mixed, got ${d.kind}`);
    expect(d.versions.map((v) => v.seq).sort()).toEqual([10, 11]);
    const flipped = Buffer.from(a);
    flipped[1000] ^= 1;
    expect(decodeBlock(flipped).kind).toBe('garbage');
    // Sectors swapped inside one version: every sector intact, but the layout is wrong.
    const swapped = Buffer.concat([a.subarray(512, 1024), a.subarray(0, 512), a.subarray(1024)]);
    expect(decodeBlock(swapped).kind).toBe('garbage');
    expect(decodeBlock(encodeBlock(7, 1, 3, 10, 512)).kind).toBe('stamp');
  });

  it('checkBlock accepts the latest ack or a newer uncertain write, nothing else', () => {
    const l = new Ledger({ runId: 5, blocks: 8, blockSize: 4096 });
    l.issued(2, 1, 0);
    l.settle(2, 1, 'acked');
    l.issued(2, 4, 0);
    l.settle(2, 4, 'acked');
    l.issued(2, 9, 1);
    l.settle(2, 9, 'inflight');
    expect(checkBlock(l, 2, encodeBlock(5, 0, 2, 4, 4096))).toBeNull();
    expect(checkBlock(l, 2, encodeBlock(5, 1, 2, 9, 4096))).toBeNull();
    expect(checkBlock(l, 2, encodeBlock(5, 0, 2, 1, 4096))?.kind).toBe('stale');
    expect(checkBlock(l, 2, encodeBlock(5, 0, 2, 7, 4096))?.kind).toBe('phantom');
    expect(checkBlock(l, 2, encodeBlock(5, 0, 3, 4, 4096))?.kind).toBe('misplaced');
    expect(checkBlock(l, 2, encodeBlock(6, 0, 2, 4, 4096))?.kind).toBe('foreign');
    expect(checkBlock(l, 2, Buffer.alloc(4096))?.kind).toBe('lost');
    expect(checkBlock(l, 3, Buffer.alloc(4096))).toBeNull(); // never written, initial zero
    expect(l.entries.get(2)!.frozen).toBe(true);
    // The ledger survives a save/load round trip.
    const back = Ledger.fromJSON(JSON.parse(JSON.stringify(l.toJSON())));
    expect(checkBlock(back, 2, encodeBlock(5, 1, 2, 9, 4096))).toBeNull();
    expect(checkBlock(back, 2, encodeBlock(5, 0, 2, 1, 4096))?.kind).toBe('stale');
  });
});

describe('ledger against sanbox serve', () => {
  let dir: string;
  let server: Served | null = null;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sanbox-ledger-'));
  });
  afterEach(async () => {
    await server?.kill();
    server = null;
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes a run without faults (several connections, overwrites)', async () => {
    server = await serve(dir, 0);
    const uri = server.uri('disk');
    const w = new LedgerWriter({ endpoints: [uri, uri], connections: 4, depth: 4, blocks: 512, seed: 11, durationMs: 2000, maxWrites: 8000 });
    const rep = await w.run();
    console.log(formatWriteReport(rep));
    expect(rep.acked).toBe(rep.issued);
    expect(rep.acked).toBeGreaterThan(512); // prefill plus overwrites
    expect(rep.inflightAtFault).toBe(0);
    const v = await verifyLedger(w.ledger, { endpoints: [uri] });
    console.log(formatVerifyReport(v));
    expect(v.ok).toBe(true);
    expect(v.blocksChecked).toBe(512);
    expect(v.ackedBlocks).toBe(512);
  });

  it('survives SIGKILL of the server mid-run and a restart (acked writes are in the page cache)', async () => {
    const port = await freePort();
    server = await serve(dir, port);
    const uri = server.uri('disk');
    const w = new LedgerWriter({ endpoints: [uri], connections: 4, depth: 8, blocks: 512, seed: 12, durationMs: 8000, maxWrites: 30_000, reconnectTimeoutMs: 20_000 });
    const done = w.run();
    try {
      await w.until((s) => s.acked >= 2000, 20_000);
      await server.kill('SIGKILL');
      server = await serve(dir, port);
      await w.until((s) => s.reconnects >= 1 && s.acked >= 4000, 20_000);
    } finally {
      w.stop();
    }
    const rep = await done;
    console.log(formatWriteReport(rep));
    expect(rep.faults.length).toBeGreaterThanOrEqual(1);
    expect(rep.reconnects).toBeGreaterThanOrEqual(1);
    const v = await verifyLedger(w.ledger, { endpoints: [uri] });
    console.log(formatVerifyReport(v));
    expect(v.ok).toBe(true);
    // Blocks whose write was in flight at the kill are frozen: they check pre-fault data.
    expect(rep.frozenBlocks).toBe(rep.inflightAtFault);
  });

  it('reports rolled-back, torn, zeroed, corrupted and misplaced blocks', async () => {
    server = await serve(dir, 0);
    const uri = server.uri('disk');
    const w = new LedgerWriter({ endpoints: [uri], connections: 2, depth: 4, blocks: 64, seed: 13, durationMs: 1000, maxWrites: 2000 });
    await w.run();
    const l = w.ledger;
    const bs = l.blockSize;
    // Tamper with the image file behind the server's back (same page cache as its fd).
    const fd = openSync(server.image(0), 'r+');
    try {
      const seqOf = (b: number) => l.entries.get(b)!.acked!.seq;
      const put = (b: number, buf: Buffer) => writeSync(fd, buf, 0, buf.length, l.offsetOf(b));
      // block 1: rolled back to an older version (what a stale cache copy would hold)
      put(1, encodeBlock(l.runId, 0, 1, seqOf(1) - 1, bs));
      // block 2: torn: first half the acked version, second half an older one
      put(2, Buffer.concat([encodeBlock(l.runId, 0, 2, seqOf(2), bs).subarray(0, bs / 2), encodeBlock(l.runId, 0, 2, seqOf(2) - 1, bs).subarray(bs / 2)]));
      // block 3: lost (zeroes)
      put(3, Buffer.alloc(bs));
      // block 4: one bit flipped
      const b4 = Buffer.alloc(bs);
      readSync(fd, b4, 0, bs, l.offsetOf(4));
      b4[100] ^= 0x10;
      put(4, b4);
      // block 5: holds block 6's data (a misdirected write)
      const b6 = Buffer.alloc(bs);
      readSync(fd, b6, 0, bs, l.offsetOf(6));
      put(5, b6);
    } finally {
      closeSync(fd);
    }
    const v = await verifyLedger(l, { endpoints: [uri] });
    console.log(formatVerifyReport(v));
    expect(v.ok).toBe(false);
    expect(v.violationsByKind).toEqual({ stale: 1, mixed: 1, lost: 1, garbage: 1, misplaced: 1 });
    expect(Object.fromEntries(v.details.map((d: { block: number; kind: string }) => [d.block, d.kind]))).toEqual({ 1: 'stale', 2: 'mixed', 3: 'lost', 4: 'garbage', 5: 'misplaced' });
    // The offline check over the image file sees the same.
    expect(verifyImageFile(l, server.image(0)).violationsByKind).toEqual(v.violationsByKind);
  });
});

/** Acks every write but drops every `dropEvery`th one, and every write to block 5 after its first. */
class LyingDevice implements BlockDevice {
  private n = 0;
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
  private frozen = 0;
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

describe('ledger against a server that drops acknowledged writes', () => {
  it('reports stale and lost blocks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sanbox-ledger-lie-'));
    const path = join(dir, 'lie.img');
    await FileBackingStore.create(path, 8 << 20);
    const store = await FileBackingStore.open(path);
    const exp = { name: 'lie', device: new LyingDevice(store, 50) };
    const nbd = new NbdServer({ catalog: { lookup: (n: string) => (n === 'lie' || n === '' ? exp : undefined), list: () => [exp] } });
    try {
      const { port } = await nbd.listen(0, '127.0.0.1');
      const uri = `nbd://127.0.0.1:${port}/lie`;
      const w = new LedgerWriter({ endpoints: [uri], connections: 2, depth: 4, blocks: 128, seed: 14, durationMs: 1500, maxWrites: 3000 });
      const rep = await w.run();
      expect(rep.acked).toBe(rep.issued);
      const v = await verifyLedger(w.ledger, { endpoints: [uri] });
      console.log(formatVerifyReport(v));
      expect(v.ok).toBe(false);
      expect(v.violations).toBeGreaterThan(0);
      expect(v.details.find((d) => d.block === 5)?.kind).toBe('stale');
      for (const k of Object.keys(v.violationsByKind)) expect(['stale', 'lost']).toContain(k);
    } finally {
      await nbd.close?.();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
