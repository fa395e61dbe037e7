// Lab files with sites: and restart: — the implicit sites, the policy, and every validation error.
import { describe, expect, it } from 'vitest';
import { parseLab } from '../../src/cli/lab.js';
import { labProblems } from '../support/lab.js';


const arrays = `
lab: t
arrays:
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, luns: [] }
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, luns: [] }
  - { name: charlie, nbd: { port: 0 }, api: { port: 0 }, luns: [] }
`;

describe('lab files: sites', () => {
  it('without sites: every array is its own site; the restart policy is never', () => {
    const lab = parseLab(arrays, '/labs/t.yaml');
    expect(lab.sites).toEqual([
      { name: 'alpha', arrays: ['alpha'], declared: false },
      { name: 'bravo', arrays: ['bravo'], declared: false },
      { name: 'charlie', arrays: ['charlie'], declared: false },
    ]);
    expect(lab.restart).toEqual({ mode: 'never', backoffMs: 1000, limit: 3 });
  });

  it('declared sites first, then one per array in none', () => {
    const lab = parseLab(arrays + 'sites:\n  - { name: east, arrays: [alpha, charlie] }\n', '/labs/t.yaml');
    expect(lab.sites).toEqual([
      { name: 'east', arrays: ['alpha', 'charlie'], declared: true },
      { name: 'bravo', arrays: ['bravo'], declared: false },
    ]);
  });

  it('lists every problem at once: unknown array, an array in two sites, duplicate names, bad shapes', () => {
    const p = labProblems(
      arrays +
        `sites:
  - { name: east, arrays: [alpha, delta] }
  - { name: west, arrays: [alpha, bravo] }
  - { name: east, arrays: [charlie] }
  - { name: south, arrays: [] }
  - { name: north, arrays: [bravo], hosts: [h1] }
  - just-a-string
`,
    );
    expect(p).toEqual([
      'site east.arrays: no array "delta" in this lab (arrays: alpha, bravo, charlie)',
      'site west.arrays: array alpha is already in site east (an array is in one site)',
      'site east: duplicate site name',
      'site south.arrays must be a non-empty list of array names',
      'sites[4]: unknown key "hosts" (expected name, arrays)',
      'site north.arrays: array bravo is already in site west (an array is in one site)',
      'sites[5] must be a mapping like { name: east, arrays: [alpha] }',
    ]);
  });

  it('a site may not be named . or ..', () => {
    expect(labProblems(arrays + 'sites:\n  - { name: "..", arrays: [alpha] }\n  - { name: ".", arrays: [bravo] }\n')).toEqual([
      'sites[0].name ".." is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)',
      'sites[1].name "." is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)',
    ]);
  });

  it('a site may not take the name of an array that is its own site', () => {
    expect(labProblems(arrays + 'sites:\n  - { name: bravo, arrays: [alpha] }\n')).toEqual([
      'site bravo: the name is taken by array bravo, which is in no site and so is its own site (put it in the site, or rename the site)',
    ]);
    // ...but naming a site after one of its own arrays is fine
    expect(parseLab(arrays + 'sites:\n  - { name: bravo, arrays: [bravo, alpha] }\n', '/labs/t.yaml').sites.map((s) => s.name)).toEqual(['bravo', 'charlie']);
  });

  it('sites must be a list', () => {
    expect(labProblems(arrays + 'sites: { east: [alpha] }\n')).toEqual(['"sites" must be a list like [{ name: east, arrays: [alpha] }]']);
  });
});

describe('lab files: restart', () => {
  it('restart: on-failure takes the default backoff and limit; the mapping form sets them', () => {
    expect(parseLab(arrays + 'restart: on-failure\n', '/labs/t.yaml').restart).toEqual({ mode: 'on-failure', backoffMs: 1000, limit: 3 });
    expect(parseLab(arrays + 'restart: { policy: on-failure, backoffMs: 200, limit: 0 }\n', '/labs/t.yaml').restart).toEqual({ mode: 'on-failure', backoffMs: 200, limit: 0 });
    expect(parseLab(arrays + 'restart: never\n', '/labs/t.yaml').restart.mode).toBe('never');
  });

  it('every restart problem is listed', () => {
    expect(labProblems(arrays + 'restart: always\n')).toEqual(['restart must be never or on-failure, not "always"']);
    expect(labProblems(arrays + 'restart: { backoffMs: -1, limit: 1.5, tries: 3 }\n')).toEqual([
      'restart: unknown key "tries" (expected policy, backoffMs, limit)',
      'restart.policy is required (never or on-failure)',
      'restart.backoffMs must be an integer 0-3600000, not -1',
      'restart.limit must be an integer >= 0 (automatic restarts per array), not 1.5',
    ]);
  });

  it('sites and restart problems come with the others, nothing started (exit 2)', () => {
    const p = labProblems(arrays.replace('name: charlie', 'name: "bad name"') + 'sites:\n  - { name: east, arrays: [charlie] }\nrestart: sometimes\n');
    expect(p.some((x) => x.includes('arrays[2].name'))).toBe(true);
    expect(p.some((x) => x.startsWith('site east.arrays: no array "charlie" in this lab'))).toBe(true);
    expect(p).toContain('restart must be never or on-failure, not "sometimes"');
  });
});
