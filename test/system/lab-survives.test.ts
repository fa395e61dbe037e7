// The lab supervisor survives its arrays dying (real processes: `sanbox up --detach`, SIGKILL,
// the fault verbs through bin/sanbox.js): a two-SP array (chassis + SP A + SP B) and a
// single-process array joined by a link, in sites. Then `down` leaves no process behind.
// bin/sanbox.js runs dist/: build first (`npx tsc -p tsconfig.json`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSanbox } from '../support/launch.js';
import { freePort, until } from '../support/net.js';
import { requireBuild } from '../support/paths.js';
import { childPids } from '../../src/cli/supervisor/array-process.js';
import { pidAlive } from '../../src/cli/common.js';

let dir: string;
let env: Record<string, string>;
let labFile: string;
const LAB = 'survive';

const cli = (args: string[], timeoutMs = 90_000) => runSanbox(args, env, timeoutMs);
const state = () => JSON.parse(readFileSync(join(dir, 'images', '.labs', `${LAB}.json`), 'utf8'));
const events = (): any[] =>
  readFileSync(join(dir, 'images', '.labs', `${LAB}.events.jsonl`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
const arrayOf = (name: string) => state().arrays.find((a: { name: string }) => a.name === name);
const linkStatus = async () => {
  const l = state().links[0];
  return (await (await fetch(`${l.api.url}/v1/status`)).json()) as { state: string; cut: Record<string, boolean> };
};
/** Every pid of the lab seen so far (supervisor, chassis, SPs, single-process arrays). */
const seen = new Set<number>();
const note = (...pids: number[]) => pids.forEach((p) => p > 0 && seen.add(p));
const arrayPids = (name: string): number[] => {
  const a = arrayOf(name);
  const pids = [a.pid, ...childPids(a.pid)];
  note(...pids);
  return pids;
};

beforeAll(async () => {
  requireBuild('cli/supervisor/index.js', 'run `npx tsc -p tsconfig.json`');
  dir = mkdtempSync(join(tmpdir(), 'sanbox-survive-'));
  env = { SANBOX_IMAGES: join(dir, 'images'), SANBOX_LAB: LAB };
  const [ra, rb] = [await freePort(), await freePort()];
  labFile = join(dir, 'lab.yaml');
  writeFileSync(
    labFile,
    [
      `lab: ${LAB}`,
      'arrays:',
      '  - name: alpha',
      '    nbd: { port: 0 }',
      '    api: { port: 0 }',
      `    remoteLink: { port: ${ra} }`,
      '    sps: { cacheSize: 4M }',
      '    luns: [{ name: disk0, size: 16M }]',
      '  - name: bravo',
      '    nbd: { port: 0 }',
      '    api: { port: 0 }',
      `    remoteLink: { port: ${rb} }`,
      '    luns: [{ name: disk0, size: 16M }]',
      'links:',
      '  - { name: ab, between: [alpha, bravo] }',
      'sites:',
      '  - { name: east, arrays: [alpha] }',
      '',
    ].join('\n'),
  );
  const up = await cli(['up', labFile, '--detach', '--json']);
  if (up.code !== 0) throw new Error(`up failed (${up.code}): ${up.err}${up.out}`);
  note(up.json.supervisorPid);
}, 120_000);

afterAll(async () => {
  if (existsSync(join(dir, 'images', '.labs', `${LAB}.json`))) await cli(['down', LAB, '--timeout', '20']);
  rmSync(dir, { recursive: true, force: true });
});

describe('a lab that survives its arrays dying', () => {
  it('records control API, sites and every array running', () => {
    const s = state();
    expect(s.control.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s.sites).toEqual([
      { name: 'east', arrays: ['alpha'] },
      { name: 'bravo', arrays: ['bravo'] },
    ]);
    expect(s.arrays.map((a: any) => [a.name, a.state, a.site])).toEqual([
      ['alpha', 'running', 'east'],
      ['bravo', 'running', 'bravo'],
    ]);
    expect(arrayPids('alpha')).toHaveLength(3); // chassis, SP A, SP B
    expect(events().map((e) => e.type)).toContain('lab.started');
  });

  it('the control API wants the token of the state file', async () => {
    const { url, token } = state().control;
    expect((await fetch(`${url}/v1/status`)).status).toBe(401);
    expect((await fetch(`${url}/v1/status`, { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
    const ok = await fetch(`${url}/v1/events?since=0`, { headers: { Authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { events: { type: string }[] }).events.map((e) => e.type)).toEqual(events().map((e) => e.type));
    const bad = await fetch(`${url}/v1/arrays/alpha/explode`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    expect(bad.status).toBe(404);
  });

  it('SIGKILL of the single-process array: array.crashed, the rest keeps running, status exit 3 for it', async () => {
    const [pid] = arrayPids('bravo');
    process.kill(pid!, 'SIGKILL');
    await until(() => arrayOf('bravo').state === 'crashed', 10_000, 'bravo crashed');
    const ev = events().find((e) => e.type === 'array.crashed' && e.array === 'bravo');
    expect(ev).toMatchObject({ lab: LAB, array: 'bravo', pid, code: null, signal: 'SIGKILL', injected: false, site: 'bravo' });
    expect(pidAlive(state().supervisorPid)).toBe(true);
    const st = await cli(['status', '--array', 'bravo']);
    expect(st.code).toBe(3);
    expect(st.err).toContain('array bravo of lab survive is down: its process died, killed by SIGKILL');
    expect(st.err).toContain('sanbox fault array-restart bravo --lab survive');
    const lab = await cli(['status']);
    expect(lab.code).toBe(0);
    expect(lab.out).toContain('bravo DOWN (crashed, SIGKILL)');
    const labJson = await cli(['status', '--json']);
    expect(labJson.json.array).toBe('alpha');
    expect(labJson.json.labArrays.map((a: any) => [a.name, a.state])).toEqual([
      ['alpha', 'running'],
      ['bravo', 'crashed'],
    ]);
    expect((await linkStatus()).state).toBe('up'); // the link emulator (in the supervisor) still answers
  });

  it('SIGKILL of a two-SP array chassis: crashed, its SPs do not outlive it', async () => {
    const pids = arrayPids('alpha');
    process.kill(pids[0]!, 'SIGKILL');
    await until(() => arrayOf('alpha').state === 'crashed', 10_000, 'alpha crashed');
    await until(() => pids.every((p) => !pidAlive(p)), 10_000, 'the SPs of alpha gone');
    expect(events().filter((e) => e.type === 'array.crashed').map((e) => e.array)).toEqual(['bravo', 'alpha']);
    expect((await cli(['status'])).code).toBe(3); // no array of the lab runs
  });

  it('array-restart brings both back from their directories', async () => {
    const r = await cli(['fault', 'array-restart', 'alpha', '--json']);
    expect(r.code, r.err).toBe(0);
    expect(r.json).toMatchObject({ array: 'alpha' });
    expect((await cli(['fault', 'array-restart', 'bravo'])).out).toContain('array bravo (pid');
    for (const name of ['alpha', 'bravo']) {
      expect(arrayOf(name).state).toBe('running');
      const st = await cli(['status', '--array', name, '--json']);
      expect(st.code, st.err).toBe(0);
      expect(st.json.luns.map((l: any) => l.name)).toEqual(['disk0']);
    }
    expect(arrayPids('alpha')).toHaveLength(3);
    const types = events().map((e) => e.type);
    expect(types.filter((t) => t === 'array.restarted')).toHaveLength(2);
  });

  it('array-crash kills every process of the array at once; bad requests get stable exit codes', async () => {
    const pids = arrayPids('alpha');
    const r = await cli(['fault', 'array-crash', 'alpha', '--json']);
    expect(r.code, r.err).toBe(0);
    expect([...r.json.killed].sort()).toEqual([...pids].sort());
    expect(r.json.exit).toEqual({ code: null, signal: 'SIGKILL' });
    await until(() => pids.every((p) => !pidAlive(p)), 5000, 'every process of alpha gone');
    expect(events().filter((e) => e.type === 'array.crashed').at(-1)).toMatchObject({ array: 'alpha', injected: true });
    const again = await cli(['fault', 'array-crash', 'alpha', '--json']);
    expect(again.code).toBe(1);
    expect(again.json.error.message).toContain('it is not running (crashed)');
    expect((await cli(['fault', 'array-restart', 'bravo'])).code).toBe(1); // running: nothing to restart
    const unknown = await cli(['fault', 'array-restart', 'zulu']);
    expect(unknown.code).toBe(1); // a well-formed name the lab does not have: refused (docs/cli.md)
    expect(unknown.err).toContain('lab survive has no array "zulu" (arrays: alpha, bravo)');
    expect((await cli(['fault', 'site-fail', 'nowhere'])).code).toBe(1);
    expect((await cli(['fault', 'array-crash', 'alpha', '--lab', 'nolab'])).code).toBe(3);
    expect((await cli(['fault', 'array-restart', 'alpha'])).code).toBe(0);
  });

  it('site-fail crashes the site and cuts its links; site-restore brings both back', async () => {
    const pids = arrayPids('alpha');
    const f = await cli(['fault', 'site-fail', 'east', '--json']);
    expect(f.code, f.err).toBe(0);
    expect(f.json).toMatchObject({ site: 'east', alreadyDown: [], linksCut: ['ab'] });
    expect(f.json.crashed.map((c: any) => c.array)).toEqual(['alpha']);
    await until(() => pids.every((p) => !pidAlive(p)), 5000, 'alpha gone');
    expect((await linkStatus()).cut).toEqual({ 'a-to-b': true, 'b-to-a': true });
    expect(arrayOf('bravo').state).toBe('running');
    expect(state().sites[0]).toEqual({ name: 'east', arrays: ['alpha'], failed: true });
    expect((await cli(['fault', 'site-fail', 'east'])).code).toBe(1);
    const r = await cli(['fault', 'site-restore', 'east', '--json']);
    expect(r.code, r.err).toBe(0);
    expect(r.json).toMatchObject({ site: 'east', linksRestored: ['ab'], linksStillCut: [] });
    expect((await linkStatus()).state).toBe('up');
    expect(arrayOf('alpha').state).toBe('running');
    expect(state().sites[0]).toEqual({ name: 'east', arrays: ['alpha'] });
    const types = events().map((e) => e.type);
    expect(types).toContain('site.failed');
    expect(types).toContain('site.restored');
    arrayPids('alpha');
  });

  it('down stops everything, a crashed array included, and leaves no process behind', async () => {
    arrayPids('bravo');
    expect((await cli(['fault', 'array-crash', 'bravo'])).code).toBe(0);
    const d = await cli(['down', LAB, '--json']);
    expect(d.code, d.err).toBe(0);
    expect(d.json).toMatchObject({ lab: LAB, stopped: true, killed: [] });
    await until(() => [...seen].every((p) => !pidAlive(p)), 10_000, 'every process of the lab gone');
    expect(existsSync(join(dir, 'images', '.labs', `${LAB}.json`))).toBe(false);
    expect(events().at(-1)?.type).toBe('lab.stopped');
  });
});
