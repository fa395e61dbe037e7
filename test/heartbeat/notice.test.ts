import { describe, expect, it } from 'vitest';
import {
  classifyLevel,
  COMPONENT_KINDS,
  decodeNotice,
  encodeNotice,
  LEVEL_TABLE,
  missedNotices,
  newNotices,
  NOTICE_LEVELS,
  NOTICE_OFFSETS,
  NOTICE_SLOT_BYTES,
  NOTICE_SLOTS,
  noticeSlot,
  type FailureNotice,
} from '../../src/heartbeat/index.js';
import { crc32c } from '../../src/native/index.js';

const notice = (seq: number, over: Partial<FailureNotice> = {}): FailureNotice => ({
  seq,
  componentId: 'alpha:hb1',
  componentKind: 'heartbeat-volume',
  details: `notice ${seq}: heartbeat volume stopped answering`,
  address: 'alpha:lun 5',
  detectedAtMs: 1_764_000_000_000 + seq,
  level: 'MODERATE',
  senderId: 'prod-1',
  ...over,
});

function ring(seqs: number[]): Buffer {
  const area = Buffer.alloc(NOTICE_SLOTS * NOTICE_SLOT_BYTES);
  for (const s of seqs) encodeNotice(notice(s)).copy(area, noticeSlot(s) * NOTICE_SLOT_BYTES);
  return area;
}

describe('failure notice slot', () => {
  it('round-trips, every level and kind', () => {
    for (const level of NOTICE_LEVELS) {
      for (const componentKind of COMPONENT_KINDS) {
        const n = notice(9, { level, componentKind, address: '', details: 'd'.repeat(256) });
        const buf = encodeNotice(n);
        expect(buf.length).toBe(NOTICE_SLOT_BYTES);
        expect(decodeNotice(buf)).toEqual({ ok: true, notice: n });
      }
    }
  });

  it('layout: magic, level and kind indexes, seq', () => {
    const buf = encodeNotice(notice(5, { level: 'SERIOUS', componentKind: 'sp' }));
    expect(buf.subarray(0, 8).toString('latin1')).toBe('SBXNOTIC');
    expect(buf.readUInt8(NOTICE_OFFSETS.level)).toBe(1);
    expect(buf.readUInt8(NOTICE_OFFSETS.kind)).toBe(2);
    expect(buf.readUInt32LE(NOTICE_OFFSETS.seq)).toBe(5);
  });

  it('refuses bad fields when encoding', () => {
    expect(() => encodeNotice(notice(0))).toThrow(/seq/);
    expect(() => encodeNotice(notice(1, { details: 'x'.repeat(257) }))).toThrow(/details/);
    expect(() => encodeNotice(notice(1, { componentId: '' }))).toThrow(/componentId/);
    expect(() => encodeNotice(notice(1, { level: 'LOW' as 'SERIOUS' }))).toThrow(/level/);
    expect(() => encodeNotice(notice(1, { componentKind: 'disk' as 'sp' }))).toThrow(/kind/);
  });

  it('decode failures: blank, bad-length, bad-magic, bad-version, bad-crc, bad-field', () => {
    expect(decodeNotice(Buffer.alloc(NOTICE_SLOT_BYTES))).toMatchObject({ reason: 'blank' });
    expect(decodeNotice(Buffer.alloc(100))).toMatchObject({ reason: 'bad-length' });
    const m = encodeNotice(notice(1));
    m[1] = 0;
    expect(decodeNotice(m)).toMatchObject({ reason: 'bad-magic' });
    const v = encodeNotice(notice(1));
    v.writeUInt16LE(9, NOTICE_OFFSETS.version);
    expect(decodeNotice(v)).toMatchObject({ reason: 'bad-version' });
    const c = encodeNotice(notice(1));
    c[300] = c[300]! ^ 1;
    expect(decodeNotice(c)).toMatchObject({ reason: 'bad-crc' });
    const f = encodeNotice(notice(1));
    f.writeUInt8(4, NOTICE_OFFSETS.level);
    f.writeUInt32LE(0, NOTICE_OFFSETS.crc);
    f.writeUInt32LE(crc32c(f), NOTICE_OFFSETS.crc);
    expect(decodeNotice(f)).toMatchObject({ reason: 'bad-field', detail: expect.stringContaining('level') });
  });
});

describe('notice ring', () => {
  it('noticeSlot is (seq - 1) % 16', () => {
    expect(noticeSlot(1)).toBe(0);
    expect(noticeSlot(16)).toBe(15);
    expect(noticeSlot(17)).toBe(0);
    expect(() => noticeSlot(0)).toThrow(RangeError);
  });

  it('newNotices returns seq > lastSeen in order', () => {
    const area = ring([1, 2, 3, 4, 5]);
    expect(newNotices(area, 0).map((n) => n.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(newNotices(area, 3).map((n) => n.seq)).toEqual([4, 5]);
    expect(newNotices(area, 5)).toEqual([]);
    expect(newNotices(ring([]), 0)).toEqual([]);
  });

  it('a reader that fell behind gets what is left and sees the gap', () => {
    const seqs = Array.from({ length: 40 }, (_, i) => i + 1);
    const area = ring(seqs); // slots hold 25..40
    const got = newNotices(area, 3);
    expect(got.map((n) => n.seq)).toEqual(seqs.slice(24));
    expect(missedNotices(3, got)).toBe(21);
    expect(missedNotices(24, newNotices(area, 24))).toBe(0);
    expect(missedNotices(40, [])).toBe(0);
  });

  it('skips corrupt and misplaced slots', () => {
    const area = ring([1, 2, 3]);
    area[NOTICE_SLOT_BYTES + 100] ^= 0xff; // seq 2 corrupt
    encodeNotice(notice(7)).copy(area, 10 * NOTICE_SLOT_BYTES); // seq 7 belongs in slot 6
    expect(newNotices(area, 0).map((n) => n.seq)).toEqual([1, 3]);
    expect(() => newNotices(Buffer.alloc(10), 0)).toThrow(RangeError);
  });
});

describe('classifyLevel', () => {
  const rows: Array<[Parameters<typeof classifyLevel>[0], Parameters<typeof classifyLevel>[1], string, string]> = [
    ['array', { failed: true }, 'SYSTEM DOWN', 'array-unreachable'],
    ['sp', { failed: true, redundant: true }, 'SERIOUS', 'sp-down-peer-took-over'],
    ['sp', { failed: true }, 'SYSTEM DOWN', 'both-sps-down'],
    ['lun', { failed: true, cacheDirty: true }, 'SERIOUS', 'lun-cache-dirty'],
    ['lun', { failed: true }, 'SERIOUS', 'lun-failed'],
    ['heartbeat-volume', { failed: true, redundant: true }, 'MODERATE', 'heartbeat-volume-failed'],
    ['heartbeat-volume', { failed: true }, 'SERIOUS', 'all-heartbeat-volumes-failed'],
    ['host', { failed: true, redundant: true }, 'SERIOUS', 'host-down'],
    ['host', { failed: true }, 'SYSTEM DOWN', 'last-host-down'],
    ['network', { failed: true }, 'MODERATE', 'network-down'],
    ['link', { failed: true }, 'SERIOUS', 'remote-link-down'],
    ['link', { failed: false, recovered: true }, 'TEMPORALLY', 'transient-recovered'],
    ['lun', { failed: false, recovered: true }, 'TEMPORALLY', 'transient-recovered'],
  ];
  it.each(rows)('%s %j -> %s (%s)', (kind, facts, level, reason) => {
    expect(classifyLevel(kind, facts)).toMatchObject({ level, reason, detail: expect.any(String) });
  });
  it('covers every kind and throws on nothing to report', () => {
    expect(Object.keys(LEVEL_TABLE).sort()).toEqual([...COMPONENT_KINDS].sort());
    expect(() => classifyLevel('sp', { failed: false })).toThrow(/nothing to classify/);
    expect(() => classifyLevel('sp', { failed: true, recovered: true })).toThrow(/both/);
    expect(() => classifyLevel('disk' as 'sp', { failed: true })).toThrow(/unknown/);
  });
});
