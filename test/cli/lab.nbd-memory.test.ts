// Lab files with arrays[].nbd.memory (the NBD memory budget, docs/nbd.md): a size reaches the
// array's config; anything else is a problem (exit 2, nothing started).
import { describe, expect, it } from 'vitest';
import { LabError, parseLab } from '../../src/cli/lab.js';
import { arrayConfig } from '../../src/cli/lab/config.js';

const lab = (nbd: string) => `
lab: t
arrays:
  - { name: bravo, nbd: { port: 0, ${nbd} }, api: { port: 0 }, luns: [] }
`;

function labProblems(yaml: string): string[] {
  try {
    parseLab(yaml, '/tmp/t.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(LabError);
    expect((e as LabError).exitCode).toBe(2);
    return (e as LabError).problems;
  }
  throw new Error('expected the lab to be rejected');
}

describe('lab files: NBD memory budget', () => {
  it('a size (text or bytes) reaches the array config; absent, the server default applies', () => {
    const l = parseLab(lab('memory: 512M'), '/tmp/t.yaml');
    expect(l.arrays[0]!.nbd.memory).toBe(512 * 1024 * 1024);
    expect(arrayConfig(l.arrays[0]!).nbd.memory).toBe(512 * 1024 * 1024);
    expect(parseLab(lab('memory: 2097152'), '/tmp/t.yaml').arrays[0]!.nbd.memory).toBe(2097152);
    expect(parseLab(lab('bind: 127.0.0.1'), '/tmp/t.yaml').arrays[0]!.nbd.memory).toBeUndefined();
  });

  it('refuses what is not a size, and budgets under 1M', () => {
    expect(labProblems(lab('memory: lots'))).toEqual([expect.stringContaining('array bravo.nbd.memory must be a size')]);
    expect(labProblems(lab('memory: 64K'))).toEqual([expect.stringContaining('must be at least 1M')]);
    expect(labProblems(lab('memory: -1'))).toEqual([expect.stringContaining('must be a size')]);
  });
});
