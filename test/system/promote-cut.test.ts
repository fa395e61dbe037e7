// Issue 19, item 6: a plain `mirror promote` (and `group promote`) during a link cut must not
// make a split brain. Two real array processes (`sanbox up --detach`) joined by a link emulator;
// the link is cut (both directions, then one direction at a time) and the secondary is promoted
// without --force: the promote is refused (exit 1) with a message naming --force and what it risks,
// the old primary keeps taking writes, the secondary stays read-only, and the secondary does not
// list the primary as REACHABLE while the link is cut. After the restore the plain promote works
// (the old primary is asked to step down first) and every write acknowledged on the old primary is
// on the new one.
// bin/sanbox.js runs dist/: build first (`npm run build`; `npm test` does it).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NbdClient } from '../../src/check/nbd-client/index.js';
import { requireBuild } from '../support/paths.js';
import { labCli, untilDefined } from '../support/lab-cli.js';
import { freePort } from '../support/net.js';

let tmp: string;
let labFile: string;

const sanbox = labCli(() => tmp);

const until = untilDefined;

/** Polls `fn` until it is true (true) or `ms` passed (false). */
async function seen(fn: () => boolean, ms: number): Promise<boolean> {
  return until('', () => (fn() ? true : undefined), ms).catch(() => false);
}

/** The NBD URI of a LUN of an array, from `sanbox status --json`. */
function uriOf(array: string, lun: string): string {
  const st = sanbox(['status', '--array', array, '--json']);
  expect(st.code, st.err).toBe(0);
  return st.json.luns.find((l: any) => l.name === lun).uris[0] as string;
}

/** One write through NBD; resolves once acknowledged. */
async function write(uri: string, offset: number, data: Buffer): Promise<void> {
  const c = await NbdClient.connect(uri, { timeoutMs: 10_000 });
  try {
    await c.write(offset, data, { fua: true });
  } finally {
    await c.close();
  }
}

async function read(uri: string, offset: number, length: number): Promise<Buffer> {
  const c = await NbdClient.connect(uri, { timeoutMs: 10_000 });
  try {
    return await c.read(offset, length);
  } finally {
    await c.close();
  }
}

/** The image of `array` in `mirror`'s status as `view` sees it (`--array view`). */
function imageSeenBy(view: string, mirror: string, array: string): any {
  const s = sanbox(['mirror', 'status', mirror, '--array', view, '--json']);
  expect(s.code, s.err).toBe(0);
  return { local: s.json.local, image: s.json.images.find((i: any) => i.array === array) };
}

const inSync = (mirror: string) => () => {
  const b = imageSeenBy('alpha', mirror, 'bravo').image;
  return b && ['SYNCHRONIZED', 'CONSISTENT'].includes(b.state) && !b.fractured && !b.resync && b.reachability === 'REACHABLE' ? true : undefined;
};

/** Writes acknowledged on alpha, to be found on bravo after the failover. */
const acked: Array<{ lun: string; offset: number; data: Buffer }> = [];

beforeAll(async () => {
  requireBuild('cli/mirror-verbs.js');
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-pcut-'));
  const [ra, rb] = [await freePort(), await freePort()];
  labFile = join(tmp, 'pcut.yaml');
  await writeFile(
    labFile,
    `
lab: pcut
arrays:
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${ra} }, luns: [{ name: disk0, size: 8M }, { name: disk1, size: 4M }, { name: disk2, size: 4M }] }
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${rb} }, luns: [{ name: disk0, size: 8M }, { name: disk1, size: 4M }, { name: disk2, size: 4M }] }
links:
  - { name: ab, between: [alpha, bravo], latency: 1, secret: e2e-secret-of-the-link }
mirrors:
  - { name: m0, primary: alpha:disk0, secondaries: [bravo:disk0], regionSize: 64K }
  - { name: m1, primary: alpha:disk1, secondaries: [bravo:disk1] }
  - { name: m2, primary: alpha:disk2, secondaries: [bravo:disk2] }
groups:
  - { name: g0, members: [m1, m2], mode: asynchronous, writelog: { capacity: 8M } }
`,
  );
  const up = sanbox(['up', labFile, '--detach']);
  if (up.code !== 0) throw new Error(`sanbox up: ${up.err}${up.out}`);
  await until('m0 synchronized', inSync('m0'));
}, 90_000);

afterAll(async () => {
  sanbox(['down', 'pcut', '--timeout', '20'], 30_000);
  await rm(tmp, { recursive: true, force: true });
});

/**
 * With the link cut in `direction`: alpha keeps taking writes, bravo does not list alpha as
 * REACHABLE, and a plain promote on bravo is refused naming --force and the split brain.
 */
async function cutAndRefuse(direction: 'both' | 'a-to-b' | 'b-to-a', n: number): Promise<void> {
  const cut = sanbox(['link', 'cut', 'ab', '--direction', direction]);
  expect(cut.code, cut.err).toBe(0);
  try {
    const alphaDisk0 = uriOf('alpha', 'disk0');
    const data = randomBytes(65536);
    // the first write waits for the remote write to time out, then the secondary is fractured
    await write(alphaDisk0, n * 1024 * 1024, data);
    acked.push({ lun: 'disk0', offset: n * 1024 * 1024, data });
    // Each side's view of the other follows the link, not the last record it was sent. Soft:
    // the promote below is checked whatever these say.
    const alphaSees = await seen(() => imageSeenBy('alpha', 'm0', 'bravo').image?.reachability !== 'REACHABLE', 15_000);
    expect.soft(alphaSees, `alpha must not list bravo as REACHABLE during the cut (${direction})`).toBe(true);
    const bravoSees = await seen(() => imageSeenBy('bravo', 'm0', 'alpha').image?.reachability !== 'REACHABLE', 15_000);
    expect.soft(bravoSees, `bravo must not list alpha as REACHABLE during the cut (${direction})`).toBe(true);
    const p = sanbox(['mirror', 'promote', 'm0', '--array', 'bravo']);
    expect(p.code, `promote during a cut (${direction}) must be refused: ${p.out}${p.err}`).toBe(1);
    expect(p.err).toMatch(/--force/);
    expect(p.err).toMatch(/split brain/);
    expect(p.err).toMatch(/acknowledged/);
    const pj = sanbox(['mirror', 'promote', 'm0', '--array', 'bravo', '--json']);
    expect(pj.code).toBe(1);
    expect(pj.json?.error?.code).toBe('unreachable');
    // nothing changed: alpha is the primary and takes writes, bravo stays a read-only secondary
    expect(imageSeenBy('bravo', 'm0', 'bravo').local.role).toBe('secondary');
    expect(imageSeenBy('alpha', 'm0', 'alpha').local.role).toBe('primary');
    const more = randomBytes(65536);
    await write(alphaDisk0, n * 1024 * 1024 + 65536, more);
    acked.push({ lun: 'disk0', offset: n * 1024 * 1024 + 65536, data: more });
    await expect(write(uriOf('bravo', 'disk0'), 0, randomBytes(4096))).rejects.toThrow();
    // the group: the same refusal, and no member promoted
    const g1 = randomBytes(65536);
    await write(uriOf('alpha', 'disk1'), n * 131072, g1);
    acked.push({ lun: 'disk1', offset: n * 131072, data: g1 });
    const gp = sanbox(['group', 'promote', 'g0', '--array', 'bravo']);
    expect(gp.code, `group promote during a cut (${direction}) must be refused: ${gp.out}${gp.err}`).toBe(1);
    expect(gp.err).toMatch(/--force/);
    expect(gp.err).toMatch(/split brain/);
    for (const m of ['m1', 'm2']) expect(imageSeenBy('bravo', m, 'bravo').local.role).toBe('secondary');
    expect(imageSeenBy('alpha', 'm1', 'alpha').local.role).toBe('primary');
    await write(uriOf('alpha', 'disk2'), n * 131072, g1);
    acked.push({ lun: 'disk2', offset: n * 131072, data: g1 });
  } finally {
    const r = sanbox(['link', 'restore', 'ab']);
    expect(r.code, r.err).toBe(0);
  }
  await until('m0 back in sync', inSync('m0'), 40_000);
  await until('bravo sees alpha reachable', () => (imageSeenBy('bravo', 'm0', 'alpha').image?.reachability === 'REACHABLE' ? true : undefined), 10_000);
}

describe('plain promote during a link cut (issue 19, item 6)', { timeout: 240_000 }, () => {
  it('is refused with both directions cut: --force and the split brain named, alpha keeps writing, bravo read-only', async () => {
    await cutAndRefuse('both', 1);
  });

  it('is refused with one direction cut (a-to-b, then b-to-a)', async () => {
    await cutAndRefuse('a-to-b', 2);
    await cutAndRefuse('b-to-a', 3);
  });

  it('after the restore the plain promote demotes alpha first and loses nothing acknowledged', async () => {
    await until('m1 in sync', inSync('m1'), 40_000);
    await until('m2 in sync', inSync('m2'), 40_000);
    await until('g0 drained', () => (sanbox(['group', 'status', 'g0', '--array', 'alpha', '--json']).json?.metrics?.entriesWaiting === 0 ? true : undefined), 30_000);
    const p = sanbox(['mirror', 'promote', 'm0', '--array', 'bravo']);
    expect(p.code, p.err + p.out).toBe(0);
    expect(imageSeenBy('bravo', 'm0', 'bravo').local.role).toBe('primary');
    expect(imageSeenBy('alpha', 'm0', 'alpha').local.role).toBe('secondary');
    await expect(write(uriOf('alpha', 'disk0'), 0, randomBytes(4096))).rejects.toThrow();
    const gp = sanbox(['group', 'promote', 'g0', '--array', 'bravo']);
    expect(gp.code, gp.err + gp.out).toBe(0);
    for (const m of ['m1', 'm2']) {
      expect(imageSeenBy('bravo', m, 'bravo').local.role).toBe('primary');
      await until(`alpha demoted in ${m}`, () => (imageSeenBy('alpha', m, 'alpha').local.role === 'secondary' ? true : undefined), 15_000);
    }
    for (const a of acked) expect((await read(uriOf('bravo', a.lun), a.offset, a.data.length)).equals(a.data), `${a.lun} at ${a.offset} on bravo`).toBe(true);
    // no split brain anywhere
    for (const m of ['m0', 'm1', 'm2']) {
      const s = sanbox(['mirror', 'status', m, '--array', 'bravo', '--json']);
      expect(s.json.splitBrain, `${m}: ${s.out}`).toBe(false);
    }
    await write(uriOf('bravo', 'disk0'), 0, randomBytes(4096));
  });
});
