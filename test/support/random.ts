// Seeded random sources for tests. A seeded test takes its seed from SANBOX_SEED when set (to
// rerun one seed) and from its own fixed default otherwise, so every run is reproducible; when it
// fails it prints its seed and the exact command that reruns it.
import { relative } from 'node:path';
import { onTestFailed } from 'vitest';
import { REPO } from './paths.js';
import { mixSeed, xorshift32, type Random } from '../../src/random/index.js';

/** The generators are the product's own (src/random): a test's draws match a workload's. */
export { mulberry32, xorshift32, type Random } from '../../src/random/index.js';

/** The environment variable that reruns one seed. */
export const SEED_ENV = 'SANBOX_SEED';

/** The 31-bit linear congruential generator of C's rand() (seed * 1103515245 + 12345). */
export function lcg31(seed: number): Random {
  let x = seed;
  return () => (x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}

/** The seed of a seeded test: $SANBOX_SEED when set (an integer), else `fallback`. */
export function testSeed(fallback: number): number {
  const v = process.env[SEED_ENV];
  if (v === undefined || v === '') return fallback;
  const seed = Number(v);
  if (!Number.isSafeInteger(seed)) throw new Error(`${SEED_ENV}=${v} is not an integer`);
  return seed;
}

const quote = (s: string) => (/^[\w./=:-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The command that reruns test `name` of `file` with `seed` (and `env`, e.g. a run count of 1). */
export function rerunCommand(file: string, name: string, seed: number, env: Record<string, string> = {}): string {
  const vars = Object.entries({ [SEED_ENV]: String(seed), ...env }).map(([k, v]) => `${k}=${quote(v)}`);
  return [...vars, 'npx', 'vitest', 'run', quote(relative(REPO, file)), '-t', quote(escapeRegExp(name))].join(' ');
}

/**
 * Prints the seed and the rerun command if the current test fails. Call it inside a test; `seed`
 * may be a function when a test walks through several seeds (the one that failed is printed).
 */
export function reportSeedOnFailure(seed: number | (() => number), env: Record<string, string> = {}): void {
  onTestFailed(({ task }) => {
    const s = typeof seed === 'function' ? seed() : seed;
    const file = task.file?.filepath ?? '';
    console.error(`seeded test failed with seed ${s}; rerun it with:\n  ${rerunCommand(file, task.name, s, env)}`);
  });
}

/** A seeded source for the current test (call it inside the test): seed from `testSeed(fallback)`, reported on failure. */
export function seededRandom(fallback: number, algorithm: (seed: number) => Random = xorshift32): Random & { seed: number } {
  const seed = testSeed(fallback);
  reportSeedOnFailure(seed);
  return Object.assign(algorithm(seed), { seed });
}

/**
 * fast-check's seed for the current property (call it inside the test, spread into fc.assert's
 * parameters): `testSeed(fallback)`, reported with the rerun command on failure (fast-check's own
 * report adds the counterexample's path).
 */
export function fcSeed(fallback: number): { seed: number } {
  const seed = testSeed(fallback);
  reportSeedOnFailure(seed);
  return { seed };
}

/** `n` bytes drawn from a seeded source: the same seed gives the same bytes, another seed others. */
export function seededBytes(seed: number, n: number): Buffer {
  const r = xorshift32(mixSeed(seed));
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}
