// A closed pipe (`sanbox ... | head -1`) ends every verb quietly: the real binaries (bin/sanbox.js,
// bin/prmd.js, bin/chkmon.js, which run dist/) as child processes whose stdout is a pipe the test
// closes, either before the child writes anything or right after its first chunk. The rule
// (docs/cli.md, "Pipes"): no stack trace, no "internal error"; the exit code is the verb's own when
// it had already returned, else 0; a --watch loop ends. Other write errors (a full disk) fail
// loudly with one line and exit 1. bin/ runs the build: `npm run build` after editing src.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, REPO, requireBuild } from '../support/paths.js';
import { launchSanbox, type Launched } from '../support/launch.js';
import { freePort } from '../support/net.js';

const PRMD = join(REPO, 'bin', 'prmd.js');
const CHKMON = join(REPO, 'bin', 'chkmon.js');

let tmp: string;
let served: Launched<{ api: { url: string } }> | undefined;
let api: string;

beforeAll(async () => {
  requireBuild('cli/index.js');
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-pipe-'));
  // One array with an API and a few LUNs for the verbs that need one.
  served = await launchSanbox<{ api: { url: string } }>(
    ['serve', '--dir', join(tmp, 'arr'), '--port', '0', '--api-port', '0', '--json', '-q', '--lun', 'a=1M', '--lun', 'b=1M', '--lun', 'c=1M'],
    'sanbox serve',
  );
  api = served.ready.api.url;
});

afterAll(async () => {
  if (served && served.proc.exitCode === null && served.proc.signalCode === null) {
    served.proc.kill('SIGTERM');
    await served.exited;
  }
  await rm(tmp, { recursive: true, force: true });
});

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** What the test read before it closed the pipe. */
  first: string;
  /** Milliseconds from closing the pipe to the child's exit. */
  afterCloseMs: number;
}

/**
 * Runs `node BIN ...args` with stdout a pipe that is closed 'before' the child writes (at once)
 * or after its 'first' chunk; SIGKILLs it (and says so) if it has not ended `limitMs` after that.
 */
function runClosingStdout(bin: string, args: string[], when: 'before' | 'first', limitMs = 8_000): Promise<Ended> {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: REPO,
    env: { ...process.env, SANBOX_IMAGES: join(tmp, 'images'), SANBOX_LAB: '', SANBOX_API: '', SANBOX_TOKEN: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let first = '';
  let closedAt = Date.now();
  let killer: NodeJS.Timeout | undefined;
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const close = () => {
    child.stdout!.destroy();
    closedAt = Date.now();
    killer = setTimeout(() => {
      stderr += `\n[test: still running ${limitMs} ms after the pipe closed: SIGKILL]`;
      child.kill('SIGKILL');
    }, limitMs);
  };
  if (when === 'before') close();
  else child.stdout!.once('data', (d: Buffer) => ((first = d.toString()), close()));
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stderr, first, afterCloseMs: Date.now() - closedAt });
    });
  });
}

/** No stack trace, no "internal error", no unhandled 'error' event. */
function expectQuiet(r: Ended): void {
  expect(r.stderr).not.toMatch(/internal error/);
  expect(r.stderr).not.toMatch(/EPIPE|Unhandled 'error' event|^\s+at /m);
  expect(r.signal).toBeNull();
}

describe('a closed stdout pipe ends a verb quietly', () => {
  it('sanbox --help, closed before it writes: exit 0, nothing on stderr', async () => {
    const r = await runClosingStdout(BIN, ['--help'], 'before');
    expectQuiet(r);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('sanbox mirror --help (several writes), closed before it writes: exit 0', async () => {
    const r = await runClosingStdout(BIN, ['mirror', '--help'], 'before');
    expectQuiet(r);
    expect(r.code).toBe(0);
  });

  it('a verb that fails keeps its exit code: status --json against nothing, closed before it writes: exit 3', async () => {
    const port = await freePort();
    const r = await runClosingStdout(BIN, ['status', '--json', '--api', `http://127.0.0.1:${port}`], 'before');
    expectQuiet(r);
    expect(r.code).toBe(3);
  });

  // `clone status --watch` runs the same loop (watchStatus) as `mirror status --watch`, on an
  // array without a remote link.
  it('clone status --watch --count 2 | head -1 (the issue\'s `mirror status --watch --count 2 | head -1`): exit 0, no stack', async () => {
    const r = await runClosingStdout(BIN, ['clone', 'status', '--api', api, '--watch', '--count', '2', '--interval', '0.3'], 'first');
    expect(r.first).toMatch(/^\d{4}-\d\d-\d\dT/);
    expectQuiet(r);
    expect(r.code).toBe(0);
    expect(r.afterCloseMs).toBeLessThan(5_000);
  });

  it('clone status --watch --json (no --count) ends within a few seconds of the pipe closing: exit 0', async () => {
    const r = await runClosingStdout(BIN, ['clone', 'status', '--api', api, '--watch', '--interval', '0.1', '--json'], 'first');
    expect(JSON.parse(r.first.split('\n')[0]!)).toHaveProperty('time');
    expectQuiet(r);
    expect(r.code).toBe(0);
    expect(r.afterCloseMs).toBeLessThan(5_000);
  });

  it('lun list, closed before it writes: exit 0', async () => {
    const r = await runClosingStdout(BIN, ['lun', 'list', '--api', api], 'before');
    expectQuiet(r);
    expect(r.code).toBe(0);
  });

  it('prmd --help and chkmon --help, closed before they write: exit 0', async () => {
    for (const bin of [PRMD, CHKMON]) {
      const r = await runClosingStdout(bin, ['--help'], 'before');
      expectQuiet(r);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
  });
});

describe('other write errors fail loudly, without a stack', () => {
  it('sanbox --help > /dev/full: one line on stderr, exit 1', async () => {
    const fd = openSync('/dev/full', 'w');
    try {
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, '--help'], { cwd: REPO, stdio: ['ignore', fd, 'pipe'] });
        let stderr = '';
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        child.once('exit', (code) => resolve({ code, stderr }));
      });
      expect(r.stderr).toMatch(/^sanbox: cannot write to standard output: .*ENOSPC/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
      expect(r.code).toBe(1);
    } finally {
      closeSync(fd);
    }
  });
});
