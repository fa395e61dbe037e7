// Lab files with automation: — the defaults, a full file, and every validation error at once.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadLab, parseLab } from '../../../src/cli/lab.js';
import { REPO } from '../../support/paths.js';
import { labProblems } from '../../support/lab.js';

const luns = ['d0', 'd1', 'd2', 'd3', 'd4', 'd5'].map((n) => `{ name: ${n}, size: 1M }`).join(', ');
const secret = 'secret: a-secret-of-the-test-link';

// Sites east (e1, e2) and west (w1); c1 is its own (implicit) site. m0, g0 (m1, m2): east -> west;
// r0: west -> east; one: east -> east (both images at one site); far: east -> c1 (no image at west).
const base = `
lab: t
arrays:
  - { name: e1, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 17001 }, luns: [${luns}] }
  - { name: e2, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 17002 }, luns: [${luns}] }
  - { name: w1, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 17003 }, luns: [${luns}] }
  - { name: c1, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 17004 }, luns: [${luns}] }
links:
  - { name: ew, between: [e1, w1], ${secret} }
  - { name: ee, between: [e1, e2], ${secret} }
  - { name: ec, between: [e1, c1], ${secret} }
mirrors:
  - { name: m0, primary: e1:d0, secondaries: [w1:d0] }
  - { name: m1, primary: e1:d1, secondaries: [w1:d1] }
  - { name: m2, primary: e1:d2, secondaries: [w1:d2] }
  - { name: r0, primary: w1:d3, secondaries: [e1:d3] }
  - { name: one, primary: e1:d4, secondaries: [e2:d4] }
  - { name: far, primary: e1:d5, secondaries: [c1:d5] }
groups:
  - { name: g0, members: [m1, m2] }
sites:
  - { name: east, arrays: [e1, e2] }
  - { name: west, arrays: [w1] }
`;

const controllers = '  controllers: [{ site: east, port: 17801 }, { site: west }]\n';
const head = 'automation:\n  secret: sanbox-lab-automation-secret\n' + controllers;

describe('lab files: automation', () => {
  it('a lab without automation: has none', () => {
    expect(parseLab(base, '/labs/t.yaml').automation).toBeUndefined();
  });

  it('defaults: 6 s to declare a site lost, loopback, manual failover and failback, no PIT copy, 120 s storage, 30 s resources, preferred: the home site of the first set', () => {
    const lab = parseLab(
      base +
        head +
        `  resourceGroups:
    - name: rg0
      volumeSets: [r0, g0]
      resources:
        - { name: fs, start: "mount /x", stop: "umount /x", monitor: "mountpoint -q /x" }
        - { name: app, start: "app start", stop: "app stop", monitor: "app status", after: [fs] }
`,
      '/labs/t.yaml',
    );
    expect(lab.automation).toEqual({
      secret: 'sanbox-lab-automation-secret',
      declareLostAfterMs: 6000,
      controllers: [
        { site: 'east', bind: '127.0.0.1', port: 17801 },
        { site: 'west', bind: '127.0.0.1', port: 0 },
      ],
      resourceGroups: [
        {
          name: 'rg0',
          volumeSets: ['r0', 'g0'],
          preferredSite: 'west',
          failover: 'manual',
          failback: 'manual',
          usePitCopy: false,
          storageTimeoutMs: 120_000,
          resources: [
            { name: 'fs', start: 'mount /x', stop: 'umount /x', monitor: 'mountpoint -q /x', after: [], startTimeoutMs: 30_000, stopTimeoutMs: 30_000 },
            { name: 'app', start: 'app start', stop: 'app stop', monitor: 'app status', after: ['fs'], startTimeoutMs: 30_000, stopTimeoutMs: 30_000 },
          ],
        },
      ],
    });
    // no resource groups yet: the controllers alone
    expect(parseLab(base + head, '/labs/t.yaml').automation!.resourceGroups).toEqual([]);
  });

  it('every key set: durations in the lab file forms (a bare number is seconds), yes/no, policies', () => {
    const a = parseLab(
      base +
        `automation:
  secret: sanbox-lab-automation-secret
  declareLostAfter: 2.5s
  controllers:
    - { site: east, bind: 127.0.0.1, port: 8701 }
    - { site: west, bind: 127.0.0.2, port: 8702 }
  resourceGroups:
    - name: rg0
      volumeSets: [m0, g0]
      preferredSite: west
      failover: automatic
      failback: automatic
      usePitCopy: yes
      storageTimeout: 2m
      resources:
        - { name: fs, start: a, stop: b, monitor: c, startTimeout: 1500ms, stopTimeout: 45 }
    - { name: rg1, volumeSets: [r0], usePitCopy: no, failover: manual, storageTimeout: 1h }
`,
      '/labs/t.yaml',
    ).automation!;
    expect(a.declareLostAfterMs).toBe(2500);
    expect(a.controllers).toEqual([
      { site: 'east', bind: '127.0.0.1', port: 8701 },
      { site: 'west', bind: '127.0.0.2', port: 8702 },
    ]);
    const [rg0, rg1] = a.resourceGroups;
    expect({ ...rg0, resources: undefined }).toEqual({ name: 'rg0', volumeSets: ['m0', 'g0'], preferredSite: 'west', failover: 'automatic', failback: 'automatic', usePitCopy: true, storageTimeoutMs: 120_000, resources: undefined });
    expect(rg0!.resources[0]).toMatchObject({ startTimeoutMs: 1500, stopTimeoutMs: 45_000, after: [] });
    expect(rg1).toMatchObject({ name: 'rg1', preferredSite: 'west', failover: 'manual', usePitCopy: false, storageTimeoutMs: 3_600_000, resources: [] });
  });

  it('the top level and the controllers: every problem at once', () => {
    const p = labProblems(
      base +
        `automation:
  secret: too-short
  declareLostAfter: 500ms
  colour: red
  controllers:
    - { site: east, port: 17001, zone: a }
    - { site: east }
    - { site: mars }
    - rack-7
  resourceGroups: []
`,
    );
    expect(p).toEqual([
      'automation: unknown key "colour" (expected secret, declareLostAfter, controllers, resourceGroups)',
      'automation.secret must have at least 16 characters (has 9)',
      'automation.declareLostAfter must be a duration from 1s to 10m (like 30s, 2m; a bare number is seconds), not "500ms"',
      'automation.controllers must list exactly two controllers, one per site (has 4)',
      'automation.controllers[0]: unknown key "zone" (expected site, bind, port)',
      'automation.controllers[0].port: port 17001 is already used by array e1.remoteLink',
      'automation.controllers[1]: a second controller at site east (one controller per site)',
      'automation.controllers[2].site must be a site of this lab (east, west, c1), not "mars"',
      'automation.controllers[3] must be a mapping like { site: east, bind: 127.0.0.1, port: 8701 }',
    ]);
  });

  it('one controller is too few; a missing secret and a site-less controller are named', () => {
    expect(labProblems(base + 'automation:\n  controllers: [{ site: east }, { port: 8701 }]\n')).toEqual([
      'automation.secret is required: a shared secret of at least 16 characters (the controllers and the CLI authenticate with it)',
      'automation.controllers[1].site is required: a site of this lab (east, west, c1)',
    ]);
    expect(labProblems(base + 'automation:\n  secret: sanbox-lab-automation-secret\n  controllers: [{ site: east }]\n')).toEqual([
      'automation.controllers must list exactly two controllers, one per site (has 1)',
    ]);
    expect(labProblems(base + 'automation:\n  secret: sanbox-lab-automation-secret\n')).toEqual([
      'automation.controllers is required: exactly two, one per site, like [{ site: east, port: 8701 }, { site: west, port: 8702 }]',
    ]);
  });

  it('a non-mapping or a non-list where one is expected', () => {
    expect(labProblems(base + 'automation: yes\n')).toEqual([
      'automation must be a mapping like { secret: ..., controllers: [{ site: east }, { site: west }], resourceGroups: [...] }',
    ]);
    expect(labProblems(base + 'automation:\n  secret: sanbox-lab-automation-secret\n  controllers: { site: east }\n  resourceGroups: { name: rg0 }\n')).toEqual([
      'automation.controllers must be a list of two controllers, one per site, like [{ site: east, port: 8701 }, { site: west, port: 8702 }]',
      'automation.resourceGroups must be a list of resource groups like [{ name: rg0, volumeSets: [m0, g0] }]',
    ]);
    expect(labProblems(base + head + '  resourceGroups: [rg0, { name: rg1, volumeSets: m0, resources: { name: x } }, { name: rg2, volumeSets: [] }, { name: rg3 }]\n')).toEqual([
      'automation.resourceGroups[0] must be a mapping like { name: rg0, volumeSets: [m0, g0], failover: automatic }',
      'automation.resourceGroups[1].volumeSets must be a non-empty list of volume sets (groups, or mirrors in no group) like [m0, g0]',
      'automation.resourceGroups[1].resources must be a list of resources like [{ name: app, start: "...", stop: "...", monitor: "..." }]',
      'automation.resourceGroups[2].volumeSets must be a non-empty list of volume sets (groups, or mirrors in no group) like [m0, g0]',
      'automation.resourceGroups[3].volumeSets is required: the group\'s volume sets, like [m0, g0]',
    ]);
  });

  it('resource groups and their volume sets: every problem at once', () => {
    const p = labProblems(
      base +
        head +
        `  resourceGroups:
    - name: rg0
      volumeSets: [m0, nope, m1, one, far, m0]
      preferredSite: c1
      failover: sometimes
      failback: yes
      usePitCopy: maybe
      storageTimeout: 2h
      shape: round
    - name: rg0
      volumeSets: [g0, m0]
    - name: "bad name"
      volumeSets: [r0]
`,
    );
    expect(p).toEqual([
      'automation.resourceGroups[0]: unknown key "shape" (expected name, volumeSets, preferredSite, failover, failback, usePitCopy, storageTimeout, resources)',
      'automation.resourceGroups[0].volumeSets[1]: no volume set "nope" in this lab (a group of groups:, or a mirror of mirrors: in no group)',
      "automation.resourceGroups[0].volumeSets[2]: mirror m1 is a member of group g0: a group's members move with it, list the group",
      'automation.resourceGroups[0].volumeSets[3]: every array of one is at site east: a set with no image at another site cannot be moved',
      "automation.resourceGroups[0].volumeSets[4]: far's array c1 is at site c1, which has no controller (controllers at east and west)",
      'automation.resourceGroups[0].volumeSets[4]: far has no image at site west (it must have one at each controller\'s site)',
      'automation.resourceGroups[0].volumeSets[5]: m0 is listed twice',
      "automation.resourceGroups[0].preferredSite must be a controller's site (east, west), not \"c1\"",
      'automation.resourceGroups[0].failover must be automatic or manual, not "sometimes"',
      'automation.resourceGroups[0].failback must be automatic or manual, not "yes"',
      'automation.resourceGroups[0].usePitCopy must be yes or no, not "maybe"',
      'automation.resourceGroups[0].storageTimeout must be a duration from 1s to 1h (like 30s, 2m; a bare number is seconds), not "2h"',
      'automation.resourceGroups[1]: resource group rg0 is listed twice',
      'automation.resourceGroups[1].volumeSets[1]: volume set m0 is already in resource group rg0 (a set is in at most one resource group)',
      'automation.resourceGroups[2].name "bad name" is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)',
    ]);
  });

  it('host resources: required commands, names, after (unknown, self, twice, a cycle): every problem at once', () => {
    const p = labProblems(
      base +
        head +
        `  resourceGroups:
    - name: rg0
      volumeSets: [m0]
      resources:
        - { name: fs, start: a, stop: b, monitor: c, after: [db] }
        - { name: ip, start: "", stop: 7, color: red }
        - { name: db, start: a, stop: b, monitor: c, after: [app, fs] }
        - { name: app, start: a, stop: b, monitor: c, after: [db, app, ghost, db], startTimeout: 0s }
        - { name: fs, start: a, stop: b, monitor: c }
        - { name: web, start: a, stop: b, monitor: c, after: lb }
        - { name: lone, start: a, stop: b, monitor: c, after: [lone2] }
        - { name: lone2, start: a, stop: b, monitor: c, after: [lone] }
`,
    );
    expect(p).toEqual([
      'automation.resourceGroups[0].resources[1]: unknown key "color" (expected name, start, stop, monitor, after, startTimeout, stopTimeout)',
      'automation.resourceGroups[0].resources[1].start must be a non-empty shell command, not ""',
      'automation.resourceGroups[0].resources[1].stop must be a non-empty shell command, not 7',
      'automation.resourceGroups[0].resources[1].monitor is required: a shell command',
      'automation.resourceGroups[0].resources[3].startTimeout must be a duration from 1s to 1h (like 30s, 2m; a bare number is seconds), not "0s"',
      'automation.resourceGroups[0].resources[4]: resource fs is listed twice in this group',
      'automation.resourceGroups[0].resources[5].after must be a list of resource names of this group, like [fs]',
      'automation.resourceGroups[0].resources[3].after[1]: resource app cannot come after itself',
      'automation.resourceGroups[0].resources[3].after[2]: no resource "ghost" in this group (resources: fs, ip, db, app, web, lone, lone2)',
      'automation.resourceGroups[0].resources[3].after[3]: db is listed twice',
      'automation.resourceGroups[0].resources: a cycle of after: db after app after db (none of them can start first)',
      'automation.resourceGroups[0].resources: a cycle of after: fs after db after fs (none of them can start first)',
      'automation.resourceGroups[0].resources: a cycle of after: lone after lone2 after lone (none of them can start first)',
    ]);
    // a longer cycle is named in full, once
    const three = (after: [string, string, string]) =>
      labProblems(base + head + `  resourceGroups:\n    - name: rg0\n      volumeSets: [m0]\n      resources:\n` + ['a', 'b', 'c'].map((n, i) => `        - { name: ${n}, start: x, stop: y, monitor: z, after: [${after[i]}] }\n`).join(''));
    expect(three(['b', 'c', 'a'])).toEqual(['automation.resourceGroups[0].resources: a cycle of after: a after b after c after a (none of them can start first)']);
  });
});

describe('shipped lab files with automation:', () => {
  it.each(['lab/two-sites.yaml', 'scenarios/labs/automation.yaml'])('%s: two controllers, rg0 of m0 with one host resource, automatic failover and failback', (file) => {
    const lab = loadLab(join(REPO, file));
    expect(lab.automation?.controllers.map((c) => c.site)).toEqual(['east', 'west']);
    expect(lab.automation?.resourceGroups).toMatchObject([{ name: 'rg0', volumeSets: ['m0'], preferredSite: 'east', failover: 'automatic', failback: 'automatic', resources: [{ name: 'app' }] }]);
  });
});
