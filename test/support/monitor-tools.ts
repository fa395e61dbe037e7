// The pair resync monitor's executables as child processes (bin/prmd.js, bin/chkmon.js,
// `bin/sanbox.js monitor ...`), each against its own throwaway state directory, and a raw client
// of the daemon's socket. Everything lives under one temp root per test file; SANBOX_IMAGES points
// there and SANBOX_MONITOR_STATE is empty, so nothing touches the repository's images. `cleanup`
// (and `stopDaemon` per test) stops every daemon a test started: SHUTDOWN over its socket, then
// SIGKILL of the pid in monitor.json and of any `monitor serve --state DIR` still running.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, REPO } from './paths.js';

export const TOOLS = { prmd: join(REPO, 'bin', 'prmd.js'), chkmon: join(REPO, 'bin', 'chkmon.js'), sanbox: BIN } as const;
export type Tool = keyof typeof TOOLS;

export interface ToolRun {
  code: number | null;
  out: string;
  err: string;
  /** stdout parsed as JSON, undefined when it is not JSON */
  json: any;
  /** wall time of the run */
  ms: number;
}

/** An instance nothing listens on: every poll fails, so the resource's lastError is set. */
export const DEAD_INSTANCE = 'http://127.0.0.1:1';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it answers something other than undefined/false; throws after `ms`. */
export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, ms: number, what: string, stepMs = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The daemon's pid from `DIR/monitor.json` (undefined: no file, no daemon serving). */
export async function daemonPid(dir: string): Promise<number | undefined> {
  try {
    return (JSON.parse(await readFile(join(dir, 'monitor.json'), 'utf8')) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

/** Pids of the processes whose command line holds `monitor serve ... --state DIR` (pgrep -f, by /proc). */
export async function servePids(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0');
    } catch {
      continue; // gone meanwhile
    }
    const s = argv.indexOf('--state');
    if (argv.includes('monitor') && argv.includes('serve') && s >= 0 && argv[s + 1] === dir) pids.push(Number(name));
  }
  return pids;
}

/** One request on its own connection to the daemon's socket: its reply (a parsed line). */
export async function ask(dir: string, msg: object | string, timeoutMs = 10_000): Promise<any> {
  const c = await LineClient.open(join(dir, 'prm.sock'));
  try {
    return await c.request(msg, timeoutMs);
  } finally {
    c.close();
  }
}

/** A connection to the daemon's socket kept open: send lines, read the replies in order. */
export class LineClient {
  private buf = '';
  private readonly lines: string[] = [];
  private wake: (() => void) | undefined;
  /** resolves when the daemon closed (or ended) the connection */
  readonly closed: Promise<void>;
  private isClosed = false;

  private constructor(private readonly s: Socket) {
    s.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        this.lines.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
      }
      this.wake?.();
    });
    this.closed = new Promise((r) => {
      const done = () => {
        this.isClosed = true;
        this.wake?.();
        r();
      };
      s.once('end', done);
      s.once('close', done);
    });
    s.on('error', () => undefined);
  }

  static open(path: string, timeoutMs = 5000): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      const t = setTimeout(() => s.destroy(new Error(`connect to ${path} timed out`)), timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(new LineClient(s));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** Sends one line: an object as JSON, a string as is (a newline is added). */
  send(msg: object | string): void {
    this.s.write((typeof msg === 'string' ? msg : JSON.stringify(msg)) + '\n');
  }

  /** Writes `text` as is (no newline added). */
  sendRaw(text: string): void {
    this.s.write(text);
  }

  /** The next reply line, parsed; throws if none comes within `timeoutMs` or the connection closed. */
  async next(timeoutMs = 10_000): Promise<any> {
    const end = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.isClosed) throw new Error('the daemon closed the connection without a reply');
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = undefined;
    }
    return JSON.parse(this.lines.shift()!);
  }

  request(msg: object | string, timeoutMs = 10_000): Promise<any> {
    this.send(msg);
    return this.next(timeoutMs);
  }

  close(): void {
    this.s.destroy();
  }
}

/** The spec fields of a resource view, the ones a save/load round trip keeps. */
export const specOfView = (r: any) => ({ appName: r.appName, deviceGroup: r.deviceGroup, instance: r.instance, intervalSeconds: r.intervalSeconds, autorecover: r.autorecover, resyncAdminFractures: r.resyncAdminFractures });

/** A test file's sandbox: the temp root, the state directories, the daemons and children started. */
export class MonitorSandbox {
  private readonly dirs = new Set<string>();
  private readonly children = new Set<ChildProcess>();

  private constructor(
    readonly root: string,
    readonly images: string,
  ) {}

  static async create(): Promise<MonitorSandbox> {
    const root = await mkdtemp(join(tmpdir(), 'prm-'));
    const images = join(root, 'img');
    await mkdir(images);
    return new MonitorSandbox(root, images);
  }

  /** The environment of every child: this sandbox's images, no default state dir, no token. */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { ...process.env, SANBOX_IMAGES: this.images, SANBOX_MONITOR_STATE: '', SANBOX_MONITOR_TOKEN: '', ...extra };
  }

  /** A fresh state directory (short: its prm.sock path must stay under ~100 characters). */
  async stateDir(): Promise<string> {
    const dir = await mkdtemp(join(this.root, 's'));
    this.dirs.add(dir);
    return dir;
  }

  /** Starts a tool; the child is tracked (killed by cleanup if still running). */
  spawn(tool: Tool, args: string[], env: Record<string, string> = {}): ChildProcess {
    const p = spawn(process.execPath, [TOOLS[tool], ...args], { cwd: REPO, env: this.env(env), stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(p);
    p.once('exit', () => this.children.delete(p));
    return p;
  }

  /** Runs a tool to completion (stdin not a terminal); SIGKILLed after `timeoutMs`. */
  run(tool: Tool, args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<ToolRun> {
    const started = Date.now();
    const p = this.spawn(tool, args, env);
    return new Promise((resolve) => {
      let out = '';
      let err = '';
      p.stdout!.on('data', (d) => (out += d));
      p.stderr!.on('data', (d) => (err += d));
      const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
      p.on('close', (code, signal) => {
        clearTimeout(t);
        let json: any;
        try {
          json = JSON.parse(out);
        } catch {
          json = undefined;
        }
        resolve({ code: code ?? (signal ? -1 : null), out, err, json, ms: Date.now() - started });
      });
    });
  }

  /** prmd / chkmon / sanbox against state directory `dir`. */
  prmd = (dir: string, args: string[]) => this.run('prmd', ['--state', dir, ...args]);
  chkmon = (dir: string, args: string[]) => this.run('chkmon', ['--state', dir, ...args]);

  /**
   * `sanbox monitor serve --state DIR --json ...` in the foreground: resolves with what it prints
   * once ready (its DaemonInfo) and the child; rejects if it exits first or is not ready in time.
   */
  async serve(dir: string, extra: string[] = ['--quiet'], timeoutMs = 20_000): Promise<{ proc: ChildProcess; info: any; stderr: () => string }> {
    const proc = this.spawn('sanbox', ['monitor', 'serve', '--state', dir, '--json', ...extra]);
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    const info = await new Promise<any>((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`monitor serve not ready within ${timeoutMs} ms: ${err}`));
      }, timeoutMs);
      proc.stdout!.on('data', (d) => {
        out += d;
        try {
          const j = JSON.parse(out);
          clearTimeout(t);
          resolve(j);
        } catch {
          /* more to come */
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`monitor serve exited (${code}) before ready: ${err}`));
      });
    });
    return { proc, info, stderr: () => err };
  }

  /** A fresh state directory with a daemon serving it (`monitor serve`) and `resources` added over its socket. */
  async daemonWith(resources: Array<{ app?: string; group: string; interval?: number; resync?: 'yes' | 'no'; instance?: string }>): Promise<{ dir: string; pid: number }> {
    const dir = await this.stateDir();
    const { info } = await this.serve(dir);
    for (const r of resources) {
      const rep = await ask(dir, { msgType: 'ADD', appName: r.app ?? 'A', deviceGroup: r.group, instance: r.instance ?? DEAD_INSTANCE, interval: r.interval ?? 3600, resync: r.resync ?? 'yes' });
      if (rep.code !== 0) throw new Error(`ADD ${r.group}: ${JSON.stringify(rep)}`);
    }
    return { dir, pid: info.pid };
  }

  /** Stops the daemon of `dir` (if any) and waits until no `monitor serve --state DIR` runs. */
  async stopDaemon(dir: string): Promise<void> {
    // only processes that serve this test's directory: monitor.json's pid is one of them unless stale
    const pids = await servePids(dir);
    const pid = await daemonPid(dir);
    if (pids.length === 0 && (pid === undefined || !alive(pid))) return;
    await ask(dir, { msgType: 'SHUTDOWN' }, 3000).catch(() => undefined);
    const end = Date.now() + 5000;
    while (pids.some(alive) && Date.now() < end) await sleep(50);
    for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
  }

  /** Stops every daemon and child of this sandbox and removes its temp root. */
  async cleanup(): Promise<void> {
    await Promise.all([...this.dirs].map((d) => this.stopDaemon(d)));
    for (const c of this.children) c.kill('SIGKILL');
    await rm(this.root, { recursive: true, force: true });
  }
}
