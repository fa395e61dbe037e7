// Lab files with links: lab/two-arrays.yaml, the links:/remoteLink:/host: keys and their errors.
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { loadLab, parseLab, parseRate } from '../../src/cli/lab.js';
import { PACKAGE_ROOT } from '../../src/cli/common.js';
import { labProblems } from '../support/lab.js';


const twoArrays = (link: string, extra = '') => `
lab: t
arrays:
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 10870 }, luns: [] }
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 10880 }, luns: [] }
${extra}
links:
${link}
`;

describe('lab files with links', () => {
  it('loads lab/two-arrays.yaml: alpha, bravo and the link alpha-bravo', () => {
    const lab = loadLab(join(PACKAGE_ROOT, 'lab', 'two-arrays.yaml'));
    expect(lab.name).toBe('two-arrays');
    expect(lab.arrays.map((a) => a.name)).toEqual(['alpha', 'bravo']);
    expect(lab.arrays.every((a) => !a.sps && !a.host)).toBe(true);
    expect(lab.links).toEqual([
      {
        name: 'alpha-bravo',
        a: 'alpha',
        b: 'bravo',
        listen: { bind: '127.0.0.1', toB: 10871, toA: 10872 },
        targets: { a: { host: '127.0.0.1', port: 10870 }, b: { host: '127.0.0.1', port: 10880 } },
        api: { bind: '127.0.0.1', port: 8490 },
        settings: { 'a-to-b': { latencyMs: 2, jitterMs: 1, bandwidth: 0 }, 'b-to-a': { latencyMs: 2, jitterMs: 1, bandwidth: 0 } },
        cut: 'none',
        queueBytes: 1 << 20,
        cutResetMs: 15000,
        precise: false,
        secret: 'two-arrays-lab-link-secret',
      },
    ]);
  });

  it('lab/default.yaml has one link, alpha-bravo', () => {
    expect(loadLab(join(PACKAGE_ROOT, 'lab', 'default.yaml')).links.map((l) => [l.name, l.a, l.b])).toEqual([['alpha-bravo', 'alpha', 'bravo']]);
  });

  it('per-direction settings, rates with suffixes, cut, an array on another host', () => {
    const lab = parseLab(
      `
arrays:
  - { name: alpha, remoteLink: { bind: 0.0.0.0, port: 10870 }, luns: [] }
  - { name: bravo, host: 10.0.0.2, remoteLink: { port: 10880 } }
  - { name: charlie, host: dr.example, remoteLink: { port: 1, address: "192.0.2.9:10890" } }
links:
  - { name: ab, between: [alpha, bravo], listen: { bind: 0.0.0.0 }, latency: { a-to-b: 5, b-to-a: 7.5 }, bandwidth: 10M/s, cut: a-to-b }
  - { name: ac, between: [alpha, charlie], jitter: 3, bandwidth: { b-to-a: 1048576 }, cut: true, cutResetMs: 0, queueSize: 64K, precise: true }
`,
      '/labs/x.yaml',
    );
    expect(lab.arrays[1]).toMatchObject({ name: 'bravo', host: '10.0.0.2', remoteLink: { port: 10880, address: { host: '10.0.0.2', port: 10880 } } });
    const [ab, ac] = lab.links;
    expect(ab).toMatchObject({
      targets: { a: { host: '127.0.0.1', port: 10870 }, b: { host: '10.0.0.2', port: 10880 } },
      listen: { bind: '0.0.0.0', toB: 0, toA: 0 },
      settings: { 'a-to-b': { latencyMs: 5, bandwidth: 10 << 20 }, 'b-to-a': { latencyMs: 7.5, bandwidth: 10 << 20 } },
      cut: 'a-to-b',
    });
    expect(ac).toMatchObject({
      targets: { b: { host: '192.0.2.9', port: 10890 } },
      settings: { 'a-to-b': { jitterMs: 3, bandwidth: 0 }, 'b-to-a': { jitterMs: 3, bandwidth: 1048576 } },
      cut: 'both',
      cutResetMs: 0,
      queueBytes: 65536,
      precise: true,
    });
    expect(ab!.precise).toBe(false);
  });

  it('parseRate', () => {
    expect([parseRate('10M'), parseRate('512K/s'), parseRate('1KB/s'), parseRate(1000), parseRate('unlimited'), parseRate(0)]).toEqual([
      10 << 20,
      512 << 10,
      1024,
      1000,
      0,
      0,
    ]);
    for (const bad of ['-1M', '12Q', 'fast', -5, 1.5, '', null]) expect(parseRate(bad)).toBeUndefined();
  });

  it('reports unknown keys, bad values, duplicate names and ports, unknown arrays, all at once', () => {
    const p = labProblems(
      twoArrays(
        `
  - { name: l1, between: [alpha, bravo], latency: -5, jitter: fast, bandwidth: 12Q, cut: sideways, colour: red, listen: { toB: 10870, toC: 1 } }
  - { name: l1, between: [alpha, zulu], api: { port: 8470 } }
  - { name: l3, between: [alpha, alpha], latency: { up: 3 }, queueSize: 10, cutResetMs: -1, precise: yes }
  - { name: "bad name", between: [alpha] }
  - { name: l5, between: [alpha, bravo], api: { bind: 0.0.0.0 }, listen: { toA: 70000 } }
`,
        '',
      ).replace('api: { port: 0 }, remoteLink: { port: 10870 }', 'api: { port: 8470 }, remoteLink: { port: 10870 }'),
    );
    const text = p.join('\n');
    expect(text).toMatch(/link l1\.latency must be milliseconds >= 0 .* not -5/);
    expect(text).toMatch(/link l1\.jitter must be milliseconds/);
    expect(text).toMatch(/link l1\.bandwidth must be bytes per second .* not "12Q"/);
    expect(text).toMatch(/link l1\.cut must be none, a-to-b, b-to-a or both/);
    expect(text).toMatch(/links\[0\]: unknown key "colour"/);
    expect(text).toMatch(/link l1\.listen: unknown key "toC"/);
    expect(text).toMatch(/link l1\.listen\.toB: port 10870 is already used by array alpha\.remoteLink/);
    expect(text).toMatch(/link l1: duplicate link name/);
    expect(text).toMatch(/link l1\.between: no array "zulu" in this lab/);
    expect(text).toMatch(/link l1\.api: port 8470 is already used by array alpha\.api/);
    expect(text).toMatch(/link l3\.between: a link joins two different arrays/);
    expect(text).toMatch(/link l3\.latency: unknown direction "up"/);
    expect(text).toMatch(/link l3\.queueSize must be a size of at least 1K/);
    expect(text).toMatch(/link l3\.cutResetMs must be an integer >= 0/);
    expect(text).toMatch(/link l3\.precise must be true or false, not "yes"/);
    expect(text).toMatch(/links\[3\]\.name/);
    expect(text).toMatch(/links\[3\]\.between must name two arrays/);
    expect(text).toMatch(/link l5\.api: binding 0\.0\.0\.0 \(not loopback\) needs a token/);
    expect(text).toMatch(/link l5\.listen\.toA must be an integer 0-65535/);
  });

  it('remoteLink and host errors', () => {
    const p = labProblems(`
arrays:
  - { name: alpha, remoteLink: { port: 0, speed: 1 }, luns: [] }
  - { name: bravo, remoteLink: { port: 10880, address: "nohost" }, luns: [] }
  - { name: charlie, host: 10.0.0.3, luns: [], nbd: { port: 1 } }
  - { name: delta, luns: [] }
  - { name: echo, remoteLink: { port: 10890 }, nbd: { port: 0 }, api: { port: 0 }, luns: [] }
  - { name: foxtrot, remoteLink: { port: 10890 }, nbd: { port: 0 }, api: { port: 0 }, luns: [] }
links:
  - { name: l1, between: [charlie, delta] }
  - name: l2
    between: [alpha, bravo]
links2: []
`);
    const text = p.join('\n');
    expect(text).toMatch(/array alpha\.remoteLink: unknown key "speed"/);
    expect(text).toMatch(/array alpha\.remoteLink\.port must be a port 1-65535/);
    expect(text).toMatch(/array bravo\.remoteLink\.address must be HOST:PORT/);
    expect(text).toMatch(/array charlie: "luns" does not apply to an array on another host/);
    expect(text).toMatch(/array charlie: "nbd" does not apply/);
    expect(text).toMatch(/link l1: array charlie needs remoteLink/);
    expect(text).toMatch(/link l1: array delta needs remoteLink/);
    expect(text).toMatch(/array foxtrot\.remoteLink: port 10890 is already used by array echo\.remoteLink/);
    expect(text).toMatch(/top level: unknown key "links2"/);
  });

  it('a lab whose arrays all run elsewhere is refused', () => {
    expect(labProblems('arrays:\n  - { name: a, host: h1, remoteLink: { port: 1 } }\n').join('\n')).toMatch(/nothing to start here/);
  });
});
