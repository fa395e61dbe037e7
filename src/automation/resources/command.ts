/**
 * One command of a host resource (start, stop or monitor), run with /bin/sh -c.
 *
 * Output goes to a log file opened as a descriptor for the child, never through pipes: a start
 * command that leaves a daemon running hands it its stdout and stderr, and a pipe held by the
 * daemon would never reach end-of-file. For the same reason the command is finished at its
 * 'exit', not at 'close'.
 *
 * The command runs in its own process group (detached), so a timeout can kill everything it
 * started. A command that exits in time is left alone, with whatever it left running: that is
 * how a start command starts a daemon.
 */
import { spawn } from 'node:child_process';
import { open, stat } from 'node:fs/promises';

export interface CommandResult {
  /** null when a signal ended it */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  /** the last OUTPUT_TAIL bytes this run appended to the log */
  output: string;
  /** the shell's pid: the process group of everything the command started (0: it did not start) */
  pgid: number;
}

export interface CommandOptions {
  /** the child's whole environment (process.env when absent) */
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs: number;
  /** appended to; created when missing */
  logFile: string;
}

export const OUTPUT_TAIL = 2048;
/** How long a timed-out group has between SIGTERM and SIGKILL. */
export const KILL_GRACE_MS = 2000;

export async function runCommand(cmd: string, opts: CommandOptions): Promise<CommandResult> {
  const log = await open(opts.logFile, 'a');
  let from: number;
  let ended: Promise<Ended>;
  let began: number;
  let pgid = 0;
  try {
    from = (await log.stat()).size;
    began = performance.now();
    const child = spawn('/bin/sh', ['-c', cmd], { env: opts.env, cwd: opts.cwd, detached: true, stdio: ['ignore', log.fd, log.fd] });
    // Listen before any await: a quick command's 'exit' would otherwise be emitted to nobody.
    ended = waitForExit(child, opts.timeoutMs);
    pgid = child.pid ?? 0;
  } finally {
    // The child has its own copy of the descriptor once spawn returns.
    await log.close();
  }
  const end = await ended;
  const output = await tail(opts.logFile, from);
  return { ...end, durationMs: Math.round(performance.now() - began), output, pgid };
}

type Ended = Pick<CommandResult, 'exitCode' | 'signal' | 'timedOut'>;

function waitForExit(child: ReturnType<typeof spawn>, timeoutMs: number): Promise<Ended> {
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGTERM');
      // Not cleared at exit: the shell may die of the SIGTERM while something it started ignores it.
      setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS).unref();
    }, Math.max(0, timeoutMs));
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ exitCode, signal, timedOut });
    });
  });
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone already, which is what we wanted.
  }
}

/** What was appended to the file since offset `from`, at most its last OUTPUT_TAIL bytes. */
async function tail(file: string, from: number): Promise<string> {
  const size = (await stat(file)).size;
  const start = Math.max(from, size - OUTPUT_TAIL);
  if (size <= start) return '';
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(size - start);
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}
