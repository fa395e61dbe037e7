// `sanbox vs state|wait|freeze` against a real two-site lab (processes: `sanbox up --detach`): a
// synchronous mirror m0 and an asynchronous group g0 (m1, m2) from east (alpha) to west (bravo).
// The states follow a link cut and restore; wait exits 0 / 4 / 5; freeze pauses the group at one
// journal record on every member; bad input exits 2 and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labCli, untilDefined } from '../support/lab-cli.js';
import { freePort } from '../support/net.js';

const labYaml = (p: number[]) => `
lab: vs
sites:
  - { name: east, arrays: [alpha] }
  - { name: west, arrays: [bravo] }
arrays:
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${p[0]} }, luns: [{ name: disk0, size: 8M }, { name: disk1, size: 8M }, { name: disk2, size: 8M }] }
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${p[1]} }, luns: [{ name: disk0, size: 8M }, { name: disk1, size: 8M }, { name: disk2, size: 8M }] }
links:
  - { name: ab, between: [alpha, bravo], secret: vs-test-link-secret-16 }
mirrors:
  - { name: m0, primary: alpha:disk0, secondaries: [bravo:disk0] }
  - { name: m1, primary: alpha:disk1, secondaries: [bravo:disk1] }
  - { name: m2, primary: alpha:disk2, secondaries: [bravo:disk2] }
groups:
  - { name: g0, members: [m1, m2], mode: asynchronous }
dashboard: off
`;

let dir = '';
const sanbox = labCli(() => dir);

interface Reading {
  set: string;
  state: string;
  reason: string;
  productionSite: string | null;
  direction: string | null;
}

function states(): Record<string, Reading> {
  const r = sanbox(['vs', 'state', '--json']);
  expect(r.code, r.err).toBe(0);
  return Object.fromEntries((r.json.sets as Reading[]).map((s) => [s.set, s]));
}

const until = (what: string, fn: (s: Record<string, Reading>) => boolean, ms = 30_000) =>
  untilDefined(
    what,
    () => {
      const s = states();
      return fn(s) ? s : undefined;
    },
    ms,
  );

describe('sanbox vs (a real lab)', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sanbox-vs-'));
    await writeFile(join(dir, 'lab.yaml'), labYaml([await freePort(), await freePort()]));
    const r = sanbox(['up', join(dir, 'lab.yaml'), '--detach'], 120_000);
    expect(r.code, r.out + r.err).toBe(0);
  }, 150_000);

  afterAll(async () => {
    if (dir) sanbox(['down'], 60_000);
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 90_000);

  it('InSync for the mirror once synchronized, XDMode for the group, production east', async () => {
    const s = await until('m0 InSync and g0 XDMode', (x) => x.m0?.state === 'InSync' && x.g0?.state === 'XDMode');
    expect(s.m0).toMatchObject({ productionSite: 'east', direction: 'east->west', reason: 'duplex' });
    expect(s.g0).toMatchObject({ productionSite: 'east', direction: 'east->west', reason: 'journaling' });
    expect(Object.keys(s).sort()).toEqual(['g0', 'm0']); // the group's members are its volume set
    const text = sanbox(['vs', 'state', 'g0']);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/g0\s+group\s+XDMode\s+east\s+east->west/);
    expect(text.out).toMatch(/m1\s+member\s+duplex/);
  }, 60_000);

  it('bad input exits 2 and changes nothing; a member or an unknown set exits 1', () => {
    for (const args of [
      ['vs', 'wait', 'm0', 'Bogus', '--timeout', '5'],
      ['vs', 'wait', 'm0', 'InSync', '--timeout', '0'],
      ['vs', 'wait', 'm0', 'InSync', '--timeout', 'soon'],
      ['vs', 'wait', 'm0', 'InSync'],
      ['vs', 'freeze', 'bad/name'],
    ]) {
      const r = sanbox(args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(2);
    }
    expect(sanbox(['vs', 'state', 'm1']).code).toBe(1);
    expect(sanbox(['vs', 'freeze', 'nosuch']).code).toBe(1);
    const s = states();
    expect([s.m0!.state, s.g0!.state]).toEqual(['InSync', 'XDMode']);
  });

  it('a link cut: m0 SplitSite (or OutOfSync), g0 XDModeOutOfSync; restored: vs wait m0 InSync exits 0', async () => {
    expect(sanbox(['link', 'cut', 'ab', '--reset']).code).toBe(0);
    const s = await until('the cut seen', (x) => ['SplitSite', 'OutOfSync'].includes(x.m0!.state) && x.g0!.state === 'XDModeOutOfSync');
    expect(s.g0!.reason).toMatch(/sender-down|suspended/);
    expect(sanbox(['link', 'restore', 'ab']).code).toBe(0);
    const w = sanbox(['vs', 'wait', 'm0', 'InSync', '--timeout', '30', '--json'], 60_000);
    expect(w.code, w.err).toBe(0);
    expect(w.json).toMatchObject({ set: 'm0', target: 'InSync', outcome: 'reached', exitCode: 0 });
    await until('g0 XDMode again', (x) => x.g0!.state === 'XDMode');
  }, 90_000);

  it('vs wait: 4 on a timeout, 5 when the set can never reach the state', () => {
    const t = sanbox(['vs', 'wait', 'm0', 'RecoverySite', '--timeout', '2']);
    expect(t.code, t.err).toBe(4);
    expect(t.err).toMatch(/RecoverySite not reached within 2 s; now m0 InSync/);
    const n = sanbox(['vs', 'wait', 'nosuch', 'InSync', '--timeout', '5', '--json']);
    expect(n.code).toBe(5);
    expect(n.json).toMatchObject({ outcome: 'never', reason: 'no-such-set', exitCode: 5 });
    expect(sanbox(['vs', 'wait', 'm0', 'XDMode', '--timeout', '5']).code).toBe(5);
  }, 30_000);

  it('vs freeze g0: paused at one journal record for every member; again: nothing to do', async () => {
    const r = sanbox(['vs', 'freeze', 'g0', '--json'], 60_000);
    expect(r.code, r.err).toBe(0);
    expect(r.json).toMatchObject({ set: 'g0', action: 'paused', primaryArray: 'alpha', after: { state: 'XDModeOutOfSync', reason: 'paused' } });
    const b = r.json.boundary;
    expect(b.members).toEqual(['m1', 'm2']);
    expect(b.settled).toBe(true);
    expect(b.copies).toHaveLength(1);
    expect(b.copies[0].array).toBe('bravo');
    expect(b.copies[0].appliedThrough).toBe(b.copies[0].ackedThrough);
    const g = sanbox(['group', 'status', 'g0', '--json', '--array', 'bravo']);
    expect(g.code, g.err).toBe(0);
    expect(g.json.receiver.nextExpected - 1).toBe(b.copies[0].appliedThrough);
    const again = sanbox(['vs', 'freeze', 'g0', '--json']);
    expect(again.code).toBe(0);
    expect(again.json.action).toBe('already-frozen');
    expect(states().g0!.state).toBe('XDModeOutOfSync');
  }, 60_000);

  it('vs freeze m0: its secondary fractured by the operator, SplitSite', () => {
    const r = sanbox(['vs', 'freeze', 'm0']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/froze mirror m0 on alpha: fractured bravo:0/);
    expect(r.out).toMatch(/state: m0 SplitSite \(suspended: bravo:0 \S+ fractured \(admin\)\)/);
  });
});
