// Child processes of the sanbox command for tests: start one and wait for the JSON it prints once
// ready (`sanbox serve --json`, `sanbox array serve --config --json`), run a verb to completion,
// and stop or kill a child. The launchers (serve.ts, sp-array.ts, mirror-sp-lab.ts, sp-lab.ts)
// build on these.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { BIN, REPO } from './paths.js';

export interface Launched<T> {
  proc: ChildProcess;
  /** What the child printed on stdout once ready (one JSON document). */
  ready: T;
  stderr: () => string;
  /** Resolves when the child has exited. */
  exited: Promise<void>;
}

/**
 * Spawns `node bin/sanbox.js ...args` and resolves with the JSON document it prints on stdout;
 * rejects (and kills the child) if it exits first or is not ready within `timeoutMs`.
 */
export async function launchSanbox<T>(args: string[], what: string, timeoutMs = 30_000): Promise<Launched<T>> {
  const proc = spawn(process.execPath, [BIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const ready = await new Promise<T>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${what} not ready within ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        const j = JSON.parse(out) as T;
        clearTimeout(t);
        resolve(j);
      } catch {
        /* more to come */
      }
    });
    proc.once('exit', (code, sig) => {
      clearTimeout(t);
      reject(new Error(`${what} exited (${code ?? sig}) before ready: ${err}`));
    });
  });
  return { proc, ready, stderr: () => err, exited };
}

/** What `sanbox array serve --config --json` prints once ready (the fields the tests use). */
export interface ArrayReady {
  api: { url: string };
  sps: { name: string; port: number }[];
}

/** Writes `cfg` to `cfgPath` and starts `sanbox array serve --config cfgPath` (a chassis and its SP processes). */
export async function launchArray(cfgPath: string, cfg: unknown, what = 'sanbox array serve'): Promise<Launched<ArrayReady> & { ports: { A: number; B: number } }> {
  await writeFile(cfgPath, JSON.stringify(cfg));
  const l = await launchSanbox<ArrayReady>(['array', 'serve', '--config', cfgPath, '--json', '-q'], what);
  const port = (sp: string) => l.ready.sps.find((s) => s.name === sp)!.port;
  return { ...l, ports: { A: port('A'), B: port('B') } };
}

const running = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;

/** Sends `signal` (SIGKILL: a crash) and resolves once the child has exited. */
export async function killProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!running(proc)) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  await exited;
}

/** SIGTERM (an orderly stop), SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopProcess(proc: ChildProcess, graceMs = 15_000): Promise<void> {
  if (!running(proc)) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

export interface SanboxRun {
  code: number | null;
  out: string;
  err: string;
  /** stdout parsed as JSON, null when it is not JSON. */
  json: any;
}

/**
 * Runs `node bin/sanbox.js ...args` to completion, asynchronously (never spawnSync: a ledger writer
 * on this process's event loop must keep running meanwhile); SIGKILLed after `timeoutMs`.
 */
export function runSanbox(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<SanboxRun> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    // 'exit' can come before the last stdout chunk is read: wait for 'close' (the pipes drained),
    // or a short grace after 'exit' in case a process the verb started still holds them.
    let done = false;
    let grace: NodeJS.Timeout | undefined;
    const finish = (code: number | null) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      clearTimeout(grace);
      let json: any = null;
      try {
        json = JSON.parse(out);
      } catch {
        /* not JSON */
      }
      resolve({ code, out, err, json });
    };
    p.on('exit', (code) => (grace = setTimeout(() => finish(code), 2000)));
    p.on('close', (code) => finish(code));
  });
}
