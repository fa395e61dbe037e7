// The `apply` payload: the writelog's records as the journal holds them, checked for shape by
// validateArgs before a receiver reads them in place.
import { describe, it, expect } from 'vitest';
import { APPLY_FLAG_ZERO, encodeApplyBatch, nextRecord, recordIndex, recordLength, recordOffset, recordSeq, validateArgs } from '../../../src/link/protocol/index.js';

const zero = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};
const batch = () =>
  encodeApplyBatch([
    { seq: 7, index: 1, offset: 4096, flags: 0, data: Buffer.alloc(4093, 1) },
    { seq: 8, index: 0, offset: 0, flags: APPLY_FLAG_ZERO, data: zero(1 << 20) },
  ]);

describe('apply batch', () => {
  it('reads back what was encoded, record by record', () => {
    const b = batch();
    const seen: number[][] = [];
    for (let o = 0; o < b.length; o = nextRecord(b, o)) seen.push([recordSeq(b, o), recordIndex(b, o), recordOffset(b, o), recordLength(b, o)]);
    expect(seen).toEqual([
      [7, 1, 4096, 4093],
      [8, 0, 0, 1 << 20],
    ]);
    expect(() => validateArgs('apply', { groupId: 'g', count: 2 }, b)).not.toThrow();
  });

  it('refuses a payload that is not the announced records', () => {
    const b = batch();
    expect(() => validateArgs('apply', { groupId: 'g', count: 3 }, b)).toThrow(/3 records announced, 2 came/);
    expect(() => validateArgs('apply', { groupId: 'g', count: 2 }, b.subarray(0, b.length - 8))).toThrow(/runs past the payload/);
    expect(() => validateArgs('apply', { groupId: 'g', count: 1 }, b.subarray(0, 40))).toThrow(/cut short/);
    const twice = Buffer.concat([b, b]);
    expect(() => validateArgs('apply', { groupId: 'g', count: 4 }, twice)).toThrow(/increasing sequence order/);
    const garbled = Buffer.from(b);
    garbled[0] ^= 1;
    expect(() => validateArgs('apply', { groupId: 'g', count: 2 }, garbled)).toThrow(/no record magic/);
    expect(() => validateArgs('apply', { groupId: 'g', count: 0 }, Buffer.alloc(0))).toThrow(/count must be a positive integer/);
  });
});
