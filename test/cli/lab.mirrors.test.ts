// Lab files with mirrors: the mirrors: list, link secret:/secretFile:, and the remoteLink config
// (bind, port, peers) each array process gets.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arrayConfig, loadLab, parseLab, LabError, type LinkListeners } from '../../src/cli/lab.js';
import { PACKAGE_ROOT } from '../../src/cli/common.js';

function problems(yaml: string, file = '/labs/test.yaml'): string[] {
  try {
    parseLab(yaml, file);
  } catch (e) {
    expect(e).toBeInstanceOf(LabError);
    expect((e as LabError).exitCode).toBe(2);
    return (e as LabError).problems;
  }
  throw new Error('expected the lab to be rejected');
}

const SECRET = 'a-secret-of-16-chars';
const lab = (mirrors: string, linkExtra = `, secret: ${SECRET}`, extraArrays = '') => `
lab: t
arrays:
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 10870 }, luns: [{ name: disk0, size: 64M }, { name: disk1, size: 32M }] }
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 10880 }, luns: [{ name: disk0, size: 64M }, { name: small, size: 32M }] }
  - { name: charlie, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 10890 }, luns: [{ name: disk0, size: 64M }] }
${extraArrays}
links:
  - { name: ab, between: [alpha, bravo], listen: { toB: 10871, toA: 10872 }${linkExtra} }
mirrors:
${mirrors}
`;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-mlab-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('lab files with mirrors', () => {
  it('lab/default.yaml: alpha (two SPs) and bravo, link alpha-bravo with a secret, mirrors m0 (sync) and m1, m2 (group g0)', () => {
    const l = loadLab(join(PACKAGE_ROOT, 'lab', 'default.yaml'));
    expect(l.arrays.map((a) => [a.name, !!a.sps, a.luns.map((x) => `${x.name}=${x.size}`)])).toEqual([
      ['alpha', true, ['disk0=1073741824', 'disk1=268435456', 'disk2=268435456']],
      ['bravo', false, ['disk0=1073741824', 'disk1=268435456', 'disk2=268435456']],
    ]);
    expect(l.links).toHaveLength(1);
    expect(l.links[0]).toMatchObject({ a: 'alpha', b: 'bravo', settings: { 'a-to-b': { latencyMs: 1, jitterMs: 0, bandwidth: 0 } } });
    expect(l.links[0]!.secret!.length).toBeGreaterThanOrEqual(16);
    expect(l.mirrors.map((m) => m.name)).toEqual(['m0', 'm1', 'm2']);
    expect(l.mirrors.slice(0, 1)).toEqual([
      {
        name: 'm0',
        primary: { array: 'alpha', lun: 'disk0' },
        secondaries: [{ array: 'bravo', lun: 'disk0', synchronized: false }],
        writePolicy: 'synchronous',
        regionSize: 65536,
        syncRate: 64 << 20,
        activationPolicy: 'automatic',
        minImagesRequired: -1,
        maxMissingImages: -1,
        allowSecondaryReads: false,
      },
    ]);
    // No port shared with lab/two-arrays.yaml (both labs can run at once).
    const two = loadLab(join(PACKAGE_ROOT, 'lab', 'two-arrays.yaml'));
    const ports = (x: typeof l) => [
      ...x.arrays.flatMap((a) => [a.nbd.port, ...(a.sps ? [a.nbd.port + 1] : []), a.api.port, a.remoteLink?.port ?? 0]),
      ...x.links.flatMap((k) => [k.listen.toA, k.listen.toB, k.api.port]),
    ];
    const mine = ports(l);
    expect(mine.filter((p) => ports(two).includes(p))).toEqual([]);
    expect(new Set(mine).size).toBe(mine.length);
  });

  it('lab/two-arrays.yaml has mirror m0 alpha:disk0 -> bravo:disk0', () => {
    const l = loadLab(join(PACKAGE_ROOT, 'lab', 'two-arrays.yaml'));
    expect(l.mirrors.map((m) => [m.name, `${m.primary.array}:${m.primary.lun}`, m.secondaries.map((s) => `${s.array}:${s.lun}`)])).toEqual([['m0', 'alpha:disk0', ['bravo:disk0']]]);
  });

  it('secondaries as strings or mappings; all knobs; LUN ids', () => {
    const l = parseLab(
      lab(
        `  - name: m1
    primary: alpha:disk0
    secondaries:
      - { image: bravo:disk0, synchronized: true, recovery: manual, syncRate: 32M }
    regionSize: 128K
    syncRate: 10M/s
    activation: manual
    minImages: 2
    maxMissing: 0
    secondaryReads: true
    syncPriority: high
  - { name: m2, primary: "alpha:1", secondaries: ["bravo:1"] }`,
      ),
      '/labs/t.yaml',
    );
    expect(l.mirrors).toEqual([
      {
        name: 'm1',
        primary: { array: 'alpha', lun: 'disk0' },
        secondaries: [{ array: 'bravo', lun: 'disk0', synchronized: true, recoveryPolicy: 'manual', syncRate: 32 << 20 }],
        writePolicy: 'synchronous',
        regionSize: 131072,
        syncRate: 10 << 20,
        activationPolicy: 'manual',
        minImagesRequired: 2,
        maxMissingImages: 0,
        allowSecondaryReads: true,
        syncPriority: 'high',
      },
      { name: 'm2', primary: { array: 'alpha', lun: 1 }, secondaries: [{ array: 'bravo', lun: 1, synchronized: false }], writePolicy: 'synchronous' },
    ]);
  });

  it('a mirror may not be named . or ..', () => {
    expect(problems(lab('  - { name: "..", primary: alpha:disk0, secondaries: [bravo:disk0] }\n  - { name: ".", primary: alpha:disk1, secondaries: [bravo:small] }'))).toEqual([
      'mirrors[0].name ".." is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)',
      'mirrors[1].name "." is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)',
    ]);
  });

  it('reports every mirror problem at once', () => {
    const p = problems(
      lab(`  - name: m1
    primary: alpha:disk0
    secondaries: [bravo:small]
    writePolicy: asynchronous
    regionSize: 3K
    syncRate: 0
    activation: sometimes
    minImages: 5
    maxMissing: -2
    secondaryReads: "no"
    syncPriority: urgent
    colour: red
  - name: m1
    primary: alpha:nope
    secondaries: [zulu:disk0, "alpha:disk1", bravo]
  - name: m3
    primary: alpha:disk1
    secondaries: [charlie:disk0]
  - name: m4
    primary: bravo:disk0
    secondaries: [alpha:disk0, { image: charlie:disk0, recovery: later, synchronized: 1, syncRate: fast, extra: 1 }, { recovery: auto }]
  - { primary: alpha:disk0, secondaries: [] }
  - { name: m6, primary: alpha:disk1, secondaries: [bravo:disk0, "bravo:1"], writePolicy: turbo }
  - just-a-string`),
    );
    const text = p.join('\n');
    const expected = [
      /mirror m1\.secondaries\[0\]: LUN bravo:small \(32M\) is smaller than the primary alpha:disk0 \(64M\)/,
      /mirror m1\.writePolicy asynchronous: a mirror is synchronous; asynchronous replication is a mode of a consistency group \(groups: \[\{ name, members: \[m1\], mode: asynchronous \}\]\)/,
      /mirror m1\.regionSize must be a power of two from 4K to 64M/,
      /mirror m1\.syncRate must be a positive rate/,
      /mirror m1\.activation must be automatic or manual/,
      /mirror m1\.minImages 5 is more than the mirror's 2 images/,
      /mirror m1\.maxMissing must be an integer >= -1/,
      /mirror m1\.secondaryReads must be true or false/,
      /mirror m1\.syncPriority must be low, medium or high/,
      /mirrors\[0\]: unknown key "colour"/,
      /mirror m1: duplicate mirror name/,
      /mirror m1\.primary: array alpha has no LUN "nope" in this lab \(LUNs: disk0, disk1\)/,
      /mirror m1\.secondaries\[0\]: no array "zulu" in this lab/,
      /mirror m1\.secondaries\[2\] must be ARRAY:LUN \(e\.g\. alpha:disk0\), not "bravo"/,
      /mirror m3: no link between alpha and charlie; add one under links:/,
      /mirror m4\.secondaries\[0\]: LUN alpha:disk0 is already an image of mirror m1/,
      /mirror m3\.primary: LUN alpha:disk1 is already an image of mirror m1/,
      /mirror m4: no link between bravo and charlie/,
      /mirror m4\.secondaries\[1\]: unknown key "extra"/,
      /mirror m4\.secondaries\[1\]\.recovery must be auto or manual/,
      /mirror m4\.secondaries\[1\]\.synchronized must be true or false/,
      /mirror m4\.secondaries\[1\]\.syncRate must be a positive rate/,
      /mirror m4\.secondaries\[2\]\.image is required/,
      /mirrors\[4\]\.name is required/,
      /mirrors\[4\]\.secondaries must be a non-empty list/,
      /mirror m6\.secondaries\[1\]: a mirror has at most one image per array \(bravo twice\)/,
      /mirror m6\.writePolicy must be synchronous .* not "turbo"/,
      /mirrors\[6\] must be a mapping/,
    ];
    for (const re of expected) expect(text).toMatch(re);
    expect(problems(lab('  - { name: m0, primary: alpha:disk1, secondaries: [alpha:disk0] }'))).toEqual([
      'mirror m0.secondaries[0]: the secondary must be on another array than the primary (alpha)',
    ]);
  });

  it('a mirror over a link without a secret, bad secrets, secretFile', async () => {
    expect(problems(lab('  - { name: m0, primary: alpha:disk0, secondaries: [bravo:disk0] }', ''))).toEqual([
      'mirror m0: link ab needs secret: or secretFile: (the mirror replicates alpha -> bravo over it)',
    ]);
    // A link without a secret is fine while no mirror uses it.
    expect(parseLab(lab('  []', ''), '/labs/t.yaml').links[0]!.secret).toBeUndefined();
    expect(problems(lab('  []', ', secret: short'))).toEqual(['link ab.secret: the shared secret must have at least 16 characters (has 5)']);
    expect(problems(lab('  []', ', secret: 1234567890123456789'))).toEqual(['link ab.secret must be a string (quote it if it looks like a number)']);
    expect(problems(lab('  []', `, secret: ${SECRET}, secretFile: x`))).toEqual(['link ab: give secret or secretFile, not both']);
    const missing = problems(lab('  []', ', secretFile: nowhere.secret'), join(tmp, 'l.yaml'));
    expect(missing).toEqual([`link ab.secretFile: cannot read ${join(tmp, 'nowhere.secret')}: ENOENT`]);
    await writeFile(join(tmp, 'ab.secret'), `${SECRET}-from-a-file\n`);
    const l = parseLab(lab('  - { name: m0, primary: alpha:disk0, secondaries: [bravo:disk0] }', ', secretFile: ab.secret'), join(tmp, 'l.yaml'));
    expect(l.links[0]!.secret).toBe(`${SECRET}-from-a-file`);
    // An invalid link is reported once (not also as "no link").
    const p = problems(lab('  - { name: m0, primary: alpha:disk0, secondaries: [bravo:disk0] }', ', latency: -1'));
    expect(p).toHaveLength(2);
    expect(p.join('\n')).not.toMatch(/no link between/);
    expect(problems('arrays: [{ name: a, luns: [] }]\nmirrors: { m0: x }')).toEqual(['"mirrors" must be a list']);
  });

  it('arrayConfig: remoteLink with peers through the emulator (toB for a, toA for b), direct to another host', () => {
    const l = parseLab(
      `
arrays:
  - { name: alpha, remoteLink: { port: 10870 }, luns: [{ name: disk0, size: 1M }] }
  - { name: bravo, nbd: { port: 10819 }, api: { port: 8479 }, remoteLink: { bind: 0.0.0.0, port: 10880 }, luns: [{ name: disk0, size: 1M }] }
  - { name: dr, host: 10.0.0.9, remoteLink: { port: 10890 }, secret: a-secret-for-dr-site }
  - { name: lone, nbd: { port: 10829 }, api: { port: 8489 }, luns: [] }
links:
  - { name: ab, between: [alpha, bravo], listen: { bind: 0.0.0.0, toB: 10871, toA: 0 }, secret: ${SECRET} }
  - { name: nosecret, between: [bravo, alpha], listen: { toB: 10873, toA: 10874 } }
mirrors:
  - { name: m0, primary: alpha:disk0, secondaries: [bravo:disk0, dr:disk0] }
`,
      '/labs/t.yaml',
    );
    const [alpha, bravo, , lone] = l.arrays;
    expect(arrayConfig(alpha!, l).remoteLink).toEqual({
      bind: '127.0.0.1',
      port: 10870,
      peers: [
        { array: 'bravo', host: '127.0.0.1', port: 10871, secret: SECRET },
        { array: 'dr', host: '10.0.0.9', port: 10890, secret: 'a-secret-for-dr-site' },
      ],
    });
    // The emulator's actual ports (toA was 0: any free port).
    const listeners: LinkListeners = new Map([['ab', { toB: { host: '0.0.0.0', port: 10871 }, toA: { host: '0.0.0.0', port: 40001 } }]]);
    expect(arrayConfig(bravo!, l, listeners).remoteLink).toEqual({
      bind: '0.0.0.0',
      port: 10880,
      peers: [
        { array: 'alpha', host: '127.0.0.1', port: 40001, secret: SECRET },
        { array: 'dr', host: '10.0.0.9', port: 10890, secret: 'a-secret-for-dr-site' },
      ],
    });
    expect(arrayConfig(lone!, l).remoteLink).toBeUndefined();
    // A remote-link port but no link with a secret: no mirror driver (the port stays free).
    const nos = parseLab(
      `arrays:
  - { name: alpha, remoteLink: { port: 10870 }, luns: [] }
  - { name: bravo, nbd: { port: 10819 }, api: { port: 8479 }, remoteLink: { port: 10880 }, luns: [] }
links:
  - { name: ab, between: [alpha, bravo] }
`,
      '/labs/t.yaml',
    );
    expect(nos.arrays.map((a) => arrayConfig(a, nos).remoteLink)).toEqual([undefined, undefined]);
    expect(arrayConfig(lone!, l)).toMatchObject({ name: 'lone', nbd: { port: 10829 }, api: { port: 8489 } });
  });

  it('an array on another host reached directly needs a secret', () => {
    const p = problems(`
arrays:
  - { name: alpha, remoteLink: { port: 10870 }, luns: [{ name: disk0, size: 1M }] }
  - { name: dr, host: 10.0.0.9, remoteLink: { port: 10890 } }
  - { name: dr2, host: 10.0.0.10, secretFile: x, secret: y }
mirrors:
  - { name: m0, primary: alpha:disk0, secondaries: [dr:disk0] }
`);
    expect(p).toEqual(['array dr2: give secret or secretFile, not both', 'mirror m0: array dr (on 10.0.0.9) is reached directly (no link in this lab): give it secret: or secretFile:']);
  });
});
