// runThrottleCommand: real /bin/sh, short timeouts.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runThrottleCommand, throttleCommandEnv } from '../../../src/replication/group/throttle.js';

/** running (a zombie left for a parent that does not reap it quickly is dead) */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
};

describe('runThrottleCommand', () => {
  it('runs through the shell with the environment given, and reports exit code and output', async () => {
    const r = await runThrottleCommand('echo "net=$SANBOX_NETKBPS wl=$SANBOX_PCTWL"; echo oops >&2; exit 3', throttleCommandEnv({ netkbps: 210.5, pctcpu: 1, pctwl: 42 }), 5000);
    expect(r).toMatchObject({ code: 3, signal: null, timedOut: false, stdout: 'net=210.5 wl=42\n', stderr: 'oops\n', truncated: false });
    expect(r.error).toBeUndefined();
    const ok = await runThrottleCommand('true', {}, 5000);
    expect(ok.code).toBe(0);
    // the process environment is inherited
    expect((await runThrottleCommand('echo $PATH', {}, 5000)).stdout.trim()).toBe(process.env.PATH);
  });

  it('kills the whole process group at the timeout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'throttle-cmd-'));
    try {
      const t0 = performance.now();
      const r = await runThrottleCommand(`sleep 30 & echo $! > ${dir}/pid; echo started; wait`, {}, 300);
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(r.timedOut).toBe(true);
      expect(r.code).toBeNull();
      expect(r.signal).toBe('SIGKILL');
      expect(r.stdout).toBe('started\n');
      const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      await new Promise((res) => setTimeout(res, 100));
      expect(alive(pid)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps at most maxOutput bytes of each stream', async () => {
    const r = await runThrottleCommand('head -c 100000 /dev/zero | tr "\\0" a; echo short >&2', {}, 5000, { maxOutput: 1000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('a'.repeat(1000));
    expect(r.stderr).toBe('short\n');
    expect(r.truncated).toBe(true);
  });

  it('does not wait for a process left in the background that holds the output', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'throttle-cmd-'));
    try {
      const t0 = performance.now();
      const r = await runThrottleCommand(`sleep 3 & echo $! > ${dir}/pid; echo done`, {}, 10_000);
      expect(performance.now() - t0).toBeLessThan(2500);
      expect(r).toMatchObject({ code: 0, timedOut: false, stdout: 'done\n' });
      const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never throws: a directory that does not exist, a bad environment value', async () => {
    const r = await runThrottleCommand('true', {}, 1000, { cwd: '/nonexistent/sanbox-dir' });
    expect(r.code).toBeNull();
    expect(r.error).toMatch(/ENOENT/);
    const r2 = await runThrottleCommand('true', { BAD: 'a\0b' }, 1000);
    expect(r2.error).toBeTruthy();
    expect(r2.code).toBeNull();
  });
});
