/**
 * One run of an array's process (`sanbox array serve --config`): spawn it, wait for its ready
 * message, prefix its output on the supervisor's log, kill it with everything it started (a
 * two-SP array's chassis starts SP A and SP B as its children).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { BIN, pidAlive } from '../common.js';

export interface ReadyMessage {
  type: 'ready';
  name: string;
  pid: number;
  dir: string;
  nbd: { host: string; port: number; tls?: 'on' | 'require' };
  api?: { url: string };
  sps?: { name: string; host: string; port: number }[];
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ArrayRun {
  name: string;
  proc: ChildProcess;
  pid: number;
  exited: boolean;
  exit: Promise<ExitStatus>;
  ready?: ReadyMessage;
  /** The SP processes seen at ready (re-read from /proc at each kill). */
  spPids: number[];
  stderrTail: string[];
}

/** Output lines of an array kept for the start-up failure message. */
const TAIL_LINES = 40;

export function spawnArray(name: string, cfgPath: string, lab: string, log: (line: string) => void): ArrayRun {
  const proc = spawn(process.execPath, [BIN, 'array', 'serve', '--config', cfgPath, '--lab', lab], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const run: ArrayRun = {
    name,
    proc,
    pid: proc.pid ?? -1,
    exited: false,
    exit: new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal }))),
    spPids: [],
    stderrTail: [],
  };
  // A failed spawn (no pid) still reports through 'exit' after 'error'.
  proc.on('error', (e) => log(`[${name}] cannot start: ${e.message}`));
  void run.exit.then(() => (run.exited = true));
  for (const stream of [proc.stdout!, proc.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      run.stderrTail.push(line);
      if (run.stderrTail.length > TAIL_LINES) run.stderrTail.shift();
      log(`[${name}] ${line}`);
    });
  }
  proc.on('message', (m: unknown) => {
    if ((m as ReadyMessage)?.type === 'ready') {
      run.ready = m as ReadyMessage;
      run.spPids = childPids(run.pid);
    }
  });
  return run;
}

/** Children of a process (Linux /proc; empty elsewhere). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out; // no /proc: the SPs exit on their own when the chassis's IPC channel closes
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      // the process ended while we looked: not a child any more
    }
  }
  return out;
}

/** Whether pid still runs an SP of sanbox (not a recycled pid). */
function isSpProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sp\0serve');
  } catch {
    return false;
  }
}

/**
 * SIGKILL of every process of the array at once: the chassis (or single process) and the SPs
 * (its current children, and those seen at ready if they still run an SP). Resolves once the
 * chassis has exited. Returns the pids killed.
 */
export async function killArray(run: ArrayRun): Promise<number[]> {
  const sps = new Set([...childPids(run.pid), ...run.spPids.filter(isSpProcess)]);
  const killed: number[] = [];
  for (const pid of [run.pid, ...sps]) {
    if (!pidAlive(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // gone between the check and the kill
    }
  }
  await run.exit;
  return killed;
}

/** After the chassis died by itself: SPs it left behind (they exit when its IPC closes; this makes sure). */
export function reapOrphanSps(run: ArrayRun): number[] {
  const left = run.spPids.filter((p) => pidAlive(p) && isSpProcess(p));
  for (const p of left) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  return left;
}
