/**
 * `sanbox check fs`: e2fsck -fn of the file system on an export through nbdfuse + a loop device.
 * Where FUSE or loop devices are missing (or not root) the verb exits 2 with the reason; where
 * they exist, a fresh ext4 checks clean (exit 0), the same one with a wrong link count on its root
 * directory is not clean (exit 1, e2fsck's report in the output), and an unreachable server is exit 3.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsCheckUnavailable } from '../../src/check/fs/index.js';
import { serve, type Served } from '../support/serve.js';
import { freePort } from '../support/net.js';
import { BIN, REPO, requireBuild } from '../support/paths.js';
import { runSanbox } from '../support/launch.js';

const unavailable = fsCheckUnavailable();
const PATH = `/usr/sbin:/sbin:/usr/bin:/bin:${process.env.PATH ?? ''}`;

describe('sanbox check fs', () => {
  let dir: string;
  let server: Served | null = null;
  beforeAll(async () => {
    requireBuild('cli/check-verbs.js');
    dir = mkdtempSync(join(tmpdir(), 'sanbox-check-fs-'));
    server = await serve(join(dir, 'array'), 0, ['fs=64M']);
  });
  afterAll(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it.runIf(unavailable !== null)('exits 2 with the reason where FUSE or loop devices are missing', async () => {
    const r = await runSanbox(['check', 'fs', '--uri', server!.uri('fs'), '--json']);
    expect(r.code).toBe(2);
    expect(r.json.error.message).toMatch(/cannot run here/);
  });

  // Where it can run, the "cannot run here" path is still shown: the same verb as an unprivileged user.
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  it.runIf(unavailable === null && setpriv !== undefined)('exits 2 with the reason when not root', () => {
    const r = spawnSync(setpriv!, ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'check', 'fs', '--uri', server!.uri('fs'), '--json'], { cwd: REPO, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(2);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/cannot run here: needs root/) });
  });

  it.runIf(unavailable === null)('clean ext4: exit 0; a wrong link count: exit 1; unreachable: exit 3', { timeout: 180_000 }, async () => {
    const image = server!.image(0);
    const mkfs = spawnSync('mkfs.ext4', ['-q', '-F', image], { env: { ...process.env, PATH }, encoding: 'utf8' });
    expect(mkfs.status, mkfs.stderr).toBe(0);
    const ok = await runSanbox(['check', 'fs', '--uri', server!.uri('fs'), '--json'], {}, 120_000);
    expect(ok.code, ok.err + ok.out).toBe(0);
    expect(ok.json).toMatchObject({ ok: true, e2fsckExitCode: 0 });

    const clri = spawnSync('debugfs', ['-w', '-R', 'set_inode_field <2> links_count 7', image], { env: { ...process.env, PATH }, encoding: 'utf8' });
    expect(clri.status, clri.stderr).toBe(0);
    const bad = await runSanbox(['check', 'fs', '--uri', server!.uri('fs')], {}, 120_000);
    expect(bad.code, bad.err).toBe(1);
    expect(bad.out).toMatch(/NOT CLEAN \(e2fsck -fn exit 4\)/);
    expect(bad.out).toMatch(/Inode 2 ref count is 7, should be 3/);

    const port = await freePort();
    const gone = await runSanbox(['check', 'fs', '--uri', `nbd://127.0.0.1:${port}/fs`]);
    expect(gone.code).toBe(3);
    // nothing left behind: no loop device on a FUSE file of ours, no FUSE mount
    const lo = spawnSync('losetup', ['-a'], { env: { ...process.env, PATH }, encoding: 'utf8' });
    expect(lo.stdout).not.toMatch(/sanbox-check-fs-/);
    const mounts = spawnSync('cat', ['/proc/mounts'], { encoding: 'utf8' }).stdout;
    expect(mounts).not.toMatch(/sanbox-check-fs-/);
  });
});
