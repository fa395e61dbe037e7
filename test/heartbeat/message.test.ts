import { describe, expect, it } from 'vitest';
import { decodeHeartbeat, encodeHeartbeat, HB_AREA_BYTES, HB_BLOCK_BYTES, HB_MAGIC, HB_OFFSETS, HeartbeatEncodeError, MAX_SERIAL, nextSerial, serialAdvanced, splitArea, type HeartbeatMessage } from '../../src/heartbeat/index.js';
import { crc32c } from '../../src/native/index.js';

const msg = (over: Partial<HeartbeatMessage> = {}): HeartbeatMessage => ({
  serial: 42,
  timeMs: 1_764_000_000_123,
  senderId: 'prod-1',
  site: 'alpha-site',
  clusterName: 'c0',
  instance: 7,
  role: 'production',
  master: true,
  noticeSeq: 3,
  ...over,
});

/** Re-seals the CRC after a deliberate edit, so a later check (not the CRC) catches it. */
function reseal(buf: Buffer): Buffer {
  buf.writeUInt32LE(0, HB_OFFSETS.crc);
  buf.writeUInt32LE(crc32c(buf), HB_OFFSETS.crc);
  return buf;
}

describe('heartbeat block', () => {
  it('sizes: 4 KiB block, 16 x 512 B notice ring after it', () => {
    expect(HB_BLOCK_BYTES).toBe(4096);
    expect(HB_AREA_BYTES).toBe(4096 + 16 * 512);
    expect(HB_MAGIC.toString('latin1')).toBe('SBXHBEAT');
  });

  it('round-trips every field', () => {
    for (const m of [msg(), msg({ role: 'standby', master: false, noticeSeq: 0, serial: MAX_SERIAL, timeMs: 0, instance: 0 }), msg({ senderId: 'ü'.repeat(32), site: 'x'.repeat(64) })]) {
      const buf = encodeHeartbeat(m);
      expect(buf.length).toBe(HB_BLOCK_BYTES);
      expect(decodeHeartbeat(buf)).toEqual({ ok: true, message: m });
    }
  });

  it('lays fields out little-endian at the documented offsets', () => {
    const buf = encodeHeartbeat(msg());
    expect(buf.subarray(0, 8).toString('latin1')).toBe('SBXHBEAT');
    expect(buf.readUInt16LE(HB_OFFSETS.version)).toBe(1);
    expect(buf.readUInt16LE(HB_OFFSETS.flags)).toBe(1);
    expect(buf.readUInt32LE(HB_OFFSETS.serial)).toBe(42);
    expect(buf.readUInt32LE(HB_OFFSETS.instance)).toBe(7);
    expect(Number(buf.readBigUInt64LE(HB_OFFSETS.timeMs))).toBe(1_764_000_000_123);
    expect(buf.readUInt32LE(HB_OFFSETS.noticeSeq)).toBe(3);
    expect(buf.readUInt8(HB_OFFSETS.senderId)).toBe(6);
    expect(buf.subarray(HB_OFFSETS.senderId + 1, HB_OFFSETS.senderId + 7).toString()).toBe('prod-1');
    const copy = Buffer.from(buf);
    copy.writeUInt32LE(0, HB_OFFSETS.crc);
    expect(buf.readUInt32LE(HB_OFFSETS.crc)).toBe(crc32c(copy));
  });

  it('refuses fields out of range when encoding', () => {
    expect(() => encodeHeartbeat(msg({ senderId: 'x'.repeat(65) }))).toThrow(HeartbeatEncodeError);
    expect(() => encodeHeartbeat(msg({ site: 'é'.repeat(33) }))).toThrow(/66 bytes/);
    expect(() => encodeHeartbeat(msg({ senderId: '' }))).toThrow(/empty/);
    expect(() => encodeHeartbeat(msg({ serial: 0 }))).toThrow(/serial/);
    expect(() => encodeHeartbeat(msg({ serial: MAX_SERIAL + 1 }))).toThrow(/serial/);
    expect(() => encodeHeartbeat(msg({ timeMs: -1 }))).toThrow(/timeMs/);
    expect(() => encodeHeartbeat(msg({ timeMs: 1.5 }))).toThrow(/timeMs/);
    expect(() => encodeHeartbeat(msg({ instance: -1 }))).toThrow(/instance/);
    expect(() => encodeHeartbeat(msg({ role: 'other' as 'production' }))).toThrow(/role/);
  });

  it('blank: an all-zero block (a never-written volume)', () => {
    expect(decodeHeartbeat(Buffer.alloc(HB_BLOCK_BYTES))).toMatchObject({ ok: false, reason: 'blank' });
  });

  it('bad-length', () => {
    expect(decodeHeartbeat(Buffer.alloc(512))).toMatchObject({ ok: false, reason: 'bad-length' });
    expect(decodeHeartbeat(Buffer.alloc(HB_AREA_BYTES))).toMatchObject({ ok: false, reason: 'bad-length' });
  });

  it('bad-crc: any flipped byte', () => {
    const good = encodeHeartbeat(msg());
    for (const off of [HB_OFFSETS.serial, HB_OFFSETS.timeMs + 3, HB_OFFSETS.senderId + 2, 1000, HB_BLOCK_BYTES - 1, HB_OFFSETS.crc]) {
      const buf = Buffer.from(good);
      buf[off] = buf[off]! ^ 0x40;
      expect(decodeHeartbeat(buf), `offset ${off}`).toMatchObject({ ok: false, reason: 'bad-crc' });
    }
  });

  it('bad-magic and bad-version (checked before the CRC)', () => {
    const m = Buffer.from(encodeHeartbeat(msg()));
    m[0] = 0x41;
    expect(decodeHeartbeat(m)).toMatchObject({ ok: false, reason: 'bad-magic' });
    const v = Buffer.from(encodeHeartbeat(msg()));
    v.writeUInt16LE(2, HB_OFFSETS.version);
    expect(decodeHeartbeat(v)).toMatchObject({ ok: false, reason: 'bad-version', detail: expect.stringContaining('version 2') });
  });

  it('bad-field: a sealed block with an impossible field', () => {
    const cases: Array<[string, (b: Buffer) => void]> = [
      ['serial 0', (b) => b.writeUInt32LE(0, HB_OFFSETS.serial)],
      ['unknown flags', (b) => b.writeUInt16LE(4, HB_OFFSETS.flags)],
      ['reserved', (b) => b.writeUInt32LE(1, HB_OFFSETS.reserved)],
      ['string too long', (b) => b.writeUInt8(65, HB_OFFSETS.site)],
      ['empty sender', (b) => b.fill(0, HB_OFFSETS.senderId, HB_OFFSETS.senderId + 65)],
      ['garbage after string', (b) => (b[HB_OFFSETS.senderId + 60] = 1)],
      ['invalid UTF-8', (b) => (b[HB_OFFSETS.senderId + 1] = 0xff)],
      ['tail not zero', (b) => (b[4000] = 9)],
      ['time above 2^53', (b) => b.writeBigUInt64LE(2n ** 60n, HB_OFFSETS.timeMs)],
    ];
    for (const [name, edit] of cases) {
      const buf = Buffer.from(encodeHeartbeat(msg()));
      edit(buf);
      expect(decodeHeartbeat(reseal(buf)), name).toMatchObject({ ok: false, reason: 'bad-field' });
    }
  });

  it('splitArea gives the block and the ring', () => {
    const area = Buffer.alloc(HB_AREA_BYTES);
    encodeHeartbeat(msg()).copy(area);
    const { block, notices } = splitArea(area);
    expect(decodeHeartbeat(block).ok).toBe(true);
    expect(notices.length).toBe(16 * 512);
    expect(() => splitArea(Buffer.alloc(HB_BLOCK_BYTES))).toThrow(RangeError);
  });
});

describe('serials', () => {
  it('nextSerial counts up and wraps MAX_SERIAL to 1, never 0', () => {
    expect(nextSerial(0)).toBe(1);
    expect(nextSerial(1)).toBe(2);
    expect(nextSerial(MAX_SERIAL - 1)).toBe(MAX_SERIAL);
    expect(nextSerial(MAX_SERIAL)).toBe(1);
    expect(() => nextSerial(-1)).toThrow(RangeError);
    expect(() => nextSerial(MAX_SERIAL + 1)).toThrow(RangeError);
    expect(() => nextSerial(1.5)).toThrow(RangeError);
  });

  it('serialAdvanced allows the wrap and skipped serials, not going back', () => {
    expect(serialAdvanced(1, 2)).toBe(true);
    expect(serialAdvanced(1, 50)).toBe(true);
    expect(serialAdvanced(0, 7)).toBe(true);
    expect(serialAdvanced(5, 5)).toBe(false);
    expect(serialAdvanced(5, 4)).toBe(false);
    expect(serialAdvanced(1000, 1)).toBe(false);
    expect(serialAdvanced(MAX_SERIAL, 1)).toBe(true);
    expect(serialAdvanced(MAX_SERIAL - 2, 3)).toBe(true);
    expect(serialAdvanced(1, MAX_SERIAL)).toBe(false);
    expect(serialAdvanced(7, 0)).toBe(false);
    let s = MAX_SERIAL - 3;
    for (let i = 0; i < 8; i++) {
      const n = nextSerial(s);
      expect(serialAdvanced(s, n)).toBe(true);
      expect(serialAdvanced(n, s)).toBe(false);
      s = n;
    }
    expect(s).toBe(5);
  });
});
