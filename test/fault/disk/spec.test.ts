// The disk fault as data: validation lists every problem (and applies nothing), the string forms
// the CLI passes, lose-unflushed (alone or with errors), and the pure decision (spec, op, offset,
// length, draw) -> fail / delay.
import { describe, expect, it } from 'vitest';
import { decide, describeDiskFault, inRange, parseDelay, parseRange, validateDiskFault, DISK_OPS, type DiskFaultSpec } from '../../../src/fault/index.js';

const base: DiskFaultSpec = { errors: ['read'], rate: 1, errno: 'EIO', seed: 1, loseUnflushed: false };
const draw = (error: number, jitter = 0) => ({ error, jitter });

describe('validateDiskFault', () => {
  it('fills in the defaults: every op fails with EIO, rate 1, seed 1, the whole LUN', () => {
    expect(validateDiskFault({})).toEqual({ spec: { errors: [...DISK_OPS], rate: 1, errno: 'EIO', seed: 1, loseUnflushed: false }, problems: [] });
  });

  it('a delay alone fails nothing', () => {
    expect(validateDiskFault({ delay: '20:5' }).spec).toEqual({ errors: [], rate: 1, errno: 'EIO', delay: { ms: 20, jitterMs: 5 }, seed: 1, loseUnflushed: false });
  });

  it('takes the CLI strings and the JSON forms alike', () => {
    const fromStrings = validateDiskFault({ errors: 'write,read', rate: '0.25', range: '4K:1M', errno: 'enospc', delay: '10', seed: '7' });
    const fromJson = validateDiskFault({ errors: ['read', 'write'], rate: 0.25, range: { offset: 4096, length: 1048576 }, errno: 'ENOSPC', delay: { ms: 10 }, seed: 7 });
    expect(fromStrings.spec).toEqual({ errors: ['read', 'write'], rate: 0.25, range: { offset: 4096, length: 1048576 }, errno: 'ENOSPC', delay: { ms: 10, jitterMs: 0 }, seed: 7, loseUnflushed: false });
    expect(fromJson).toEqual(fromStrings);
  });

  it('lists every problem at once and gives no spec', () => {
    const v = validateDiskFault({ errors: 'read,scribble', rate: 1.5, range: '10:0', errno: 'EPERM', delay: 'soon', seed: -1, colour: 'red' });
    expect(v.spec).toBeUndefined();
    expect(v.problems).toHaveLength(7);
    const text = v.problems.join('\n');
    for (const word of ['colour', 'scribble', 'rate', 'range length', 'errno', 'delay', 'seed']) expect(text).toContain(word);
  });

  it('refuses a fault that does nothing, a delay of 0 and a delay over a minute', () => {
    expect(validateDiskFault({ errors: '' }).problems.join()).toMatch(/does nothing/);
    expect(validateDiskFault({ delay: '0' }).problems.join()).toMatch(/waits nothing/);
    expect(validateDiskFault({ delay: '50000:20000' }).problems.join()).toMatch(/over 60000 ms/);
  });

  it('refuses a range that starts beyond the LUN when the LUN size is known', () => {
    expect(validateDiskFault({ range: '1M:4K' }, 1024 * 1024).problems.join()).toMatch(/beyond the end of the LUN/);
    expect(validateDiskFault({ range: '1M:4K' }, 2 * 1024 * 1024).spec?.range).toEqual({ offset: 1048576, length: 4096 });
  });

  it('lose-unflushed alone is a fault (errors default to none); with errors or a delay it adds to them', () => {
    expect(validateDiskFault({ loseUnflushed: true }).spec).toEqual({ errors: [], rate: 1, errno: 'EIO', seed: 1, loseUnflushed: true });
    expect(validateDiskFault({ errors: '', loseUnflushed: true }).spec?.errors).toEqual([]);
    expect(validateDiskFault({ loseUnflushed: true, maxUnflushed: '8M' }).spec?.maxUnflushed).toBe(8 * 1024 * 1024);
    expect(validateDiskFault({ loseUnflushed: true, maxUnflushed: 65536 }).spec?.maxUnflushed).toBe(65536);
    const both = validateDiskFault({ errors: 'read', range: '0:4K', loseUnflushed: true }).spec;
    expect(both).toMatchObject({ errors: ['read'], range: { offset: 0, length: 4096 }, loseUnflushed: true });
    // the spec as the chassis sends it to an SP validates to itself
    expect(validateDiskFault(both).spec).toEqual(both);
    expect(validateDiskFault({ loseUnflushed: false }).spec?.errors).toEqual([...DISK_OPS]);
  });

  it('lists every lose-unflushed problem', () => {
    const v = validateDiskFault({ loseUnflushed: 'yes', maxUnflushed: 100 });
    expect(v.problems).toHaveLength(2);
    expect(v.problems.join('\n')).toMatch(/loseUnflushed must be true or false[\s\S]*maxUnflushed must be a byte count/);
    expect(validateDiskFault({ maxUnflushed: '8M' }).problems.join()).toMatch(/give loseUnflushed too/);
    expect(validateDiskFault({ loseUnflushed: true, maxUnflushed: '2G' }).problems.join()).toMatch(/maxUnflushed/);
    expect(validateDiskFault({ loseUnflushed: true, range: '0:4K' }).problems.join()).toMatch(/range limits errors and delays only/);
    expect(validateDiskFault({ errors: '' }).problems.join()).toMatch(/does nothing/);
  });

  it('refuses what is not an object', () => {
    for (const x of [null, 3, 'EIO', [1]]) expect(validateDiskFault(x).problems).toEqual(['a disk fault must be an object']);
  });
});

describe('parseRange / parseDelay', () => {
  it('parses OFFSET:LENGTH with size suffixes, and says what is wrong otherwise', () => {
    expect(parseRange('0:512')).toEqual({ offset: 0, length: 512 });
    expect(parseRange('1M:2k')).toEqual({ offset: 1048576, length: 2048 });
    for (const bad of ['', '5', '1:2:3', 'a:b', '-1:5', '1.5:2']) expect(typeof parseRange(bad), bad).toBe('string');
  });
  it('parses MS[:JITTER]', () => {
    expect(parseDelay('5')).toEqual({ ms: 5, jitterMs: 0 });
    expect(parseDelay('5:3')).toEqual({ ms: 5, jitterMs: 3 });
    for (const bad of ['', 'x', '5:', ':5', '-1', '1.5']) expect(typeof parseDelay(bad), bad).toBe('string');
  });
});

describe('decide (pure)', () => {
  it('fails exactly the chosen ops with the chosen errno', () => {
    const spec: DiskFaultSpec = { ...base, errors: ['write', 'trim'], errno: 'ENOSPC' };
    expect(decide(spec, 'write', 0, 512, draw(0.5))).toEqual({ fail: 'ENOSPC', delayMs: 0 });
    expect(decide(spec, 'trim', 0, 512, draw(0.5))).toEqual({ fail: 'ENOSPC', delayMs: 0 });
    for (const op of ['read', 'flush', 'zero'] as const) expect(decide(spec, op, 0, 512, draw(0.5)), op).toEqual({ delayMs: 0 });
  });

  it('fails when the draw is below the rate: rate 0 never, rate 1 always', () => {
    const at = (rate: number, d: number) => decide({ ...base, rate }, 'read', 0, 512, draw(d)).fail;
    expect(at(0.3, 0.29)).toBe('EIO');
    expect(at(0.3, 0.3)).toBeUndefined();
    expect(at(0, 0)).toBeUndefined();
    expect(at(1, 0.999999)).toBe('EIO');
  });

  it('honours the range at its edges (half-open), and a flush has no range', () => {
    const spec: DiskFaultSpec = { ...base, errors: [...DISK_OPS], range: { offset: 4096, length: 4096 } };
    const fails = (op: (typeof DISK_OPS)[number], o: number, l: number) => decide(spec, op, o, l, draw(0)).fail !== undefined;
    expect(fails('read', 0, 4096)).toBe(false); // ends where the range starts
    expect(fails('read', 0, 4097)).toBe(true); // one byte in
    expect(fails('read', 8191, 1)).toBe(true); // the last byte
    expect(fails('read', 8192, 512)).toBe(false); // starts where it ends
    expect(fails('write', 0, 1 << 20)).toBe(true); // covers it
    expect(fails('zero', 4096, 0)).toBe(false); // an empty request overlaps nothing
    expect(fails('flush', 0, 0)).toBe(true);
    expect(inRange(spec, 'trim', 6000, 10)).toBe(true);
  });

  it('delays every op in range by ms plus the drawn share of the jitter, failing or not', () => {
    const spec: DiskFaultSpec = { ...base, errors: ['read'], rate: 0, delay: { ms: 10, jitterMs: 20 }, range: { offset: 0, length: 512 } };
    expect(decide(spec, 'write', 0, 512, draw(0, 0))).toEqual({ delayMs: 10 });
    expect(decide(spec, 'write', 0, 512, draw(0, 0.5))).toEqual({ delayMs: 20 });
    expect(decide(spec, 'read', 0, 512, draw(0, 0.999))).toEqual({ delayMs: 29 });
    expect(decide(spec, 'read', 512, 512, draw(0, 0.5))).toEqual({ delayMs: 0 }); // out of range
    expect(decide({ ...spec, rate: 1 }, 'read', 0, 512, draw(0, 0))).toEqual({ fail: 'EIO', delayMs: 10 });
  });

  it('describes itself in one line', () => {
    expect(describeDiskFault({ ...base, errors: ['read', 'write'], rate: 0.5, range: { offset: 0, length: 4096 }, delay: { ms: 5, jitterMs: 2 } })).toBe(
      'EIO on read,write at rate 0.5, delay 5 ms + up to 2 ms, range 0:4096, seed 1',
    );
    expect(describeDiskFault({ ...base, errors: [], loseUnflushed: true })).toBe('loses unflushed writes at a crash (holds up to 64 MiB)');
    expect(describeDiskFault({ ...base, loseUnflushed: true, maxUnflushed: 8 * 1024 * 1024 })).toBe('EIO on read, whole LUN, seed 1, loses unflushed writes at a crash (holds up to 8 MiB)');
  });
});
