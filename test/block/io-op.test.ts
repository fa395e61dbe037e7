// Requests as data: parseIoOp refuses what another process must never make us run.
import { describe, it, expect } from 'vitest';
import { parseIoOp, modifiesData, readsData } from '../../src/block/index.js';

describe('parseIoOp', () => {
  it('keeps the known fields of a well-formed op', () => {
    expect(parseIoOp({ op: 'zero', offset: 4096, length: 512, fua: true, noHole: true, fastZero: false, extra: 1 })).toEqual({ op: 'zero', offset: 4096, length: 512, fua: true, noHole: true });
    expect(parseIoOp({ op: 'flush' })).toEqual({ op: 'flush', offset: 0, length: 0 });
  });
  it.each([
    [{ op: 'format', offset: 0, length: 0 }, /unknown I\/O op "format"/],
    [{ offset: 0, length: 0 }, /unknown I\/O op undefined/],
    [{ op: 'read', offset: -512, length: 512 }, /bad range/],
    [{ op: 'read', offset: 0.5, length: 512 }, /bad range/],
    [{ op: 'write', offset: 0, length: 'x' }, /bad range/],
    [{ op: 'write', offset: 2 ** 60, length: 512 }, /bad range/],
  ])('refuses %j with EINVAL', (raw, why) => {
    expect(() => parseIoOp(raw as Record<string, unknown>)).toThrow(/^EINVAL/);
    expect(() => parseIoOp(raw as Record<string, unknown>)).toThrow(why);
  });
  it('classifies ops', () => {
    expect(['read', 'write', 'flush', 'trim', 'zero', 'status', 'cache'].filter((o) => modifiesData(o as never))).toEqual(['write', 'trim', 'zero']);
    expect(['read', 'write', 'flush', 'trim', 'zero', 'status', 'cache'].filter((o) => readsData(o as never))).toEqual(['read', 'status', 'cache']);
  });
});
