// End to end through the CLI: `sanbox up` a lab with two single-process arrays, a link (listen
// ports 0: the arrays get the emulator's actual ports) and a mirror; the mirror is created by `up`,
// then status, fracture, sync, verify through `sanbox mirror`, and `up` again finds it as it is.
// bin/sanbox.js runs dist/: build first (`npm run build`; `npm test` does it).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBuild } from '../support/paths.js';
import { labCli, untilDefined } from '../support/lab-cli.js';
import { freePort } from '../support/net.js';

let tmp: string;
let labFile: string;

const sanbox = labCli(() => tmp);

const until = untilDefined;

beforeAll(async () => {
  requireBuild('cli/mirror-verbs.js');
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-mup-'));
  const [ra, rb] = [await freePort(), await freePort()];
  labFile = join(tmp, 'mlab.yaml');
  await writeFile(
    labFile,
    `
lab: mlab
arrays:
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${ra} }, luns: [{ name: disk0, size: 8M }] }
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${rb} }, luns: [{ name: disk0, size: 8M }] }
links:
  - { name: ab, between: [alpha, bravo], latency: 1, secret: e2e-secret-of-the-link }
mirrors:
  - { name: m0, primary: alpha:disk0, secondaries: [bravo:disk0], regionSize: 64K }
`,
  );
});

afterAll(async () => {
  sanbox(['down', 'mlab', '--timeout', '20'], 30_000);
  await rm(tmp, { recursive: true, force: true });
});

describe('sanbox up with a mirror, then sanbox mirror', () => {
  it('creates m0, synchronizes, fractures, resyncs, verifies; a second up finds it unchanged', async () => {
    const up = sanbox(['up', labFile, '--detach']);
    expect(up.code, up.err + up.out).toBe(0);
    expect(up.out).toMatch(/mirror m0 {2}alpha:disk0 -> bravo:disk0 {2}created/);
    // The array config has the emulator's actual listener port (the lab file said 0).
    const synced = await until('the initial synchronization', () => {
      const s = sanbox(['mirror', 'status', 'm0', '--json']);
      const b = s.json?.images?.find((i: any) => i.array === 'bravo');
      return b && ['SYNCHRONIZED', 'CONSISTENT'].includes(b.state) && !b.resync ? s.json : undefined;
    });
    expect(synced.local).toMatchObject({ role: 'primary', lunName: 'disk0' });
    const text = sanbox(['mirror', 'status']);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/bravo:disk0 +secondary +(SYNCHRONIZED|CONSISTENT) +REACHABLE +connected/);
    const fr = sanbox(['mirror', 'fracture', 'm0', '--json']);
    expect(fr.code, fr.err).toBe(0);
    expect(fr.json.images.find((i: any) => i.array === 'bravo')).toMatchObject({ fractured: true, fractureReason: 'admin' });
    const sy = sanbox(['mirror', 'sync', 'm0']);
    expect(sy.code, sy.err).toBe(0);
    await until('the resync', () => {
      const b = sanbox(['mirror', 'status', 'm0', '--json']).json?.images?.find((i: any) => i.array === 'bravo');
      return b && !b.fractured && !b.resync && b.state !== 'SYNCHRONIZING' ? true : undefined;
    });
    const v = sanbox(['mirror', 'verify', 'm0', '--json']);
    expect(v.code, v.err).toBe(0);
    expect(v.json).toMatchObject({ identical: true, mismatched: [], regionSize: 65536, regionsCompared: 128 });
    const st = sanbox(['status', '--array', 'alpha']);
    expect(st.out).toMatch(/mirrors:\n {2}m0 {2}ACTIVE {2}epoch 1 {2}here: primary {2}alpha:disk0 -> bravo:disk0/);
    expect(sanbox(['down', 'mlab']).code).toBe(0);
    const again = sanbox(['up', labFile, '--detach']);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/mirror m0 {2}alpha:disk0 -> bravo:disk0 {2}exists\n/);
    expect(again.out).not.toMatch(/warning/);
  });
});
