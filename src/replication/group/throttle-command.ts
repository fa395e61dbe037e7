/**
 * The `command` action of a throttle: a shell command run through /bin/sh in its own process
 * group, killed at the timeout, with bounded output; it never throws (see ./throttle.ts).
 */
import { spawn } from 'node:child_process';

export interface ThrottleCommandResult {
  /** exit code; null when killed by a signal or not started */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** the first `maxOutput` bytes of each stream (utf-8) */
  stdout: string;
  stderr: string;
  truncated: boolean;
  durationMs: number;
  /** could not be started (or another error of the child process) */
  error?: string;
}

/** Environment a driver may pass to a throttle command: SANBOX_NETKBPS, SANBOX_PCTCPU, SANBOX_PCTWL. */
export function throttleCommandEnv(m: { netkbps: number; pctcpu: number; pctwl: number }, extra: Record<string, string> = {}): Record<string, string> {
  return { SANBOX_NETKBPS: String(m.netkbps), SANBOX_PCTCPU: String(m.pctcpu), SANBOX_PCTWL: String(m.pctwl), ...extra };
}

/** A throttle's command is killed (its whole process group) after this long. */
export const THROTTLE_COMMAND_TIMEOUT_MS = 30_000;
/** After the shell exits, how long to wait for its output pipes to close. */
const PIPE_GRACE_MS = 500;

/**
 * Runs `cmd` with /bin/sh -c, stdin closed, environment = this process's plus `env`. At
 * `timeoutMs` the whole process group gets SIGKILL (the shell and whatever it started). Output
 * beyond `maxOutput` bytes per stream is dropped. Resolves once the shell has exited and its
 * output is collected (at most 500 ms after the exit, if a process the command put in the
 * background still holds the pipes); never rejects.
 */
export function runThrottleCommand(cmd: string, env: Record<string, string | undefined> = {}, timeoutMs = THROTTLE_COMMAND_TIMEOUT_MS, opts: { maxOutput?: number; cwd?: string } = {}): Promise<ThrottleCommandResult> {
  const maxOutput = opts.maxOutput ?? 4096;
  const started = performance.now();
  return new Promise((resolve) => {
    const out = { stdout: [] as Buffer[], stderr: [] as Buffer[], n: { stdout: 0, stderr: 0 } };
    let truncated = false;
    let timedOut = false;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    let grace: NodeJS.Timeout | undefined;
    let error: string | undefined;
    let child: ReturnType<typeof spawn>;

    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(grace);
      child?.stdout?.destroy();
      child?.stderr?.destroy();
      const r: ThrottleCommandResult = {
        code,
        signal,
        timedOut,
        stdout: Buffer.concat(out.stdout).toString('utf8'),
        stderr: Buffer.concat(out.stderr).toString('utf8'),
        truncated,
        durationMs: performance.now() - started,
      };
      if (error !== undefined) r.error = error;
      resolve(r);
    };

    try {
      child = spawn('/bin/sh', ['-c', cmd], {
        env: { ...process.env, ...env },
        cwd: opts.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // own process group: the kill reaches what the shell started
      });
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
      return finish(null, null);
    }

    for (const name of ['stdout', 'stderr'] as const) {
      child[name]?.on('data', (b: Buffer) => {
        const room = maxOutput - out.n[name];
        if (room <= 0) return void (truncated = true);
        if (b.length > room) truncated = true;
        const part = b.length > room ? b.subarray(0, room) : b;
        out[name].push(part);
        out.n[name] += part.length;
      });
      child[name]?.on('error', () => {});
    }
    const kill = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        try {
          child.kill('SIGKILL');
        } catch {
          /* gone */
        }
      }
    };
    child.on('error', (e) => {
      error = e.message;
      // no 'exit' follows a spawn failure
      if (child.pid === undefined) finish(null, null);
    });
    child.on('exit', (code, signal) => {
      // a process the command left in the background may still hold the pipes: stop waiting for
      // them (it is not killed; the timeout only bounds the command itself)
      grace = setTimeout(() => finish(code, signal), PIPE_GRACE_MS);
    });
    child.on('close', (code, signal) => finish(code, signal));
    timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, Math.max(0, timeoutMs));
  });
}
