/**
 * A control-plane service process a lab starts (a heartbeat agent, an automation controller):
 * spawned with its output appended to a log file, ready once its API answers, stopped with a
 * signal and SIGKILL after a grace period.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { BIN, CliError, EXIT, pidAlive, sleep } from './common.js';

/** A free TCP port on 127.0.0.1 (for a service whose lab file leaves its port to us). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface ServiceSpawn {
  /** in messages: `heartbeat agent alpha-1` */
  what: string;
  /** arguments of `sanbox` */
  args: string[];
  logPath: string;
  /** does it answer yet? */
  ready(): Promise<boolean>;
  readyMs: number;
  onExit(code: number | null, signal: NodeJS.Signals | null): void;
}

/** Spawns `sanbox ARGS` and waits until it answers; a clear error if it exits or stays silent. */
export async function spawnService(o: ServiceSpawn): Promise<ChildProcess> {
  const logFile = createWriteStream(o.logPath, { flags: 'a' });
  const proc = spawn(process.execPath, [BIN, ...o.args], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.pipe(logFile, { end: false });
  proc.stderr!.pipe(logFile, { end: false });
  proc.on('exit', (code, signal) => o.onExit(code, signal));
  const end = Date.now() + o.readyMs;
  while (Date.now() < end) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new CliError(EXIT.ERROR, 'start-failed', `${o.what} exited at start (see ${o.logPath})`);
    if (await o.ready()) return proc;
    await sleep(100);
  }
  throw new CliError(EXIT.ERROR, 'start-timeout', `${o.what} did not answer within ${o.readyMs / 1000} s`);
}

/** Sends `signal`, then SIGKILL after `graceMs`; false when it was not running. */
export async function stopService(p: ChildProcess | undefined, signal: NodeJS.Signals, graceMs: number): Promise<boolean> {
  if (!p?.pid || !pidAlive(p.pid) || p.exitCode !== null) return false;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill(signal);
  await Promise.race([exited, sleep(graceMs)]);
  if (p.exitCode === null && p.signalCode === null) {
    p.kill('SIGKILL');
    await exited;
  }
  return true;
}
