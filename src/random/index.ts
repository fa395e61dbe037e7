/**
 * Seeded random sources: the same seed gives the same draws, so a workload (src/check), a fault
 * schedule (src/fault) or a test (test/support/random.ts) can be repeated exactly.
 */

/** A random source: numbers in [0, 1). */
export type Random = () => number;

/** mulberry32: the ledger's block choice and block fill. */
export function mulberry32(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** xorshift32 (a zero seed is taken as 1): the prefix workload's block order and content. */
export function xorshift32(seed: number): Random {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** FNV-style mix of 32-bit words into one seed. */
export function mixSeed(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
  }
  return h;
}
