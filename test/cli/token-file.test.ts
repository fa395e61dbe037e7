// API tokens from a file (an --api-token on the command line shows in `ps`): `sanbox serve
// --api-token-file FILE` as a child process serves with the file's first line as its token (and
// the token is not in its command line), the client verbs take --token-file, and a missing or
// empty file is a usage error (exit 2) with nothing started.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureCli } from '../support/cli.js';
import { launchSanbox, runSanbox, stopProcess } from '../support/launch.js';
import { requireBuild } from '../support/paths.js';

const TOKEN = 'tok-' + 'f1le'.repeat(6);
let tmp: string;

beforeAll(async () => {
  requireBuild('cli/index.js');
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-tokfile-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('API token from a file', () => {
  it('sanbox serve --api-token-file: the first line is the token, requests without it get 401', async () => {
    const file = join(tmp, 'token');
    await writeFile(file, `${TOKEN}\nsecond line ignored\n`, { mode: 0o600 });
    const dir = join(tmp, 'arr');
    const l = await launchSanbox<{ api: { url: string } }>(
      ['serve', '--dir', dir, '--port', '0', '--api-port', '0', '--api-token-file', file, '--lun', 'disk0=1M', '--json', '-q'],
      'sanbox serve --api-token-file',
    );
    try {
      const url = l.ready.api.url;
      const without = await fetch(url + '/v1/status');
      expect(without.status).toBe(401);
      const wrong = await fetch(url + '/v1/status', { headers: { Authorization: 'Bearer second line ignored' } });
      expect(wrong.status).toBe(401);
      const ok = await fetch(url + '/v1/status', { headers: { Authorization: `Bearer ${TOKEN}` } });
      expect(ok.status).toBe(200);
      expect((await ok.json()).api.tokenRequired).toBe(true);
      // `ps` shows the command line: the file's name, not the token.
      const cmdline = (await readFile(`/proc/${l.proc.pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
      if (cmdline) {
        expect(cmdline).toContain('--api-token-file');
        expect(cmdline).not.toContain(TOKEN);
      }

      // The client verbs: --token-file, and the same 401 (exit 3) without a token.
      const st = await captureCli(['status', '--api', url, '--token-file', file, '--json'], { SANBOX_TOKEN: undefined });
      expect(st.code, st.err).toBe(0);
      expect(st.json.luns.map((x: { name: string }) => x.name)).toEqual(['disk0']);
      const created = await captureCli(['lun', 'create', 'disk1', '1M', '--api', url, '--token-file', file, '--json'], { SANBOX_TOKEN: undefined });
      expect(created.code, created.err).toBe(0);
      const denied = await captureCli(['status', '--api', url, '--json'], { SANBOX_TOKEN: undefined });
      expect(denied.code).not.toBe(0);
      expect(denied.json.error.code).toBe('unauthorized');
      // $SANBOX_TOKEN still works.
      const env = await captureCli(['status', '--api', url, '--json'], { SANBOX_TOKEN: TOKEN });
      expect(env.code, env.err).toBe(0);
    } finally {
      await stopProcess(l.proc);
    }
  });

  it('a missing, empty or unreadable token file is a usage error (exit 2), nothing served', async () => {
    const empty = join(tmp, 'empty');
    await writeFile(empty, '\n  \n');
    const cases: [string, string, RegExp][] = [
      ['missing', join(tmp, 'no-such-file'), /--api-token-file .*no-such-file.*cannot be read/],
      ['empty', empty, /--api-token-file .*empty.* is empty/],
      ['a directory', tmp, /--api-token-file .*cannot be read/],
    ];
    for (const [what, file, msg] of cases) {
      const r = await runSanbox(['serve', '--dir', join(tmp, `bad-${what.replace(/ /g, '-')}`), '--port', '0', '--api-port', '0', '--api-token-file', file, '--lun', 'd=1M', '--json']);
      expect(r.code, `${what}: ${r.err}`).toBe(2);
      expect(r.json?.error?.message, what).toMatch(msg); // --json: the error as JSON on stdout
    }
    const client = await captureCli(['status', '--api', 'http://127.0.0.1:9', '--token-file', join(tmp, 'no-such-file')], { SANBOX_TOKEN: undefined });
    expect(client.code).toBe(2);
    expect(client.err).toMatch(/--token-file .*cannot be read/);
    const both = await captureCli(['status', '--api', 'http://127.0.0.1:9', '--token', 'x'.repeat(16), '--token-file', empty], { SANBOX_TOKEN: undefined });
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/--token and --token-file/);
  });
});
