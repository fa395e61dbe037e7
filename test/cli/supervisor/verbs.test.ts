// The lab fault verbs' own errors, in process (no lab, a bad argument, a supervisor that does not
// answer): stable exit codes and --json error documents. The verbs against a running supervisor:
// test/system/lab-survives.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureCli } from '../../support/cli.js';
import { freePort } from '../../support/net.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-fault-verbs-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const run = (args: string[], images = join(tmp, 'none')) => captureCli(args, { SANBOX_IMAGES: images, SANBOX_LAB: undefined, SANBOX_API: undefined });

describe('sanbox fault array-*|site-* without a reachable supervisor', () => {
  it('no lab running: exit 3, with the way to start one', async () => {
    for (const verb of ['array-crash', 'array-restart', 'site-fail', 'site-restore']) {
      const r = await run(['fault', verb, 'alpha']);
      expect(r.code, verb).toBe(3);
      expect(r.err).toContain('sanbox up');
    }
    const j = await run(['fault', 'array-crash', 'alpha', '--json']);
    expect(j.json).toMatchObject({ error: { code: 'unreachable', exitCode: 3 } });
  });

  it('a missing argument or an unknown option is a usage error (exit 2)', async () => {
    expect((await run(['fault', 'array-crash'])).code).toBe(2);
    expect((await run(['fault', 'site-fail', 'east', '--bogus'])).code).toBe(2);
  });

  it('a lab whose supervisor does not answer its control API: exit 3 naming the URL', async () => {
    const images = join(tmp, 'stale');
    await mkdir(join(images, '.labs'), { recursive: true });
    const url = `http://127.0.0.1:${await freePort()}`;
    // supervisorPid: this process (alive), so the lab counts as running; nothing listens on url
    const state = { lab: 'stale', file: '/x.yaml', supervisorPid: process.pid, startedAt: new Date().toISOString(), state: 'running', arrays: [], control: { url, token: 'x'.repeat(48) } };
    await writeFile(join(images, '.labs', 'stale.json'), JSON.stringify(state), { mode: 0o600 });
    const r = await run(['fault', 'array-restart', 'alpha', '--lab', 'stale'], images);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`cannot reach the supervisor of lab stale at ${url}`);
    // a state file of an older supervisor (no control API)
    await writeFile(join(images, '.labs', 'old.json'), JSON.stringify({ ...state, lab: 'old', control: undefined }), { mode: 0o600 });
    const old = await run(['fault', 'array-crash', 'alpha', '--lab', 'old'], images);
    expect(old.code).toBe(3);
    expect(old.err).toContain('has no control API');
  });
});
