import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mergeExtents } from '../../src/nbd/index.js';
import { ByteQueue } from '../../src/wire/index.js';

describe('ByteQueue', () => {
  it('behaves like one concatenated buffer under any chunking', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 20 }),
        fc.array(fc.tuple(fc.constantFrom('take', 'copyOut', 'skip', 'u32', 'u16'), fc.nat({ max: 60 }))),
        (chunks, ops) => {
          const q = new ByteQueue();
          let model = Buffer.alloc(0);
          for (const c of chunks) {
            q.push(Buffer.from(c));
            model = Buffer.concat([model, Buffer.from(c)]);
          }
          for (const [op, n] of ops) {
            expect(q.length).toBe(model.length);
            if (op === 'u32' && model.length >= n + 4) expect(q.readUInt32BE(n)).toBe(model.readUInt32BE(n));
            if (op === 'u16' && model.length >= n + 2) expect(q.readUInt16BE(n)).toBe(model.readUInt16BE(n));
            if (op === 'take' && n <= model.length) {
              expect(Buffer.compare(q.take(n), model.subarray(0, n))).toBe(0);
              model = model.subarray(n);
            }
            if (op === 'copyOut' && n <= model.length) {
              const out = Buffer.alloc(n);
              q.copyOut(out, n);
              expect(Buffer.compare(out, model.subarray(0, n))).toBe(0);
              model = model.subarray(n);
            }
            if (op === 'skip') {
              const k = q.skip(n);
              expect(k).toBe(Math.min(n, model.length));
              model = model.subarray(k);
            }
          }
        },
      ),
    );
  });

  it('refuses to take more than it holds', () => {
    const q = new ByteQueue();
    q.push(Buffer.from([1, 2]));
    expect(() => q.take(3)).toThrow();
  });

  it('ownLast keeps the unread bytes of a borrowed chunk when its owner reuses it', () => {
    const q = new ByteQueue();
    q.push(Buffer.from([1, 2]));
    const shared = Buffer.from([3, 4, 5, 6]);
    q.push(shared);
    q.ownLast();
    shared.fill(0);
    expect([...q.take(6)]).toEqual([1, 2, 3, 4, 5, 6]);
    q.push(shared.fill(9));
    q.skip(3);
    q.ownLast(); // the head chunk itself, partly read
    shared.fill(0);
    expect([...q.take(1)]).toEqual([9]);
    q.ownLast(); // nothing left: nothing to do
    expect(q.length).toBe(0);
  });
});

describe('mergeExtents', () => {
  it('joins equal neighbours, clips to the request, and honours REQ_ONE', () => {
    const e = [
      { length: 100, hole: true, zero: true },
      { length: 50, hole: true, zero: true },
      { length: 10, hole: false, zero: false },
      { length: 1000, hole: true, zero: true },
    ];
    expect(mergeExtents(e, 200, false)).toEqual([
      [150, 3],
      [10, 0],
      [40, 3],
    ]);
    expect(mergeExtents(e, 200, true)).toEqual([[150, 3]]);
  });
});
