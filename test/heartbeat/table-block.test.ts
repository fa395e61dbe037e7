// The status table's block on a heartbeat volume: a round trip, and every way a block is refused.
import { describe, expect, it } from 'vitest';
import { TABLE_BLOCK_BYTES, TABLE_OFFSET, HB_AREA_BYTES, HB_VOLUME_MIN_BYTES, decodeTableBlock, emptyTable, encodeTableBlock, installDevice } from '../../src/heartbeat/index.js';

function table() {
  const r = installDevice(emptyTable(), { mirror: 'hb0', address: 'alpha:hb0>bravo:hb0' });
  if (!r.ok) throw new Error(r.detail);
  return r.table;
}

describe('status table block', () => {
  it('sits after the heartbeat area, 4 KiB aligned', () => {
    expect(TABLE_OFFSET % 4096).toBe(0);
    expect(TABLE_OFFSET).toBeGreaterThanOrEqual(HB_AREA_BYTES);
    expect(HB_VOLUME_MIN_BYTES).toBe(TABLE_OFFSET + TABLE_BLOCK_BYTES);
  });

  it('round-trips a table', () => {
    const t = table();
    const b = encodeTableBlock(t);
    expect(b.length).toBe(TABLE_BLOCK_BYTES);
    expect(decodeTableBlock(b)).toEqual({ ok: true, table: t });
  });

  it('refuses a blank, a corrupt, a foreign and a short block', () => {
    expect(decodeTableBlock(Buffer.alloc(TABLE_BLOCK_BYTES))).toMatchObject({ ok: false, reason: 'blank' });
    const b = encodeTableBlock(table());
    b[100] ^= 1;
    expect(decodeTableBlock(b)).toMatchObject({ ok: false, reason: 'bad-crc' });
    const foreign = encodeTableBlock(table());
    foreign.write('NOTATABL', 0, 'latin1');
    expect(decodeTableBlock(foreign)).toMatchObject({ ok: false, reason: 'bad-magic' });
    expect(decodeTableBlock(Buffer.alloc(512, 1))).toMatchObject({ ok: false, reason: 'bad-length' });
  });
});
