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
import { checkBlock, decodeBlock, encodeBlock, formatVerifyReport, formatWriteReport, Ledger, LedgerWriter, verifyImageFile, verifyLedger } from '../../../src/check/ledger/index.js';
import { serve, type Served } from '../../support/serve.js';
import { freePort } from '../../support/net.js';
import { startLyingServer } from '../lying-server.js';

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

  it('a killed writer (its last save behind): only versions above everything the save knows are accepted', () => {
    const l = new Ledger({ runId: 5, blocks: 8, blockSize: 4096 });
    l.issued(2, 4, 0);
    l.settle(2, 4, 'acked');
    l.issued(3, 9, 0);
    l.settle(3, 9, 'acked');
    expect(l.highestSeq()).toBe(9);
    const killed = { savedThrough: l.highestSeq() };
    expect(checkBlock(l, 2, encodeBlock(5, 0, 2, 12, 4096), killed)).toBeNull(); // issued after the save
    expect(checkBlock(l, 2, encodeBlock(5, 0, 2, 7, 4096), killed)?.kind).toBe('phantom'); // the save knows seq 7 was never written here
    expect(checkBlock(l, 2, encodeBlock(5, 0, 2, 1, 4096), killed)?.kind).toBe('stale');
    expect(checkBlock(l, 2, Buffer.alloc(4096), killed)?.kind).toBe('lost');
    expect(checkBlock(l, 2, encodeBlock(5, 0, 2, 12, 4096))?.kind).toBe('phantom');
  });
});

describe('ledger state file', () => {
  const good = () => {
    const l = new Ledger({ runId: 9, blocks: 4 });
    l.issued(1, 1, 0);
    l.settle(1, 1, 'acked');
    l.issued(1, 2, 0);
    return JSON.parse(JSON.stringify(l.toJSON()));
  };
  it('loads what it saved, and rejects every malformed field with its path', () => {
    expect(Ledger.fromJSON(good()).entries.get(1)!.acked).toEqual({ seq: 1, writer: 0 });
    const cases: [string, (j: any) => void, RegExp][] = [
      ['format', (j) => (j.format = 'sanbox-ledger/0'), /not a ledger file/],
      ['runId', (j) => (j.runId = -1), /runId/],
      ['blockSize', (j) => (j.blockSize = 1000), /blockSize/],
      ['blocks', (j) => (j.blocks = 0), /blocks/],
      ['initial', (j) => (j.initial = 'ones'), /initial/],
      ['entry index', (j) => (j.entries['7'] = j.entries['1']), /entries\[7\]/],
      ['acked', (j) => (j.entries['1'].acked = { seq: 'x' }), /entries\[1\]\.acked/],
      ['uncertain state', (j) => (j.entries['1'].uncertain[0].state = 'maybe'), /entries\[1\]\.uncertain\[0\]/],
      ['frozen', (j) => (j.entries['1'].frozen = 1), /frozen/],
    ];
    for (const [what, spoil, msg] of cases) {
      const j = good();
      spoil(j);
      expect(() => Ledger.fromJSON(j), what).toThrow(msg);
    }
    expect(() => Ledger.fromJSON([])).toThrow(/not a JSON object/);
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

describe('ledger against a server that drops acknowledged writes', () => {
  it('reports stale and lost blocks', async () => {
    const lie = await startLyingServer(50);
    try {
      const w = new LedgerWriter({ endpoints: [lie.uri], connections: 2, depth: 4, blocks: 128, seed: 14, durationMs: 1500, maxWrites: 3000 });
      const rep = await w.run();
      expect(rep.acked).toBe(rep.issued);
      const v = await verifyLedger(w.ledger, { endpoints: [lie.uri] });
      console.log(formatVerifyReport(v));
      expect(v.ok).toBe(false);
      expect(v.violations).toBeGreaterThan(0);
      expect(v.details.find((d) => d.block === 5)?.kind).toBe('stale');
      for (const k of Object.keys(v.violationsByKind)) expect(['stale', 'lost']).toContain(k);
    } finally {
      await lie.close();
    }
  });
});
