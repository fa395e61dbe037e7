// End to end: `sanbox up` a lab with two arrays and a link (free ports), a real TCP echo server
// as bravo's remote-link port, `sanbox link set|cut|restore|status` through the CLI, `sanbox down`.
// bin/sanbox.js runs dist/: build first (`npm run build`; `npm test` does it).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureCli, type CliCapture } from '../support/cli.js';
import { readState, type LabState } from '../../src/cli/lab.js';
import { BIN, requireBuild } from '../support/paths.js';
import { freePort } from '../support/net.js';


let tmp: string;
let echo: Server;
let echoPort: number;
const echoSockets: Socket[] = [];

beforeAll(async () => {
  requireBuild('cli/link-verbs.js');
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-link-'));
  echo = createServer((s) => {
    echoSockets.push(s);
    s.on('error', () => undefined);
    s.on('data', (d) => s.write(d));
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  echoPort = (echo.address() as AddressInfo).port;
});

afterAll(async () => {
  spawnSync(process.execPath, [BIN, 'down', 'linklab', '--timeout', '20'], { env: { ...process.env, SANBOX_IMAGES: tmp }, timeout: 30_000 });
  for (const s of echoSockets) s.destroy();
  await new Promise<void>((r) => echo.close(() => r()));
  await rm(tmp, { recursive: true, force: true });
});

/** Runs the CLI in process against the lab of SANBOX_IMAGES=tmp. */
function cli(args: string[]): Promise<CliCapture> {
  return captureCli(args, { SANBOX_IMAGES: tmp, SANBOX_LAB: undefined });
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

function echoOnce(s: Socket, text: string, timeoutMs = 5000): Promise<{ ms: number; got: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => (s.off('data', on), reject(new Error(`echo timeout (${got.length}/${text.length})`))), timeoutMs);
    const on = (d: Buffer) => {
      got += d.toString();
      if (got.length >= text.length) {
        clearTimeout(timer);
        s.off('data', on);
        resolve({ ms: performance.now() - t0, got });
      }
    };
    s.on('data', on);
    s.write(text);
  });
}

const silentFor = (s: Socket, ms: number) =>
  new Promise<boolean>((resolve) => {
    const on = () => (clearTimeout(t), s.off('data', on), resolve(false));
    const t = setTimeout(() => (s.off('data', on), resolve(true)), ms);
    s.on('data', on);
  });

describe('sanbox up with two arrays and a link, sanbox link verbs', () => {
  it('up, echo through the link, set/cut/restore/status, bad input, down', async () => {
    const alphaLink = await freePort();
    const file = join(tmp, 'linklab.yaml');
    await writeFile(
      file,
      `lab: linklab
arrays:
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${alphaLink} }, luns: [{ name: d0, size: 1M }] }
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${echoPort} }, luns: [{ name: d0, size: 1M }] }
links:
  - { name: ab, between: [alpha, bravo], listen: { toB: 0, toA: 0 }, api: { port: 0 }, latency: 1 }
`,
    );
    const up = spawnSync(process.execPath, [BIN, 'up', file, '--detach', '--json', '--timeout', '60'], {
      env: { ...process.env, SANBOX_IMAGES: tmp },
      encoding: 'utf8',
      timeout: 90_000,
    });
    expect(up.status, up.stderr + up.stdout).toBe(0);
    const state = JSON.parse(up.stdout) as LabState;
    expect(state.arrays.map((a) => a.name)).toEqual(['alpha', 'bravo']);
    expect(state.links).toHaveLength(1);
    const link = state.links![0]!;
    expect(link).toMatchObject({ name: 'ab', a: 'alpha', b: 'bravo' });
    const toB = link.routes.find((r) => r.forward === 'a-to-b')!;
    expect(toB.target).toEqual({ host: '127.0.0.1', port: echoPort });
    expect(link.routes.find((r) => r.forward === 'b-to-a')!.target.port).toBe(alphaLink);
    const savedImages = process.env.SANBOX_IMAGES;
    process.env.SANBOX_IMAGES = tmp;
    try {
      expect((await readState('linklab'))?.links?.[0]?.api.url).toBe(link.api.url);
    } finally {
      if (savedImages === undefined) delete process.env.SANBOX_IMAGES;
      else process.env.SANBOX_IMAGES = savedImages;
    }

    // A real TCP echo through the emulator.
    const s = await dial(toB.listen.port);
    try {
      expect((await echoOnce(s, 'hello')).got).toBe('hello');

      let r = await cli(['link', 'set', 'ab', '--latency', '30', '--json']);
      expect(r.code, r.err + r.out).toBe(0);
      expect(r.json.status.settings['a-to-b'].latencyMs).toBe(30);
      expect((await echoOnce(s, 'slow')).ms).toBeGreaterThanOrEqual(55);

      // Bad input: clear errors, nothing changed.
      const before = (await cli(['link', 'status', 'ab', '--json'])).json;
      r = await cli(['link', 'set', 'ab', '--latency', '-1']);
      expect([r.code, r.err]).toEqual([2, expect.stringMatching(/--latency must be milliseconds/)]);
      r = await cli(['link', 'set', 'ab', '--bandwidth', 'lots', '--json']);
      expect(r.code).toBe(2);
      expect(r.json.error.message).toMatch(/--bandwidth must be bytes per second/);
      r = await cli(['link', 'set', 'ab', '--direction', 'sideways', '--latency', '1']);
      expect(r.code).toBe(2);
      r = await cli(['link', 'set', 'ab']);
      expect([r.code, r.err]).toEqual([2, expect.stringMatching(/nothing to set/)]);
      r = await cli(['link', 'cut', 'nolink', '--json']);
      expect([r.code, r.json.error.code]).toEqual([1, 'not-found']);
      r = await cli(['link', 'set', 'ab', '--latency', '1', '--api', 'http://127.0.0.1:1']);
      expect(r.code).toBe(3);
      const after = (await cli(['link', 'status', 'ab', '--json'])).json;
      expect(after.settings).toEqual(before.settings);
      expect(after.lastEventSeq).toBe(before.lastEventSeq);

      r = await cli(['link', 'set', 'ab', '--latency', '0', '--bandwidth', '10M', '--direction', 'b-to-a']);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/bravo -> alpha\s+0 ms\s+0 ms\s+10M\/s/);

      // One-way cut: the echo never comes back; restore delivers it.
      r = await cli(['link', 'cut', 'ab', '--direction', 'b-to-a', '--json']);
      expect(r.code).toBe(0);
      expect(r.json.status).toMatchObject({ state: 'partially-cut', cut: { 'a-to-b': false, 'b-to-a': true } });
      s.write('held');
      expect(await silentFor(s, 300)).toBe(true);
      const back = new Promise<string>((resolve, reject) => {
        let got = '';
        const t = setTimeout(() => reject(new Error('held bytes never came back')), 5000);
        s.on('data', function on(d: Buffer) {
          got += d.toString();
          if (got.length >= 4) (clearTimeout(t), s.off('data', on), resolve(got));
        });
      });
      r = await cli(['link', 'restore', 'ab']);
      expect([r.code, r.out]).toEqual([0, expect.stringMatching(/^link ab restored/)]);
      expect(await back).toBe('held');

      // Both ways cut, then restore: the connection survives a short cut.
      r = await cli(['link', 'cut', 'ab']);
      expect(r.code).toBe(0);
      const p = echoOnce(s, 'again');
      expect(await silentFor(s, 200)).toBe(true);
      await cli(['link', 'restore', 'ab']);
      expect((await p).got).toBe('again');

      // set --stall and --reset.
      r = await cli(['link', 'set', 'ab', '--stall', '50', '--json']);
      expect(r.json.events.map((e: { type: string }) => e.type)).toEqual(['link.stalled']);
      const closed = new Promise<string | undefined>((resolve) => {
        let code: string | undefined;
        s.on('error', (e: NodeJS.ErrnoException) => (code = e.code));
        s.on('close', () => resolve(code));
      });
      r = await cli(['link', 'set', 'ab', '--reset']);
      expect(r.code).toBe(0);
      expect(await closed).toBe('ECONNRESET');

      // Status: every change is an event.
      r = await cli(['link', 'status', '--json']);
      expect(r.code).toBe(0);
      const st = r.json.links[0];
      expect(st.link).toBe('ab');
      expect(st.totals.resets).toBe(1);
      expect(st.events.map((e: { type: string }) => e.type)).toEqual(
        expect.arrayContaining(['link.settings', 'link.cut', 'link.restored', 'link.stalled', 'link.reset', 'connection.opened']),
      );
      r = await cli(['link', 'status']);
      expect(r.out).toMatch(/^link ab \(alpha <-> bravo\)  (up|stalled)/);
      expect(r.out).toMatch(/#\d+ \S+ link\.reset/);
    } finally {
      s.destroy();
    }

    const down = spawnSync(process.execPath, [BIN, 'down', 'linklab', '--json'], { env: { ...process.env, SANBOX_IMAGES: tmp }, encoding: 'utf8', timeout: 60_000 });
    expect(down.status).toBe(0);
    expect(JSON.parse(down.stdout)).toMatchObject({ lab: 'linklab', wasRunning: true, stopped: true, killed: [] });
    const r = await cli(['link', 'status']);
    expect(r.code).toBe(3);
    // The emulator is gone with the lab.
    await expect(dial(toB.listen.port)).rejects.toThrow(/ECONNREFUSED/);
  });
});
