// restart: on-failure (with its backoff and limit) on a real foreground `sanbox up`, an operator
// crash that the policy leaves alone, Ctrl-C (SIGINT) stopping a lab with a crashed array and
// leaving no process, and an invalid sites:/restart: lab refused before anything starts.
// bin/sanbox.js runs dist/: build first (`npx tsc -p tsconfig.json`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSanbox } from '../support/launch.js';
import { until } from '../support/net.js';
import { BIN, REPO, requireBuild } from '../support/paths.js';
import { pidAlive } from '../../src/cli/common.js';

let dir: string;
let env: Record<string, string>;
let up: ChildProcess;
let upExit: Promise<number | null>;
let upErr = '';
const LAB = 'selfheal';
const statePath = () => join(dir, 'images', '.labs', `${LAB}.json`);
const state = () => JSON.parse(readFileSync(statePath(), 'utf8'));
const events = (): any[] =>
  readFileSync(join(dir, 'images', '.labs', `${LAB}.events.jsonl`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
const solo = () => state().arrays[0];
const count = (type: string) => events().filter((e) => e.type === type).length;
const cli = (args: string[]) => runSanbox(args, env, 90_000);
const seen = new Set<number>();

beforeAll(async () => {
  requireBuild('cli/supervisor/index.js', 'run `npx tsc -p tsconfig.json`');
  dir = mkdtempSync(join(tmpdir(), 'sanbox-restart-'));
  env = { SANBOX_IMAGES: join(dir, 'images'), SANBOX_LAB: LAB };
  const file = join(dir, 'lab.yaml');
  writeFileSync(
    file,
    [
      `lab: ${LAB}`,
      'arrays:',
      '  - { name: solo, nbd: { port: 0 }, api: { port: 0 }, luns: [{ name: disk0, size: 8M }] }',
      '  - { name: spare, nbd: { port: 0 }, api: { port: 0 }, luns: [] }',
      'restart: { policy: on-failure, backoffMs: 300, limit: 2 }',
      '',
    ].join('\n'),
  );
  // its own process group, so that a Ctrl-C of a terminal (SIGINT to the whole group) can be played
  up = spawn(process.execPath, [BIN, 'up', file], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  up.stderr!.on('data', (d) => (upErr += d));
  up.stdout!.resume();
  upExit = new Promise((r) => up.on('exit', (code) => r(code)));
  seen.add(up.pid!);
  await until(() => existsSync(statePath()) && state().state === 'running', 60_000, 'the lab running');
}, 90_000);

afterAll(async () => {
  if (up && up.exitCode === null && up.signalCode === null) {
    up.kill('SIGTERM');
    await upExit;
  }
  rmSync(dir, { recursive: true, force: true });
});

async function killSolo(): Promise<number> {
  const pid = solo().pid as number;
  seen.add(pid);
  process.kill(pid, 'SIGKILL');
  await until(() => !pidAlive(pid), 5000, `pid ${pid} gone`);
  return pid;
}

describe('restart: on-failure', () => {
  it('restarts a crashed array after the backoff, up to the limit, then waits for the operator', async () => {
    for (let i = 1; i <= 2; i++) {
      const pid = await killSolo();
      await until(() => solo().state === 'running' && solo().pid !== pid, 20_000, `automatic restart ${i}`);
      expect(solo().autoRestarts).toBe(i);
      expect(count('array.restarted')).toBe(i);
    }
    const scheduled = events().filter((e) => e.type === 'array.restart-scheduled');
    expect(scheduled.map((e) => [e.inMs, e.attempt])).toEqual([
      [300, 1],
      [300, 2],
    ]);
    await killSolo();
    await until(() => count('array.restart-limit') === 1, 5000, 'array.restart-limit');
    await new Promise((r) => setTimeout(r, 1000)); // well past the backoff: nothing restarts it
    expect(solo().state).toBe('crashed');
    expect(count('array.restarted')).toBe(2);
    expect(events().find((e) => e.type === 'array.restart-limit')).toMatchObject({ array: 'solo', limit: 2 });
    // the operator restarts it (and the count starts over)
    const r = await cli(['fault', 'array-restart', 'solo', '--json']);
    expect(r.code, r.err).toBe(0);
    expect(solo()).toMatchObject({ state: 'running', autoRestarts: 0 });
  });

  it('an operator crash is held down: the policy does not restart it', async () => {
    seen.add(solo().pid);
    expect((await cli(['fault', 'array-crash', 'solo'])).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    expect(solo()).toMatchObject({ state: 'crashed', held: true });
    expect(count('array.restart-scheduled')).toBe(2);
  });

  it('Ctrl-C (SIGINT to the process group) stops the lab with an array crashed: exit 0, no process left, no state file', async () => {
    expect((await cli(['fault', 'array-restart', 'solo'])).code).toBe(0);
    const spare = state().arrays[1];
    seen.add(solo().pid).add(spare.pid);
    expect((await cli(['fault', 'array-crash', 'spare'])).code).toBe(0);
    const before = events().length;
    process.kill(-up.pid!, 'SIGINT'); // the supervisor and solo (in its group) get it at once
    expect(await upExit).toBe(0);
    expect(upErr).toContain('SIGINT: stopping lab selfheal');
    expect([...seen].filter(pidAlive)).toEqual([]);
    expect(existsSync(statePath())).toBe(false);
    // solo exiting on its own SIGINT is part of the stop, not a crash
    expect(events().slice(before).map((e) => e.type)).toEqual(['lab.stopping', 'lab.stopped']);
  });

  it('an invalid sites:/restart: lab is refused with every problem listed (exit 2), nothing started', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, ['lab: bad', 'arrays:', '  - { name: a1, nbd: { port: 0 }, api: { port: 0 }, luns: [] }', 'sites:', '  - { name: s1, arrays: [a1, a9] }', '  - { name: s1, arrays: [a1] }', 'restart: always', ''].join('\n'));
    const r = await cli(['up', file, '--json']);
    expect(r.code).toBe(2);
    expect(r.json.error.code).toBe('invalid-lab');
    for (const p of ['site s1.arrays: no array "a9"', 'site s1: duplicate site name', 'array a1 is already in site s1', 'restart must be never or on-failure']) expect(r.json.error.message).toContain(p);
    expect(existsSync(join(dir, 'images', '.labs', 'bad.json'))).toBe(false);
    expect(existsSync(join(dir, 'images', 'a1'))).toBe(false);
  });
});
