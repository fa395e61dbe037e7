import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writelog, WritelogOverflowError, FLAG_ACK_REQUESTED, type JournalRecord } from '../../src/native/index.js';
import { addon } from '../../src/native/addon.js';
import { ManualClock } from '../support/clock.js';

type Impl = 'ts' | 'native';
const impls: Impl[] = addon ? ['ts', 'native'] : ['ts'];
const root = mkdtempSync(join(tmpdir(), 'sanbox-wl-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirn = 0;
const freshDir = () => mkdtempSync(join(root, `d${dirn++}-`));
/** A fresh manual clock for one writelog: every reading 1 ms after the previous one. */
const clock = () => {
  const c = new ManualClock(1_700_000_000_001, 1);
  return () => c.now();
};
const plain = (r: JournalRecord) => ({ ...r, data: Buffer.from(r.data).toString('hex') });
const all = (w: Writelog, from = 0) => {
  const out: JournalRecord[] = [];
  for (;;) {
    const b = w.readBatch(from, { maxCount: 100 });
    if (!b.count) return out;
    out.push(...b);
    from = b.lastSeq + 1;
  }
};
const payload = (seq: number, len: number) => {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (seq * 31 + i * 7) & 0xff;
  return b;
};

describe.each(impls)('Writelog (%s)', (impl) => {
  it('appends, reads in batches, acks, reports usage', () => {
    const w = Writelog.open({ capacity: 64 * 1024, impl, now: clock() });
    expect(w.append(3, 4096, payload(1, 100), FLAG_ACK_REQUESTED)).toBe(1);
    const r = w.appendMany([
      { lunId: 1, offset: 0, data: payload(2, 10) },
      { lunId: 2, offset: 8192, data: payload(3, 0) },
      { lunId: 1, offset: 512, data: payload(4, 4096) },
    ]);
    expect(r).toEqual({ firstSeq: 2, appended: 3, overflow: false });
    const b = w.readBatch(1, { maxCount: 2 });
    expect(b.count).toBe(2);
    const recs = [...b];
    expect(recs[0]).toMatchObject({ seq: 1, lunId: 3, offset: 4096, flags: FLAG_ACK_REQUESTED });
    expect(Buffer.compare(recs[0]!.data, payload(1, 100))).toBe(0);
    expect(recs[1]).toMatchObject({ seq: 2, lunId: 1, offset: 0 });
    // byte limit: at least one record, then whole records only
    expect(w.readBatch(1, { maxBytes: 1 }).count).toBe(1);
    expect(w.readBatch(1, { maxBytes: 64 + 104 + 64 + 16 }).count).toBe(2);
    expect(w.readBatch(4).lastSeq).toBe(4);
    expect(w.readBatch(5).count).toBe(0);
    let u = w.usage();
    expect(u).toMatchObject({ entries: 4, dataBytes: 4206, firstSeq: 1, lastSeq: 4, nextSeq: 5 });
    expect(u.oldestAgeMs).toBeGreaterThan(0);
    expect(w.ack(2)).toBe(2);
    u = w.usage();
    expect(u).toMatchObject({ entries: 2, firstSeq: 3 });
    expect(w.readBatch(1).firstSeq).toBe(3);
    expect(() => w.ack(5)).toThrow(RangeError);
    w.ack(4);
    expect(w.usage()).toMatchObject({ entries: 0, dataBytes: 0, usedBytes: 0, percent: 0, firstSeq: -1 });
  });

  it('reports overflow and never overwrites unacknowledged records', () => {
    const w = Writelog.open({ capacity: 16 * 1024, impl, now: clock() });
    let n = 0;
    for (;;) {
      try {
        w.append(0, n * 4096, payload(n, 1000));
        n++;
      } catch (e) {
        expect(e).toBeInstanceOf(WritelogOverflowError);
        expect((e as WritelogOverflowError).code).toBe('ESANBOX_WL_OVERFLOW');
        break;
      }
    }
    expect(n).toBe(15);
    const r = w.appendMany([{ lunId: 0, offset: 0, data: payload(0, 1000) }]);
    expect(r.appended).toBe(0);
    expect(r.overflow).toBe(true);
    expect(all(w).map((x) => x.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    w.ack(5);
    // wraps around now
    for (let i = 0; i < 5; i++) w.append(0, 0, payload(100 + i, 1000));
    const got = all(w);
    expect(got.map((x) => x.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 6));
    expect(Buffer.compare(got[14]!.data, payload(104, 1000))).toBe(0);
    expect(() => w.append(0, 0, Buffer.alloc(20000))).toThrow(/larger than writelog segment/);
  });

  it('chains extensions in near overflow and releases them when drained', () => {
    const w = Writelog.open({ capacity: 16 * 1024, maxExtensions: 2, extensionCapacity: 8192, extendAtPercent: 80, releaseBelowPercent: 30, impl, now: clock() });
    let seq = 0;
    for (let i = 0; i < 30; i++) {
      const r = w.appendMany([{ lunId: 0, offset: 0, data: payload(i, 1000) }]);
      if (r.overflow) break;
      seq = r.firstSeq;
    }
    const u = w.usage();
    expect(u.extensionsInUse).toBe(2);
    expect(u.extensionsFree).toBe(0);
    expect(all(w).map((x) => x.seq)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
    w.ack(seq);
    w.append(0, 0, payload(999, 10)); // drained: back on the main segment
    expect(w.usage()).toMatchObject({ extensionsInUse: 0, entries: 1 });
    expect(all(w)[0]!.seq).toBe(seq + 1);
  });

  it('persists and recovers across close/open, all durability modes', async () => {
    for (const durability of ['none', 'group', 'fdatasync'] as const) {
      const dir = freshDir();
      const w = Writelog.open({ dir, capacity: 32 * 1024, maxExtensions: 1, durability, impl, now: clock(), groupCommitMs: 1 });
      for (let i = 1; i <= 40; i++) {
        const r = w.appendMany([{ lunId: i % 3, offset: i * 512, data: payload(i, 300 + i) }]);
        if (r.overflow) break;
        if (i % 7 === 0) w.ack(i - 3);
      }
      const s = w.append(1, 0, payload(77, 5));
      await w.durable(s);
      const before = all(w).map(plain);
      await w.close();
      const w2 = Writelog.open({ dir, capacity: 32 * 1024, maxExtensions: 1, durability, impl, now: clock() });
      expect(w2.recovery).toMatchObject({ torn: false, damaged: false, droppedAfterGap: 0 });
      expect(all(w2).map(plain)).toEqual(before);
      expect(w2.append(0, 0, payload(1, 1))).toBe(s + 1);
      await w2.close();
    }
  });
});

/** Random appends / acks / reads against both implementations: identical results. */
describe('differential: native vs TS writelog', () => {
  const op = fc.oneof(
    fc.record({ k: fc.constant('append' as const), n: fc.integer({ min: 1, max: 6 }), len: fc.integer({ min: 0, max: 3000 }), lun: fc.nat(3) }),
    fc.record({ k: fc.constant('ack' as const), back: fc.nat(8) }),
    fc.record({ k: fc.constant('read' as const), back: fc.nat(10), maxBytes: fc.integer({ min: 1, max: 20000 }), maxCount: fc.integer({ min: 1, max: 9 }) }),
  );
  const run = (files: boolean) =>
    fc.assert(
      fc.property(fc.array(op, { maxLength: 50 }), fc.integer({ min: 2, max: 5 }), (ops, kib8) => {
        const mk = (impl: Impl) =>
          Writelog.open({ dir: files ? freshDir() : undefined, capacity: kib8 * 8192, maxExtensions: 2, extensionCapacity: 8192, durability: 'none', impl, now: clock() });
        const t = mk('ts'), n = mk('native');
        let acked = 0;
        let k = 0;
        for (const o of ops) {
          if (o.k === 'append') {
            const recs = Array.from({ length: o.n }, (_, i) => ({ lunId: o.lun, offset: (k + i) * 512, data: payload(k + i, o.len), flags: i & 1 }));
            k += o.n;
            expect(n.appendMany(recs)).toEqual(t.appendMany(recs));
          } else if (o.k === 'ack') {
            const s = Math.max(acked, t.next - 1 - o.back);
            if (s < t.next) {
              expect(n.ack(s)).toBe(t.ack(s));
              acked = s;
            }
          } else {
            const from = Math.max(0, t.next - o.back);
            const a = t.readBatch(from, o), b = n.readBatch(from, o);
            expect([...b].map(plain)).toEqual([...a].map(plain));
          }
          expect(n.usage()).toEqual(t.usage());
        }
        if (files) {
          // Cross-recovery is format-level: each reopens its own files after a crash.
          t.abandon();
          n.abandon();
        }
      }),
      { numRuns: Number(process.env.SANBOX_DIFF_RUNS ?? (files ? 40 : 150)) },
    );
  it.skipIf(!addon)('agree in memory', () => run(false));
  it.skipIf(!addon)('agree on files', () => run(true));
});
