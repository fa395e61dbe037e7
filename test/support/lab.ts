// Lab files that must be refused: parseLab throws a LabError with exit code 2 and every problem.
import { expect } from 'vitest';
import { parseLab, LabError } from '../../src/cli/lab.js';

/** The problems parseLab lists for `yaml` (fails the test if the lab is accepted). */
export function labProblems(yaml: string): string[] {
  try {
    parseLab(yaml, '/labs/test.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(LabError);
    expect((e as LabError).exitCode).toBe(2);
    return (e as LabError).problems;
  }
  throw new Error('expected the lab to be rejected');
}
