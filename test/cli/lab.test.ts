import { describe, it, expect } from 'vitest';
import { basename, join } from 'node:path';
import { loadLab, parseLab } from '../../src/cli/lab.js';
import { PACKAGE_ROOT } from '../../src/cli/common.js';
import { labProblems } from '../support/lab.js';


describe('lab files', () => {
  it('loads lab/default.yaml: array alpha, disk0 1G, disk1 and disk2 256M, ports 10809/8470', () => {
    const lab = loadLab(join(PACKAGE_ROOT, 'lab', 'default.yaml'));
    expect(lab.name).toBe('default');
    expect(lab.arrays.map((x) => x.name)).toEqual(['alpha', 'bravo']); // bravo: the mirror's secondary (test/cli/lab.mirrors.test.ts)
    const a = lab.arrays[0]!;
    expect(a).toMatchObject({ name: 'alpha', nbd: { bind: '127.0.0.1', port: 10809 }, api: { bind: '127.0.0.1', port: 8470 }, readOnly: false });
    expect(a.luns).toEqual([
      { name: 'disk0', size: 2 ** 30 },
      { name: 'disk1', size: 256 * 2 ** 20 },
      { name: 'disk2', size: 256 * 2 ** 20 },
    ]);
  });

  it('takes the lab name from the file name and resolves dir relative to the file', () => {
    const lab = parseLab('arrays:\n  - { name: a1, dir: ../img/a1, luns: [] }\n', '/labs/x/mylab.yaml');
    expect(lab.name).toBe('mylab');
    expect(lab.arrays[0]!.dir).toBe('/labs/img/a1');
  });

  it('reports every problem at once, with where it is', () => {
    const p = labProblems(`
lab: t
colour: red
arrays:
  - name: alpha
    nbd: { port: 10809, host: x }
    api: { port: 10809 }
    luns:
      - { name: disk0, size: 1G }
      - { name: disk0, size: 1X }
      - { name: "bad name", size: 1000 }
      - { name: d3, size: 6K, blockSize: 4096 }
      - { name: d4, size: 4K, blockSize: 1024 }
      - { name: d5, size: 0 }
      - { name: d6, size: 1G, sparse: true }
  - name: alpha
    nbd: { port: 70000 }
    api: { bind: 0.0.0.0 }
    luns: []
`);
    const text = p.join('\n');
    expect(text).toMatch(/top level: unknown key "colour"/);
    expect(text).toMatch(/array alpha\.nbd: unknown key "host"/);
    expect(text).toMatch(/array alpha\.api: port 10809 is already used by array alpha\.nbd/);
    expect(text).toMatch(/duplicate LUN name disk0/);
    expect(text).toMatch(/luns\[1\]\.size must be a size/);
    expect(text).toMatch(/luns\[2\].*invalid/);
    expect(text).toMatch(/luns\[2\].*multiple of the block size 512/);
    expect(text).toMatch(/luns\[3\].*multiple of the block size 4096/);
    expect(text).toMatch(/luns\[4\]\.blockSize must be 512 or 4096/);
    expect(text).toMatch(/luns\[5\].*greater than 0/);
    expect(text).toMatch(/luns\[6\]: unknown key "sparse"/);
    expect(text).toMatch(/duplicate array name/);
    expect(text).toMatch(/nbd\.port must be an integer 0-65535/);
    expect(text).toMatch(/binding 0\.0\.0\.0 \(not loopback\) needs a token/);
  });

  it('refuses arrays, LUNs and labs named . or .. (an array .. would live outside the images directory); .hidden is a name', () => {
    const text = labProblems(`
lab: ".."
arrays:
  - { name: "..", nbd: { port: 0 }, api: { port: 0 }, luns: [] }
  - { name: ".", nbd: { port: 0 }, api: { port: 0 }, luns: [] }
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, luns: [{ name: ".", size: 1M }, { name: "..", size: 1M }] }
`).join('\n');
    expect(text).toContain('lab name ".." is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)');
    expect(text).toContain('arrays[0].name ".." is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)');
    expect(text).toContain('arrays[1].name "." is invalid');
    expect(text).toContain('array alpha.luns[0]: LUN name "." is invalid');
    expect(text).toContain('array alpha.luns[1]: LUN name ".." is invalid');
    // The lab name from a file named ...yaml is "..".
    expect(() => parseLab('arrays:\n  - { name: a, luns: [] }\n', '/labs/...yaml')).toThrow(/lab name from the file name "\.\." is invalid/);
    const ok = parseLab('lab: .hidden\narrays:\n  - { name: .hidden, luns: [{ name: .hidden, size: 1M }] }\n', '/labs/t.yaml');
    expect([ok.name, ok.arrays[0]!.name, basename(ok.arrays[0]!.dir), ok.arrays[0]!.luns[0]!.name]).toEqual(['.hidden', '.hidden', '.hidden', '.hidden']);
  });

  it('rejects structural mistakes', () => {
    expect(labProblems('just a string')[0]).toMatch(/must be a mapping/);
    expect(labProblems('arrays: []')[0]).toMatch(/non-empty list/);
    expect(labProblems('arrays:\n  - name: a\n')[0]).toMatch(/luns must be a list/);
    expect(labProblems('arrays:\n  - 7\n')[0]).toMatch(/must be a mapping/);
    expect(labProblems('lab: a\nlab: b\narrays: []\n')[0]).toMatch(/YAML/);
    expect(labProblems('arrays: [ {name: a, luns: [] }\n')[0]).toMatch(/YAML/);
    expect(labProblems('arrays:\n  - { name: a, luns: [], api: { bind: 10.0.0.1, token: short } }\n').join('\n')).toMatch(/at least 8/);
  });

  it('accepts a token for a non-loopback API and port 0 (any free port) twice', () => {
    const lab = parseLab(
      'lab: t\narrays:\n  - { name: a, nbd: { port: 0 }, api: { bind: 0.0.0.0, port: 0, token: abcdefgh12 }, luns: [ { name: d, size: 4096 } ] }\n',
      '/x/t.yaml',
    );
    expect(lab.arrays[0]!.api).toEqual({ bind: '0.0.0.0', port: 0, token: 'abcdefgh12' });
  });

  it('says when the file cannot be read', () => {
    expect(() => loadLab('/nonexistent/lab.yaml')).toThrow(/cannot read lab file/);
  });
});
