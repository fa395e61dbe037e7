// The acceptance on the default lab (lab/default.yaml, ports made free and images in a
// temporary directory): `sanbox fault array-crash alpha` (chassis and both SPs SIGKILLed), then
// `sanbox group promote g0 --force --array bravo` works on the survivor, and alpha comes back
// with `sanbox fault array-restart alpha`. bin/sanbox.js runs dist/: build first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSanbox } from '../support/launch.js';
import { freePort, until } from '../support/net.js';
import { REPO, requireBuild } from '../support/paths.js';
import { pidAlive } from '../../src/cli/common.js';
import { childPids } from '../../src/cli/supervisor/array-process.js';

let dir: string;
let env: Record<string, string>;
const cli = (args: string[], timeoutMs = 120_000) => runSanbox(args, env, timeoutMs);
const statePath = () => join(dir, 'images', '.labs', 'default.json');
const state = () => JSON.parse(readFileSync(statePath(), 'utf8'));

beforeAll(async () => {
  requireBuild('cli/supervisor/index.js', 'run `npx tsc -p tsconfig.json`');
  dir = mkdtempSync(join(tmpdir(), 'sanbox-disaster-'));
  env = { SANBOX_IMAGES: join(dir, 'images'), SANBOX_LAB: 'default' };
  let yaml = readFileSync(join(REPO, 'lab', 'default.yaml'), 'utf8');
  // The default lab's fixed ports would clash with a lab running on this machine: any free ones.
  yaml = yaml.replace(/(nbd|api|dashboard): \{ bind: 127\.0\.0\.1, port: \d+ \}/g, '$1: { bind: 127.0.0.1, port: 0 }');
  yaml = yaml.replace(/listen: \{ bind: 127\.0\.0\.1, toB: \d+, toA: \d+ \}/, 'listen: { bind: 127.0.0.1, toB: 0, toA: 0 }');
  for (const port of ['10850', '10860']) yaml = yaml.replace(`remoteLink: { bind: 127.0.0.1, port: ${port} }`, `remoteLink: { bind: 127.0.0.1, port: ${await freePort()} }`);
  expect(yaml).not.toMatch(/port: (10809|8470|8473|8480|8491|10811|10850|10860)\b/);
  writeFileSync(join(dir, 'default.yaml'), yaml);
  const up = await cli(['up', join(dir, 'default.yaml'), '--detach', '--json']);
  if (up.code !== 0) throw new Error(`up failed (${up.code}): ${up.err}${up.out}`);
}, 180_000);

afterAll(async () => {
  if (existsSync(statePath())) await cli(['down', 'default', '--timeout', '30']);
  rmSync(dir, { recursive: true, force: true });
});

describe('the default lab survives the loss of alpha', () => {
  it('array-crash alpha, then group promote g0 --force --array bravo', async () => {
    // bravo holds g0's receiving side once up has created the group
    await until(async () => (await cli(['group', 'info', 'g0', '--array', 'bravo', '--json'])).code === 0, 60_000, 'g0 on bravo', 500);
    const alpha = state().arrays.find((a: any) => a.name === 'alpha');
    const pids = [alpha.pid, ...childPids(alpha.pid)];
    expect(pids).toHaveLength(3);
    const crash = await cli(['fault', 'array-crash', 'alpha', '--json']);
    expect(crash.code, crash.err).toBe(0);
    await until(() => pids.every((p) => !pidAlive(p)), 5000, 'alpha gone');
    expect((await cli(['status', '--array', 'alpha'])).code).toBe(3);
    const promote = await cli(['group', 'promote', 'g0', '--force', '--array', 'bravo', '--json']);
    expect(promote.code, promote.err + promote.out).toBe(0);
    expect(promote.json.record.name).toBe('g0');
    expect(pidAlive(state().supervisorPid)).toBe(true);
    // alpha comes back from its directory (its own recovery runs); the lab is whole again
    const restart = await cli(['fault', 'array-restart', 'alpha', '--json']);
    expect(restart.code, restart.err).toBe(0);
    expect((await cli(['status', '--array', 'alpha', '--json'])).code).toBe(0);
  }, 240_000);
});
