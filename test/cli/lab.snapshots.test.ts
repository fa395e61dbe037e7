// Lab files with arrays[].snapshots: the store defaults reach the array's config, and every bad
// value is listed (exit 2, nothing started).
import { describe, expect, it } from 'vitest';
import { parseLab } from '../../src/cli/lab.js';
import { arrayConfig } from '../../src/cli/lab/config.js';
import { labProblems } from '../support/lab.js';


const lab = (snapshots: string, sps = '') => `
lab: t
arrays:
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, luns: [], snapshots: ${snapshots}${sps} }
`;

describe('lab files: snapshots', () => {
  it('store size, policy and region size become the array config defaults', () => {
    const l = parseLab(lab('{ storeSize: 2G, policy: refuse-writes, regionSize: 128K }'), '/labs/t.yaml');
    expect(l.arrays[0]!.snapshots).toEqual({ storeBytes: 2 * 2 ** 30, policy: 'refuse-writes', regionSize: 128 * 1024 });
    expect(arrayConfig(l.arrays[0]!).snapshots).toEqual({ storeBytes: 2 * 2 ** 30, policy: 'refuse-writes', regionSize: 128 * 1024 });
  });

  it('an array without the key has no defaults (the manager picks them)', () => {
    const l = parseLab('lab: t\narrays:\n  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, luns: [] }\n', '/labs/t.yaml');
    expect(l.arrays[0]!.snapshots).toBeUndefined();
    expect(arrayConfig(l.arrays[0]!).snapshots).toBeUndefined();
  });

  it('lists every bad value at once', () => {
    const p = labProblems(lab('{ storeSize: lots, policy: keep-all, regionSize: 3K, color: red }'));
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringContaining('unknown key "color"'),
        expect.stringContaining('storeSize must be a size'),
        expect.stringContaining('policy must be invalidate-oldest or refuse-writes'),
        expect.stringContaining('regionSize must be a power of two'),
      ]),
    );
  });

  it('a store smaller than one region and a non-mapping are refused; an array with SPs takes the key', () => {
    expect(labProblems(lab('{ storeSize: 4K, regionSize: 64K }'))).toEqual([expect.stringContaining('at least one region')]);
    expect(labProblems(lab('yes'))).toEqual([expect.stringContaining('must be a mapping')]);
    expect(arrayConfig(parseLab(lab('{ storeSize: 1G }', ', sps: {}'), '/labs/t.yaml').arrays[0]!).snapshots).toEqual({ storeBytes: 2 ** 30 });
  });
});
