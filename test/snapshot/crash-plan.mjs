// The crash test's write plan, shared by the child (crash-child.mjs) and the parent's replay
// (crash.test.ts): the k-th change of a seeded run, and the LUN's content before the first.

// The seeded source of src/random, from the build the child runs too (dist/, built before the tests).
import { mulberry32 } from '../../dist/random/index.js';

/** A buffer of `length` bytes of pattern `tag` (never all zero), varying along the LUN. */
export function pattern(tag, offset, length) {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = ((tag * 131 + ((offset + i) >> 9) * 7) & 0xff) || 0xa5;
  return b;
}

/** The LUN's content before the run: data in most regions, some all-zero, some holes (left unwritten). */
export function initialRegions(seed, size, regionSize) {
  const rand = mulberry32(seed ^ 0x1234567);
  const out = [];
  for (let r = 0; r * regionSize < size; r++) {
    const x = rand();
    out.push(x < 0.15 ? 'hole' : x < 0.25 ? 'zero' : 'data');
  }
  return out;
}

/**
 * The changes of a run, in order: mostly writes (unaligned offsets and lengths, up to three
 * regions), some trims and write-zeroes. `next()` returns { kind, offset, length, data? }.
 */
export function changes(seed, size, regionSize) {
  const rand = mulberry32(seed);
  let k = 0;
  return {
    next() {
      const x = rand();
      const aligned = rand() < 0.6;
      let offset = Math.floor(rand() * size);
      if (aligned) offset -= offset % 4096;
      const length = Math.max(1, Math.min(size - offset, Math.floor(rand() * 3 * regionSize)));
      const kind = x < 0.8 ? 'write' : x < 0.9 ? 'trim' : 'zero';
      k++;
      return { kind, offset, length, data: kind === 'write' ? pattern(k + (seed & 0xff), offset, length) : undefined };
    },
  };
}
