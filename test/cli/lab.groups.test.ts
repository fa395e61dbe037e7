// Lab files with consistency groups: the groups: list (members from mirrors:, same primary and
// secondary arrays, a mirror in one group, modes and bounds, writelog, durations, throttles through
// parseThrottles with their paths), every problem reported at once; lab/default.yaml's group g0.
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { loadLab, parseLab, LabError } from '../../src/cli/lab.js';
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

const lab = (groups: string, extraMirrors = '') => `
lab: t
arrays:
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 10870 }, luns: [{ name: d0, size: 64M }, { name: d1, size: 64M }, { name: d2, size: 64M }, { name: d3, size: 64M }] }
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 10880 }, luns: [{ name: d0, size: 64M }, { name: d1, size: 64M }, { name: d2, size: 64M }, { name: d3, size: 64M }] }
  - { name: charlie, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 10890 }, luns: [{ name: d0, size: 64M }, { name: d1, size: 64M }] }
links:
  - { name: ab, between: [alpha, bravo], secret: a-secret-of-16-chars }
  - { name: ac, between: [alpha, charlie], secret: a-secret-of-16-chars }
  - { name: bc, between: [bravo, charlie], secret: a-secret-of-16-chars }
mirrors:
  - { name: m1, primary: alpha:d1, secondaries: [bravo:d1] }
  - { name: m2, primary: alpha:d2, secondaries: [bravo:d2] }
  - { name: m3, primary: alpha:d3, secondaries: [charlie:d0] }
  - { name: m4, primary: bravo:d3, secondaries: [charlie:d1] }
  - { name: m5, primary: bravo:d0, secondaries: [alpha:d0] }
${extraMirrors}
groups:
${groups}
`;

describe('lab files with consistency groups', () => {
  it('parses a full group: sizes, bounds with default low marks, writelog, durations, throttles', () => {
    const l = parseLab(
      lab(`
  - name: g0
    members: [m1, m2]
    mode: near-synchronous
    nearSync: { maxEntries: 1000, maxBytes: 64M, lowBytes: 16M }
    writelog: { capacity: 256M, extensions: 2, extensionSize: 64M, extendAt: 90% }
    throttleEvery: 10s
    throttles:
      - { from: "8:00:00", to: "18:00:00", measure: netkbps, op: gt, value: 200, actions: [{ do: sleep-incr, ms: 15 }] }
      - { from: "--", to: "--", measure: pctwl, op: rises-above, value: 80, actions: [{ do: extension-chain }, { do: event, message: "writelog %pctwl%% full" }] }
    perf: { every: 500ms, maxSize: 1M }
  - { name: g1, members: [m4] }
`),
      '/labs/t.yaml',
    );
    expect(l.groups).toEqual([
      {
        name: 'g0',
        members: ['m1', 'm2'],
        primary: 'alpha',
        secondaries: ['bravo'],
        attributes: {
          mode: 'near-synchronous',
          nearSync: { maxEntries: 1000, maxBytes: 64 << 20, lowBytes: 16 << 20 },
          writelog: { capacity: 256 << 20, extensions: 2, extensionCapacity: 64 << 20, extendAtPercent: 90 },
          throttleEveryMs: 10_000,
          throttles: [
            { from: '08:00:00', to: '18:00:00', measure: 'netkbps', op: 'gt', value: 200, actions: [{ do: 'sleep-incr', ms: 15 }] },
            { measure: 'pctwl', op: 'rises-above', value: 80, actions: [{ do: 'extension-chain' }, { do: 'event', message: 'writelog %pctwl%% full' }] },
          ],
          perfEveryMs: 500,
          perfMaxBytes: 1 << 20,
        },
      },
      { name: 'g1', members: ['m4'], primary: 'bravo', secondaries: ['charlie'], attributes: {} },
    ]);
  });

  it('a bound of one measure only: the other is unbounded (no low mark)', () => {
    const l = parseLab(lab(`  - { name: g0, members: [m1], mode: near-synchronous, nearSync: { maxEntries: 0, maxBytes: 64M, lowEntries: 0, lowBytes: 32M } }\n  - { name: g1, members: [m2], nearSync: { maxEntries: 100 } }`), '/l/t.yaml');
    expect(l.groups.map((g) => g.attributes.nearSync)).toEqual([
      { maxEntries: 0, maxBytes: 64 << 20, lowEntries: 0, lowBytes: 32 << 20 },
      { maxEntries: 100, maxBytes: 0, lowBytes: 0 },
    ]);
  });

  it('no groups: key, or an empty list', () => {
    expect(parseLab(lab('  []').replace('groups:\n', 'groups:'), '/l/t.yaml').groups).toEqual([]);
    expect(parseLab(lab('').replace(/groups:\n/, ''), '/l/t.yaml').groups).toEqual([]);
  });

  it('reports every problem at once, with where it is', () => {
    const p = problems(
      lab(`
  - name: g0
    members: [m1, m2, m1, zz, 7]
    colour: red
  - { name: g0, members: [m1] }
  - { name: "bad name", members: [m2] }
  - { members: [] }
  - { name: g4, members: m2 }
  - { name: g5, members: [m1, m3] }
  - { name: g6, members: [m2, m4] }
  - { name: g7, members: [m5], mode: lazy }
  - { name: g8, members: [m5], mode: near-synchronous }
  - name: g9
    members: [m3]
    nearSync: { maxEntries: -1, maxBytes: lots, lowEntries: 1.5, lowBytes: 8M, max: 1 }
  - { name: g10, members: [m3], nearSync: { maxEntries: 0, maxBytes: 0 } }
  - { name: g11, members: [m3], nearSync: { maxEntries: 10, lowEntries: 10, maxBytes: 8M, lowBytes: 9M } }
  - { name: g12, members: [m3], nearSync: 5 }
  - name: g13
    members: [m3]
    writelog: { capacity: 4K, extensions: 129, extensionSize: 65540, extendAt: 0, size: 1G }
  - { name: g14, members: [m3], writelog: { extendAt: 150% } }
  - { name: g15, members: [m3], throttleEvery: 50ms, perf: { every: soon, maxSize: 1K, path: /tmp } }
  - { name: g16, members: [m3], perf: 10s }
  - name: g17
    members: [m3]
    throttles:
      - { measure: iops, op: gt, value: 200, actions: [{ do: sleep-incr, ms: 15 }] }
      - { from: "08:00:00", measure: netkbps, op: gt, value: 1, actions: [] }
      - { measure: pctwl, op: gt, value: 101, actions: [{ do: fly }] }
  - { name: g18, members: [m3], throttles: { measure: netkbps } }
  - 5
`),
    );
    const expected = [
      'groups[0]: unknown key "colour" (expected name, members, mode, nearSync, writelog, throttleEvery, throttles, perf, protectResync, freeze)',
      'group g0.members[2]: mirror m1 is listed twice',
      'group g0.members[3]: no mirror "zz" under mirrors: (mirrors: m1, m2, m3, m4, m5)',
      'group g0.members[4] must be a mirror name, not 7',
      'group g0: duplicate group name',
      'group g0.members[0]: mirror m1 is already in group g0 (a mirror belongs to at most one group)',
      'groups[2].name "bad name" is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)',
      'groups[2].members[0]: mirror m2 is already in group g0 (a mirror belongs to at most one group)',
      "groups[3].name is required (the group's name on the arrays)",
      'groups[3].members must be a non-empty list of mirror names (from mirrors:), e.g. [m1, m2]',
      'group g4.members must be a non-empty list of mirror names (from mirrors:), e.g. [m1, m2]',
      'group g5.members[0]: mirror m1 is already in group g0 (a mirror belongs to at most one group)',
      'group g5.members: every member must replicate to the same arrays (m1: bravo; m3: charlie)',
      'group g6.members[0]: mirror m2 is already in group g0 (a mirror belongs to at most one group)',
      'group g6.members: every member must have its primary on the same array (m2: alpha, m4: bravo)',
      'group g6.members: every member must replicate to the same arrays (m2: bravo; m4: charlie)',
      'group g7.mode must be asynchronous, near-synchronous or synchronous, not "lazy"',
      'group g8.members[0]: mirror m5 is already in group g7 (a mirror belongs to at most one group)',
      'group g8: near-synchronous needs nearSync: { maxEntries: N and/or maxBytes: SIZE } (the backlog at which host writes wait)',
      'group g9.nearSync: unknown key "max" (expected maxEntries, maxBytes, lowEntries, lowBytes)',
      'group g9.nearSync.maxEntries must be an integer >= 0, not -1',
      'group g9.nearSync.maxBytes must be a size like 64M, not "lots"',
      'group g9.nearSync.lowEntries must be an integer >= 0, not 1.5',
      'group g9.members[0]: mirror m3 is already in group g5 (a mirror belongs to at most one group)',
      'group g10.nearSync needs a bound: maxEntries and/or maxBytes above 0',
    ];
    for (const e of expected) expect(p, e).toContain(e);
    const matching = [
      /^group g11.nearSync.lowEntries \(10\) must be below maxEntries \(10\)$/,
      /^group g11.nearSync.lowBytes \(9M\) must be below maxBytes \(8M\)$/,
      /^group g12.nearSync must be a mapping \(maxEntries, maxBytes, lowEntries, lowBytes\)$/,
      /^group g13.writelog: unknown key "size" \(expected capacity, extensions, extensionSize, extendAt\)$/,
      /^group g13.writelog.capacity must be a size like 64M of at least 64K \(a multiple of 8 bytes\), not "4K"$/,
      /^group g13.writelog.extensions must be an integer from 0 to 128, not 129$/,
      /^group g13.writelog.extensionSize must be a size like 64M of at least 64K \(a multiple of 8 bytes\), not 65540$/,
      /^group g13.writelog.extendAt \(percent in use\) must be an integer from 1 to 100, not 0$/,
      /^group g14.writelog.extendAt \(percent in use\) must be an integer from 1 to 100, not 150$/,
      /^group g15.throttleEvery must be a duration of at least 100ms like 10s, 500ms or 1m \(a bare number is seconds\), not "50ms"$/,
      /^group g15.perf: unknown key "path" \(expected every, maxSize\)$/,
      /^group g15.perf.every must be a duration/,
      /^group g15.perf.maxSize must be a size like 64M of at least 4K, not "1K"$/,
      /^group g16.perf must be a mapping \(every, maxSize\)$/,
      /^group g17.throttles\[0\].measure must be one of netkbps, pctcpu, pctwl, not "iops"$/,
      /^group g17.throttles\[1\]: give both from and to \(a time window\), or neither$/,
      /^group g17.throttles\[1\].actions must be a list of 1 to 16 actions/,
      /^group g17.throttles\[2\].value: pctwl is a percentage \(0-100\), not 101$/,
      /^group g17.throttles\[2\].actions\[0\].do must be one of/,
      /^group g18.throttles must be a list of throttles/,
      /^groups\[19\] must be a mapping/,
    ];
    for (const m of matching) expect(p.some((x) => m.test(x)), String(m)).toBe(true);
  });

  it('freeze: armed or off (off read as the string, not a YAML boolean); anything else is a problem', () => {
    const l = parseLab(lab(`  - { name: g0, members: [m1, m2], mode: synchronous, freeze: armed }\n  - { name: g1, members: [m4], freeze: off }`), '/l/t.yaml');
    expect(l.groups.map((g) => g.attributes.freeze)).toEqual(['armed', 'off']);
    const p = problems(lab(`  - { name: g0, members: [m1], freeze: on }\n  - { name: g1, members: [m2], freeze: true }`));
    expect(p).toContain('group g0.freeze must be armed or off, not "on" (synchronous mode: when one member stops replicating to an array, every member stops sending to it; default off)');
    expect(p.some((x) => x.startsWith('group g1.freeze must be armed or off, not true'))).toBe(true);
  });

  it('"groups" must be a list; a member whose mirror is itself invalid is not reported again', () => {
    expect(problems(lab('').replace(/groups:\n/, 'groups: { g0: [m1] }\n'))).toContain('"groups" must be a list');
    const p = problems(lab('  - { name: g0, members: [mx] }', '  - { name: mx, primary: alpha:d0, secondaries: [alpha:nope] }'));
    expect(p.some((x) => x.startsWith('mirror mx'))).toBe(true);
    expect(p.some((x) => x.startsWith('group g0'))).toBe(false);
  });

  it('lab/default.yaml: g0, asynchronous, of m1 (alpha:disk1) and m2 (alpha:disk2) to bravo, with the example throttle', () => {
    const l = loadLab(join(PACKAGE_ROOT, 'lab', 'default.yaml'));
    expect(l.arrays.map((a) => [a.name, a.luns.map((x) => `${x.name}=${x.size}`)])).toEqual([
      ['alpha', ['disk0=1073741824', 'disk1=268435456', 'disk2=268435456']],
      ['bravo', ['disk0=1073741824', 'disk1=268435456', 'disk2=268435456']],
    ]);
    expect(l.mirrors.map((m) => [m.name, `${m.primary.array}:${m.primary.lun}`, m.secondaries.map((s) => `${s.array}:${s.lun}`), m.writePolicy])).toEqual([
      ['m0', 'alpha:disk0', ['bravo:disk0'], 'synchronous'],
      ['m1', 'alpha:disk1', ['bravo:disk1'], 'synchronous'],
      ['m2', 'alpha:disk2', ['bravo:disk2'], 'synchronous'],
    ]);
    expect(l.groups).toHaveLength(1);
    const g = l.groups[0]!;
    expect(g).toMatchObject({ name: 'g0', members: ['m1', 'm2'], primary: 'alpha', secondaries: ['bravo'] });
    expect(g.attributes).toMatchObject({
      mode: 'asynchronous',
      writelog: { capacity: 64 << 20, extensions: 2, extensionCapacity: 32 << 20, extendAtPercent: 90 },
      throttleEveryMs: 10_000,
      perfEveryMs: 10_000,
      perfMaxBytes: 1 << 20,
    });
    // the source's example: slow the sender above 200 KB/s, more above 300, ease off below 200
    expect(g.attributes.throttles!.slice(0, 3)).toEqual([
      { measure: 'netkbps', op: 'gt', value: 200, actions: [{ do: 'sleep-incr', ms: 15 }] },
      { measure: 'netkbps', op: 'gt', value: 300, actions: [{ do: 'sleep-incr', ms: 5 }] },
      { measure: 'netkbps', op: 'lt', value: 200, actions: [{ do: 'sleep-decr', ms: 5 }] },
    ]);
  });
});
