// End to end through the CLI: `sanbox up` a lab with two single-process arrays, a link, two
// mirrors and an asynchronous consistency group of them; up creates the mirrors and then the group
// (in bypass until the secondaries are in sync), host writes through qemu-io reach bravo through
// the writelog (sequence numbers, receiver's next expected, identical images), pause grows the
// backlog and resume drains it, and a second up finds the group as the lab file says.
// bin/sanbox.js runs dist/: build first (`npm run build`; `npm test` does it). Needs qemu-io.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBuild } from '../support/paths.js';
import { labCli, untilDefined } from '../support/lab-cli.js';
import { freePort } from '../support/net.js';

let tmp: string;
let labFile: string;

const sanbox = labCli(() => tmp);

function qemuWrite(uri: string, pattern: number, offset: string, length: string): void {
  const r = spawnSync('qemu-io', ['-f', 'raw', '-c', `write -P ${pattern} ${offset} ${length}`, uri], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`qemu-io write to ${uri} failed: ${r.stderr || r.stdout}`);
}

const until = untilDefined;

beforeAll(async () => {
  requireBuild('cli/group-verbs.js');
  if (spawnSync('qemu-io', ['--version']).status !== 0) throw new Error('qemu-io is needed (Debian: qemu-utils; .ci/run installs it)');
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-gup-'));
  const [ra, rb] = [await freePort(), await freePort()];
  labFile = join(tmp, 'glab.yaml');
  await writeFile(
    labFile,
    `
lab: glab
arrays:
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${ra} }, luns: [{ name: disk1, size: 4M }, { name: disk2, size: 4M }] }
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${rb} }, luns: [{ name: disk1, size: 4M }, { name: disk2, size: 4M }] }
links:
  - { name: ab, between: [alpha, bravo], latency: 1, secret: e2e-secret-of-the-link }
mirrors:
  - { name: m1, primary: alpha:disk1, secondaries: [bravo:disk1] }
  - { name: m2, primary: alpha:disk2, secondaries: [bravo:disk2] }
groups:
  - name: g0
    members: [m1, m2]
    mode: asynchronous
    writelog: { capacity: 8M, extensions: 1, extensionSize: 4M }
    throttleEvery: 1s
    throttles: [{ measure: pctwl, op: gt, value: 90, actions: [{ do: event, message: "writelog %pctwl% percent full" }] }]
    perf: { every: 1s, maxSize: 64K }
`,
  );
});

afterAll(async () => {
  sanbox(['down', 'glab', '--timeout', '20'], 30_000);
  await rm(tmp, { recursive: true, force: true });
});

describe('sanbox up with a consistency group, then sanbox group', () => {
  it('creates g0 after its mirrors, replicates host writes through the writelog, pause/resume, a second up finds it unchanged', async () => {
    const up = sanbox(['up', labFile, '--detach']);
    expect(up.code, up.err + up.out).toBe(0);
    expect(up.out).toMatch(/mirror m1 {2}alpha:disk1 -> bravo:disk1 {2}created/);
    expect(up.out).toMatch(/group g0 {2}alpha: m1, m2 -> bravo {2}asynchronous {2}created/);
    // Journaling once the members' secondaries are in sync (a new group waits in bypass).
    const v0 = await until('g0 out of bypass', () => {
      const s = sanbox(['group', 'status', 'g0', '--json']);
      return s.code === 0 && !s.json.record.bypass.on && s.json.senders[0]?.state === 'running' ? s.json : undefined;
    });
    expect(v0).toMatchObject({ array: 'alpha', role: 'primary', record: { name: 'g0', mode: 'asynchronous', writelog: { capacity: 8 << 20, extensions: 1 } }, members: [{ name: 'm1' }, { name: 'm2' }] });
    expect(v0.receivers).toMatchObject([{ array: 'bravo' }]);
    const base = v0.metrics.nextSeq as number;

    const st = sanbox(['status', '--array', 'alpha', '--json']);
    const uri = (lun: string) => st.json.luns.find((l: any) => l.name === lun).uris[0] as string;
    qemuWrite(uri('disk1'), 0xab, '0', '256K');
    qemuWrite(uri('disk2'), 0xcd, '1M', '128K');
    qemuWrite(uri('disk1'), 0xef, '2M', '64K');
    const caught = await until('the writes acknowledged by bravo', () => {
      const s = sanbox(['group', 'status', 'g0', '--json']).json;
      const m = s?.metrics;
      return m && m.nextSeq >= base + 3 && m.ackedThrough === m.nextSeq - 1 && s.receivers[0]?.nextExpected === m.nextSeq ? s : undefined;
    });
    expect(caught.metrics.entriesWaiting).toBe(0);
    expect(caught.senders[0]).toMatchObject({ array: 'bravo', state: 'running', ackedThrough: caught.metrics.nextSeq - 1 });

    const info = sanbox(['group', 'info', 'g0']);
    expect(info.code, info.err).toBe(0);
    expect(info.out).toMatch(/^group g0 {2}\(asynchronous\)\n {2}state: +replicating \(caught up\)/);
    expect(info.out).toMatch(/LUN 0 +mirror m1 +lun 0 +-> +bravo/);
    expect(info.out).toMatch(new RegExp(`sequence: +next ${caught.metrics.nextSeq}, acknowledged through ${caught.metrics.nextSeq - 1}`));
    expect(info.out).toMatch(/throttles: 1/);
    for (const m of ['m1', 'm2']) {
      const v = sanbox(['mirror', 'verify', m, '--json']);
      expect(v.code, v.err).toBe(0);
      expect(v.json.identical).toBe(true);
    }

    // Paused: writes are acknowledged and journaled; the backlog waits for resume.
    expect(sanbox(['group', 'pause', 'g0']).code).toBe(0);
    qemuWrite(uri('disk2'), 0x5a, '3M', '64K');
    const paused = sanbox(['group', 'status', 'g0']);
    expect(paused.out).toMatch(/state +PAUSED/);
    expect(paused.out).toMatch(/backlog +1 entry, 64(\.\d+)? KiB/);
    expect(sanbox(['group', 'resume', 'g0']).code).toBe(0);
    await until('the backlog drained', () => {
      const m = sanbox(['group', 'status', 'g0', '--json']).json?.metrics;
      return m && m.entriesWaiting === 0 && m.ackedThrough === m.nextSeq - 1 ? true : undefined;
    });
    expect(sanbox(['mirror', 'verify', 'm2', '--json']).json.identical).toBe(true);
    const list = sanbox(['group', 'list']);
    expect(list.out).toMatch(/^g0 +asynchronous +replicating \(caught up\) +alpha +m1,m2 +bravo +0 \/ 0 B$/m);

    expect(sanbox(['down', 'glab']).code).toBe(0);
    const again = sanbox(['up', labFile, '--detach']);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/group g0 {2}alpha: m1, m2 -> bravo {2}asynchronous {2}exists\n/);
    expect(again.out).not.toMatch(/warning/);
    const after = sanbox(['group', 'status', 'g0', '--json']).json;
    expect(after.record.groupId).toBe(v0.record.groupId);
  }, 120_000);
});
