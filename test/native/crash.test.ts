/**
 * Crash tests: build a journal on files, "crash" (drop the process state without a clean close),
 * then truncate, tear or corrupt the files at seeded random points. Recovery must yield a valid
 * prefix of what was appended (every record identical to the one appended with that sequence
 * number, consecutive sequence numbers), or throw a clear error; never garbage.
 */
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync, openSync, closeSync, writeSync, ftruncateSync, fstatSync, readSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writelog, type JournalRecord } from '../../src/native/index.js';
import { addon } from '../../src/native/addon.js';
import { fcSeed } from '../support/random.js';

type Impl = 'ts' | 'native';
const impls: Impl[] = addon ? ['ts', 'native'] : ['ts'];
const root = mkdtempSync(join(tmpdir(), 'sanbox-crash-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dn = 0;

const payload = (seq: number, len: number) => {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (seq * 131 + i * 17 + 5) & 0xff;
  return b;
};
const readAll = (w: Writelog) => {
  const out: JournalRecord[] = [];
  let from = 0;
  for (;;) {
    const b = w.readBatch(from, { maxCount: 200 });
    if (!b.count) return out;
    out.push(...b);
    from = b.lastSeq + 1;
  }
};

type Damage = { kind: 'none' } | { kind: 'truncate' | 'flip' | 'zero' | 'tear'; file: number; at: number; anywhere: number; len: number; x: number };

describe.each(impls)('crash recovery (%s)', (impl) => {
  it('recovers a valid prefix or fails clearly', () => {
    const outcome = { recovered: 0, damagedRecovered: 0, openError: 0, readError: 0 };
    const damage = fc.oneof(
      fc.constant<Damage>({ kind: 'none' }),
      fc.record({
        kind: fc.constantFrom('truncate' as const, 'flip' as const, 'zero' as const, 'tear' as const),
        file: fc.nat(2),
        at: fc.integer({ min: 0, max: 2 ** 30 }),
        anywhere: fc.integer({ min: 0, max: 4 }),
        len: fc.integer({ min: 1, max: 600 }),
        x: fc.integer({ min: 1, max: 255 }),
      }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2500 }), fc.nat(4)), { minLength: 1, maxLength: 60 }),
        damage,
        fc.integer({ min: 1, max: 50 }),
        (appends, dmg, metaEvery) => {
          const dir = mkdtempSync(join(root, `c${dn++}-`));
          const opts = { dir, capacity: 24 * 1024, maxExtensions: 1, extensionCapacity: 16 * 1024, durability: 'none' as const, impl, metaEveryAppends: metaEvery, metaEveryMs: 1e9 };
          const w = Writelog.open(opts);
          const sent = new Map<number, { lun: number; off: number; len: number }>();
          let acked = 0;
          for (const [len, ackBack] of appends) {
            const seq = w.next;
            const r = w.appendMany([{ lunId: seq % 5, offset: seq * 4096, data: payload(seq, len) }]);
            if (r.appended) sent.set(seq, { lun: seq % 5, off: seq * 4096, len });
            if (r.overflow || ackBack === 0) {
              const s = Math.max(acked, w.next - 1 - ackBack);
              if (s > acked) {
                w.ack(s);
                acked = s;
              }
            }
          }
          const last = w.next - 1;
          w.abandon(); // crash: no clean metadata write
          // Damage a file at a seeded point.
          const files = readdirSync(dir).filter((f) => f.endsWith('.wl')).sort();
          if (dmg.kind !== 'none') {
            const f = join(dir, files[dmg.file % files.length]!);
            const fd = openSync(f, 'r+');
            const size = fstatSync(fd).size;
            // Aim inside the data area most of the time (the interesting case), sometimes anywhere
            // (segment header, metadata slots).
            const dataStart = f.endsWith('writelog.wl') ? 4096 + 2 * 65536 : 4096;
            const at = dmg.anywhere === 0 ? dmg.at % size : dataStart + (dmg.at % (size - dataStart));
            if (dmg.kind === 'truncate') ftruncateSync(fd, at);
            else if (dmg.kind === 'flip') {
              const b = Buffer.alloc(1);
              readSync(fd, b, 0, 1, at);
              b[0]! ^= dmg.x;
              writeSync(fd, b, 0, 1, at);
            } else writeSync(fd, Buffer.alloc(Math.min(dmg.len, size - at), dmg.kind === 'zero' ? 0 : dmg.x), 0, Math.min(dmg.len, size - at), at);
            closeSync(fd);
          }
          let w2: Writelog;
          try {
            w2 = Writelog.open(opts);
          } catch (e) {
            // A clear error is acceptable, never a crash of another kind.
            expect((e as { code?: string }).code).toBe('ESANBOX_CORRUPT');
            outcome.openError++;
            if (process.env.SANBOX_CRASH_VERBOSE) console.log('open error', dmg.kind, (e as Error).message);
            return;
          }
          let recs: JournalRecord[];
          try {
            recs = readAll(w2);
          } catch (e) {
            // Corruption found on read (CRC verification) is a clear error too.
            expect((e as { code?: string }).code).toBe('ESANBOX_CORRUPT');
            w2.abandon();
            outcome.readError++;
            return;
          }
          for (let i = 0; i < recs.length; i++) {
            const r = recs[i]!;
            const s = sent.get(r.seq);
            expect(s, `seq ${r.seq} was never appended`).toBeDefined();
            if (i > 0) expect(r.seq).toBe(recs[i - 1]!.seq + 1);
            expect(r.lunId).toBe(s!.lun);
            expect(r.offset).toBe(s!.off);
            expect(Buffer.compare(r.data, payload(r.seq, s!.len))).toBe(0);
          }
          if (recs.length) expect(recs[recs.length - 1]!.seq).toBeLessThanOrEqual(last);
          if (dmg.kind === 'none') {
            // Undamaged: everything unacknowledged is back (acked records may reappear).
            expect(recs.length ? recs[recs.length - 1]!.seq : acked).toBe(last);
            if (recs.length) expect(recs[0]!.seq).toBeLessThanOrEqual(acked + 1);
            expect(w2.recovery).toMatchObject({ torn: false, damaged: false, droppedAfterGap: 0 });
          }
          outcome.recovered++;
          if (dmg.kind !== 'none') outcome.damagedRecovered++;
          // The recovered journal keeps working.
          // Sequence numbers are never reused: the next one follows the last recovered record and
          // is never below what the metadata says was handed out.
          const next = w2.next;
          if (recs.length) expect(next).toBeGreaterThan(recs[recs.length - 1]!.seq);
          const s2 = w2.append(0, 0, payload(0, 100));
          expect(s2).toBe(next);
          w2.abandon();
          rmSync(dir, { recursive: true, force: true });
        },
      ),
      { numRuns: Number(process.env.SANBOX_CRASH_RUNS ?? 150), ...fcSeed(Number(process.env.SANBOX_CRASH_SEED ?? 20261121)) },
    );
    // Most damage must be survivable (a torn or corrupt record drops a suffix), not an error.
    expect(outcome.damagedRecovered).toBeGreaterThan(outcome.openError + outcome.readError);
    if (process.env.SANBOX_CRASH_VERBOSE) console.log(impl, outcome);
  });

  it('drops a torn last record', () => {
    const dir = mkdtempSync(join(root, `t${dn++}-`));
    const opts = { dir, capacity: 64 * 1024, durability: 'none' as const, impl };
    const w = Writelog.open(opts);
    for (let i = 1; i <= 5; i++) w.append(1, i, payload(i, 1000));
    w.abandon();
    // The 5th record starts at data offset 4 * 1064; tear its second half.
    const fd = openSync(join(dir, 'writelog.wl'), 'r+');
    const dataStart = 4096 + 2 * 65536;
    writeSync(fd, Buffer.alloc(500, 0xee), 0, 500, dataStart + 4 * 1064 + 564);
    closeSync(fd);
    const w2 = Writelog.open(opts);
    expect(w2.recovery).toMatchObject({ records: 4, lastSeq: 4, torn: true });
    expect(readAll(w2).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(w2.append(1, 0, payload(9, 10))).toBe(5);
    w2.abandon();
  });
});

describe('recovery across implementations', () => {
  it.skipIf(!addon)('files written by one implementation recover in the other', async () => {
    for (const [a, b] of [['ts', 'native'], ['native', 'ts']] as const) {
      const dir = mkdtempSync(join(root, `x${dn++}-`));
      const w = Writelog.open({ dir, capacity: 16 * 1024, maxExtensions: 1, durability: 'none', impl: a });
      for (let i = 1; i <= 25; i++) {
        w.append(i, i * 8, payload(i, 700));
        if (i % 4 === 0) w.ack(i - 2);
      }
      const before = readAll(w).map((r) => ({ ...r, data: r.data.toString('hex') }));
      w.abandon();
      const w2 = Writelog.open({ dir, capacity: 16 * 1024, maxExtensions: 1, durability: 'none', impl: b });
      const after = readAll(w2).map((r) => ({ ...r, data: r.data.toString('hex') }));
      expect(after.slice(after.length - before.length)).toEqual(before);
      await w2.close();
    }
  });
});
