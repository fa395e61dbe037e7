// Lab files with heartbeat: — the defaults, lab/heartbeat.yaml, and every validation error at once.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadLab, parseLab } from '../../src/cli/lab.js';
import { PACKAGE_ROOT } from '../../src/cli/common.js';
import { labProblems } from '../support/lab.js';

const luns = ['d0', 'd1', 'd2', 'd3', 'hb0', 'hb1', 'hb2', 'hb3', 'rhb0'].map((n) => `{ name: ${n}, size: 1M }`).join(', ');

// alpha and bravo are their own (implicit) sites. hb0, hb1: good heartbeat mirrors alpha -> bravo;
// rhb0: a good reverse one bravo -> alpha; hb2: no secondaryReads; hb3: in group g1; m1, m2: in g0.
const base = `
lab: t
arrays:
  - { name: alpha, nbd: { port: 17011 }, api: { port: 17012 }, remoteLink: { port: 17001 }, luns: [${luns}] }
  - { name: bravo, nbd: { port: 17021 }, api: { port: 17022 }, remoteLink: { port: 17002 }, luns: [${luns}] }
links:
  - { name: ab, between: [alpha, bravo], secret: a-secret-of-the-test-link }
mirrors:
  - { name: m0, primary: alpha:d0, secondaries: [bravo:d0] }
  - { name: m1, primary: alpha:d1, secondaries: [bravo:d1] }
  - { name: m2, primary: alpha:d2, secondaries: [bravo:d2] }
  - { name: r0, primary: bravo:d3, secondaries: [alpha:d3] }
  - { name: hb0, primary: alpha:hb0, secondaries: [bravo:hb0], secondaryReads: true }
  - { name: hb1, primary: alpha:hb1, secondaries: [bravo:hb1], secondaryReads: true }
  - { name: hb2, primary: alpha:hb2, secondaries: [bravo:hb2] }
  - { name: hb3, primary: alpha:hb3, secondaries: [bravo:hb3], secondaryReads: true }
  - { name: rhb0, primary: bravo:rhb0, secondaries: [alpha:rhb0], secondaryReads: true }
groups:
  - { name: g0, members: [m1, m2] }
  - { name: g1, members: [hb3] }
`;

const hosts = '  hosts: [{ name: alpha-1, site: alpha }, { name: bravo-1, site: bravo }]\n';
const minimal = 'heartbeat:\n  production: alpha\n  standby: bravo\n' + hosts;

describe('lab files: heartbeat', () => {
  it('the arrays of both sites need fixed nbd and api ports (agents keep the addresses they start with)', () => {
    const anyPort = base.replace('nbd: { port: 17011 }, api: { port: 17012 }', 'nbd: { port: 0 }, api: { port: 17012 }').replace('api: { port: 17022 }', 'api: { port: 0 }');
    expect(labProblems(anyPort + minimal + '  mirrors: [hb0, hb1]\n')).toEqual([
      'heartbeat: array alpha needs fixed nbd and api ports (not 0): its heartbeat agents keep the addresses they start with, and a restarted array on any free port would come back elsewhere',
      'heartbeat: array bravo needs fixed nbd and api ports (not 0): its heartbeat agents keep the addresses they start with, and a restarted array on any free port would come back elsewhere',
    ]);
  });

  it('a lab without heartbeat: has none', () => {
    expect(parseLab(base, '/labs/t.yaml').heartbeat).toBeUndefined();
  });

  it('defaults: every second, timeout 6, recover after 3, cluster default instance 1, no fence without a witness, automatic failover', () => {
    const lab = parseLab(base + minimal, '/labs/t.yaml');
    expect(lab.heartbeat).toEqual({
      cluster: 'default',
      instance: 1,
      production: 'alpha',
      standby: 'bravo',
      intervalMs: 1000,
      timeoutIntervals: 6,
      recoverAfter: 3,
      hosts: [
        { name: 'alpha-1', site: 'alpha', bind: '127.0.0.1', port: 0 },
        { name: 'bravo-1', site: 'bravo', bind: '127.0.0.1', port: 0 },
      ],
      network: { latencyMs: 0, jitterMs: 0, api: { bind: '127.0.0.1', port: 0 } },
      mirrors: [],
      reverseMirrors: [],
      failover: { mirrors: [], groups: [], automatic: true },
      fence: false,
      actions: {},
    });
  });

  it('a witness turns the fence on by default; fence: no turns it off; promote sorts mirrors from groups', () => {
    const withWitness = base + minimal + '  witness: { port: 17100 }\n  mirrors: [hb0, hb1]\n  reverseMirrors: [rhb0]\n  failover: { promote: [m0, g0], automatic: no }\n  interval: 250ms\n  timeout: 4\n  recoverAfter: 2\n  cluster: c1\n  instance: 7\n';
    const hb = parseLab(withWitness, '/labs/t.yaml').heartbeat!;
    expect(hb.fence).toBe(true);
    expect(hb.witness).toEqual({ bind: '127.0.0.1', port: 17100, latencyMs: 0 });
    expect(hb.failover).toEqual({ mirrors: ['m0'], groups: ['g0'], automatic: false });
    expect([hb.intervalMs, hb.timeoutIntervals, hb.recoverAfter, hb.cluster, hb.instance]).toEqual([250, 4, 2, 'c1', 7]);
    expect(hb.mirrors).toEqual(['hb0', 'hb1']);
    expect(hb.reverseMirrors).toEqual(['rhb0']);
    expect(parseLab(withWitness + '  fence: no\n', '/labs/t.yaml').heartbeat!.fence).toBe(false);
    // a bare number is seconds, like every duration of a lab file
    expect(parseLab(base + minimal + '  interval: 2\n', '/labs/t.yaml').heartbeat!.intervalMs).toBe(2000);
  });

  it('lab/heartbeat.yaml: three agents, two heartbeat mirrors and a reverse one, a witness, promote m0, fence on', () => {
    const lab = loadLab(join(PACKAGE_ROOT, 'lab', 'heartbeat.yaml'));
    const hb = lab.heartbeat!;
    expect(hb).toBeDefined();
    expect([hb.cluster, hb.instance, hb.production, hb.standby]).toEqual(['heartbeat-lab', 1, 'alpha', 'bravo']);
    expect([hb.intervalMs, hb.timeoutIntervals, hb.recoverAfter]).toEqual([500, 6, 3]);
    expect(hb.hosts).toEqual([
      { name: 'alpha-1', site: 'alpha', bind: '127.0.0.1', port: 8611 },
      { name: 'alpha-2', site: 'alpha', bind: '127.0.0.1', port: 8612 },
      { name: 'bravo-1', site: 'bravo', bind: '127.0.0.1', port: 8621 },
    ]);
    expect(hb.network).toEqual({ latencyMs: 1, jitterMs: 0, api: { bind: '127.0.0.1', port: 8498 } });
    expect(hb.mirrors).toEqual(['hb0', 'hb1']);
    expect(hb.reverseMirrors).toEqual(['rhb0']);
    expect(hb.witness).toEqual({ bind: '127.0.0.1', port: 8630, latencyMs: 1 });
    expect(hb.failover).toEqual({ mirrors: ['m0'], groups: [], automatic: true });
    expect(hb.fence).toBe(true);
    expect(Object.keys(hb.actions).sort()).toEqual(['SERIOUS', 'SYSTEM DOWN']);
    // its heartbeat mirrors allow secondary reads and are in no group
    for (const m of [...hb.mirrors, ...hb.reverseMirrors]) expect(lab.mirrors.find((x) => x.name === m)?.allowSecondaryReads).toBe(true);
    expect(lab.groups.flatMap((g) => g.members).filter((m) => [...hb.mirrors, ...hb.reverseMirrors].includes(m))).toEqual([]);
  });

  it('lists every problem at once, with its exact message', () => {
    const p = labProblems(
      base +
        `heartbeat:
  production: alpha
  standby: bravo
  colour: red
  interval: 10ms
  timeout: 1
  hosts:
    - { name: alpha-1, site: alpha, port: 8601 }
    - { name: alpha-1, site: alpha, port: 8602 }
    - { name: charlie-1, site: charlie, port: 8603 }
    - { name: alpha-2, site: alpha, port: 17001 }
    - { name: alpha-3, site: alpha, port: 8602 }
  network: { api: { port: 8601 } }
  mirrors: [hb0, hb3, hb2, rhb0]
  reverseMirrors: [hb1]
  failover: { promote: [nope, hb0, m1, r0] }
  fence: yes
  actions: { LOUD: "echo x", SERIOUS: "" }
`,
    );
    expect(p).toEqual([
      'heartbeat: unknown key "colour" (expected cluster, instance, production, standby, interval, timeout, recoverAfter, hosts, network, mirrors, reverseMirrors, witness, failover, fence, actions)',
      'heartbeat.interval must be a duration from 50ms to 10m (500ms, 1s), not "10ms"',
      'heartbeat.mirrors: hb3: mirror hb3 is a member of group g1; heartbeat mirrors stay out of data consistency groups (a split of the group would stop the heartbeats)',
      'heartbeat.mirrors: hb2: mirror hb2 needs secondaryReads: true (the other site reads heartbeats from its secondary)',
      "heartbeat.mirrors: rhb0: mirror rhb0's primary bravo is not at site alpha",
      'heartbeat.mirrors: rhb0: mirror rhb0 must have exactly one secondary, at site bravo',
      "heartbeat.reverseMirrors: hb1: mirror hb1's primary alpha is not at site bravo",
      'heartbeat.reverseMirrors: hb1: mirror hb1 must have exactly one secondary, at site alpha',
      'heartbeat.timeout must be an integer 2-1000, not 1',
      'heartbeat.hosts[1]: host alpha-1 is listed twice',
      'heartbeat.hosts[2].site must be the production or the standby site (alpha or bravo), not "charlie"',
      'heartbeat.hosts[3].port: port 17001 is already used by array alpha.remoteLink',
      'heartbeat.hosts[4].port: port 8602 is already used by heartbeat.hosts[1].port',
      'heartbeat.hosts: site bravo has no host (each site needs an agent)',
      'heartbeat.network.api.port: port 8601 is already used by heartbeat.hosts[0].port',
      'heartbeat.failover.promote: nope: no mirror or group of that name in this lab',
      'heartbeat.failover.promote: hb0 is a heartbeat mirror, not data',
      'heartbeat.failover.promote: m1 is a member of a group: promote the group',
      'heartbeat.failover.promote: r0: its primary array bravo is not at the production site alpha',
      'heartbeat.actions: unknown level "LOUD" (expected SYSTEM DOWN, SERIOUS, MODERATE, TEMPORALLY)',
      'heartbeat.actions.SERIOUS must be a shell command',
      'heartbeat.fence needs a witness: without one a partitioned production cannot tell a partition from a dead standby',
    ]);
  });

  it('an unknown site, fewer than two heartbeat mirrors, an interval that is no duration, a timeout too large', () => {
    const p = labProblems(
      base +
        `heartbeat:
  production: charlie
  standby: bravo
  interval: soon
  timeout: 1001
  recoverAfter: 0
  hosts: [{ name: bravo-1, site: bravo }]
  mirrors: [hb0]
`,
    );
    expect(p).toEqual([
      'heartbeat.production must be a site of this lab (alpha, bravo), not "charlie"',
      'heartbeat.interval must be a duration from 50ms to 10m (500ms, 1s), not "soon"',
      'heartbeat.mirrors: install at least two heartbeat mirrors (one failed volume must not look like a dead site)',
      "heartbeat.mirrors: hb0: mirror hb0's primary alpha is not at site charlie",
      'heartbeat.timeout must be an integer 2-1000, not 1001',
      'heartbeat.recoverAfter must be an integer 1-1000, not 0',
    ]);
    expect(labProblems(base + minimal + '  interval: 11m\n')).toEqual(['heartbeat.interval must be a duration from 50ms to 10m (500ms, 1s), not "11m"']);
    expect(labProblems(base + minimal + '  mirrors: [hb0, hb0]\n')).toEqual(['heartbeat.mirrors lists a name twice']);
  });

  it('production and standby must be different sites, and both are required (each reported once)', () => {
    expect(labProblems(base + 'heartbeat:\n  production: alpha\n  standby: alpha\n  hosts: [{ name: alpha-1, site: alpha }]\n')).toEqual(['heartbeat: production and standby must be different sites']);
    expect(labProblems(base + 'heartbeat:\n  hosts: [{ name: alpha-1, site: alpha }]\n')).toEqual([
      'heartbeat.production is required: a site of this lab (alpha, bravo)',
      'heartbeat.standby is required: a site of this lab (alpha, bravo)',
      'heartbeat.hosts[0].site must be the production or the standby site (), not "alpha"',
    ]);
    expect(labProblems(base + 'heartbeat:\n  production: alpha\n  hosts: [{ name: alpha-1, site: alpha }, { name: bravo-1, site: bravo }]\n')).toEqual([
      'heartbeat.standby is required: a site of this lab (alpha, bravo)',
      'heartbeat.hosts[1].site must be the production or the standby site (alpha), not "bravo"',
    ]);
  });

  it('ports are unique across the lab: the witness, the network api and the hosts against each other and the arrays', () => {
    expect(labProblems(base + minimal.replace('site: bravo }', 'site: bravo, port: 17002 }') + '  witness: { port: 8620 }\n  network: { api: { port: 8620 } }\n')).toEqual([
      'heartbeat.hosts[1].port: port 17002 is already used by array bravo.remoteLink',
      'heartbeat.network.api.port: port 8620 is already used by heartbeat.witness.port',
    ]);
  });

  it('refuses shapes that are not mappings or lists', () => {
    expect(labProblems(base + 'heartbeat: [alpha, bravo]\n')).toEqual(['"heartbeat" must be a mapping like { production: alpha, standby: bravo, hosts: [...], mirrors: [hb0, hb1] }']);
    expect(labProblems(base + 'heartbeat:\n  production: alpha\n  standby: bravo\n  hosts: []\n')).toEqual([
      'heartbeat.hosts must list the agents, like [{ name: alpha-1, site: alpha }, { name: bravo-1, site: bravo }]',
    ]);
    expect(
      labProblems(base + minimal + '  witness: 8620\n  network: { latency: -1, speed: 2 }\n  failover: { promote: m0, when: now, automatic: maybe }\n  actions: [echo]\n  fence: perhaps\n'),
    ).toEqual([
      'heartbeat.witness must be a mapping like { port: 8620, latency: 1 }',
      'heartbeat.network: unknown key "speed" (expected latency, jitter, api)',
      'heartbeat.network.latency must be milliseconds 0-60000, not -1',
      'heartbeat.failover: unknown key "when" (expected promote, automatic)',
      'heartbeat.failover.automatic must be yes or no, not "maybe"',
      'heartbeat.failover.promote must be a list of names like [hb0, hb1]',
      'heartbeat.fence must be yes or no, not "perhaps"',
      'heartbeat.actions must be a mapping of a level (SYSTEM DOWN, SERIOUS, MODERATE, TEMPORALLY) to a shell command',
    ]);
    expect(labProblems(base + 'heartbeat:\n  production: alpha\n  standby: bravo\n  hosts: [{ name: alpha-1, site: alpha, colour: red }, { name: bravo-1, site: bravo, port: 70000 }]\n')).toEqual([
      'heartbeat.hosts[0]: unknown key "colour" (expected name, site, bind, port)',
      'heartbeat.hosts[1].port must be an integer 0-65535 (0: any free port), not 70000',
    ]);
  });
});
