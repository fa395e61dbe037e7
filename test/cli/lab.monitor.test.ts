// Lab files with monitor: — the defaults, the default lab's monitor, and every validation error.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadLab, parseLab } from '../../src/cli/lab.js';
import { PACKAGE_ROOT } from '../../src/cli/common.js';
import { labProblems } from '../support/lab.js';

const base = `
lab: t
arrays:
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 17001 }, luns: [{ name: d0, size: 1M }, { name: d1, size: 1M }, { name: d2, size: 1M }] }
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: 17002 }, luns: [{ name: d0, size: 1M }, { name: d1, size: 1M }, { name: d2, size: 1M }] }
links:
  - { name: ab, between: [alpha, bravo], secret: a-secret-of-the-test-link }
mirrors:
  - { name: m0, primary: alpha:d0, secondaries: [bravo:d0] }
  - { name: m1, primary: alpha:d1, secondaries: [bravo:d1] }
  - { name: m2, primary: alpha:d2, secondaries: [bravo:d2] }
groups:
  - { name: g0, members: [m1, m2] }
`;

describe('lab files: monitor', () => {
  it('defaults: app the lab name, the primary array, every 30 s, autorecover yes, admin fractures no', () => {
    const lab = parseLab(base + 'monitor:\n  resources:\n    - { group: m0 }\n    - { group: g0, app: pay, interval: 5, autorecover: no, adminFractures: yes, array: bravo }\n', '/labs/t.yaml');
    expect(lab.monitor).toEqual({
      resources: [
        { appName: 't', deviceGroup: 'm0', array: 'alpha', intervalSeconds: 30, autorecover: true, resyncAdminFractures: false },
        { appName: 'pay', deviceGroup: 'g0', array: 'bravo', intervalSeconds: 5, autorecover: false, resyncAdminFractures: true },
      ],
    });
    expect(parseLab(base, '/labs/t.yaml').monitor).toBeUndefined();
  });

  it('the default lab monitors m0 and g0 with autorecover on', () => {
    const lab = loadLab(join(PACKAGE_ROOT, 'lab', 'default.yaml'));
    expect(lab.monitor?.resources.map((r) => [r.deviceGroup, r.array, r.autorecover])).toEqual([
      ['m0', 'alpha', true],
      ['g0', 'alpha', true],
    ]);
  });

  it('lists every problem at once', () => {
    const p = labProblems(
      base +
        `monitor:
  resources:
    - { group: nope }
    - { group: m0, interval: 0 }
    - { group: m0, app: "a b" }
    - { group: m1, array: charlie }
    - { group: m1, autorecover: maybe, colour: red }
    - { group: m2 }
    - { group: m2 }
`,
    );
    expect(p).toEqual(
      expect.arrayContaining([
        'monitor.resources[0].group: no mirror or group "nope" in this lab',
        'monitor.resources[1].interval must be whole seconds 1-86400, not 0',
        expect.stringMatching(/^monitor\.resources\[2\]\.app must be/),
        'monitor.resources[3].array: no array "charlie" in this lab',
        'monitor.resources[4]: unknown key "colour" (expected group, app, interval, autorecover, adminFractures, array)',
        'monitor.resources[4].autorecover must be yes or no, not "maybe"',
        'monitor.resources[6]: t/m2 is listed twice',
      ]),
    );
    expect(labProblems(base + 'monitor: [m0]\n')).toEqual(['"monitor" must be a mapping like { resources: [{ group: m0 }] }']);
    expect(labProblems(base + 'monitor: { resources: {}, extra: 1 }\n')).toEqual(['monitor: unknown key "extra" (expected resources)', 'monitor.resources must be a list like [{ group: m0 }]']);
  });
});
