// Interop test harness: starts an NBD server (sanbox by default, nbdkit when
// SANBOX_INTEROP_SERVER=nbdkit) on a free loopback port in a temp dir, waits
// until it speaks NBD, runs real client tools with bounded time, and stops the
// server (SIGTERM, then SIGKILL after a bound). Nothing is left running: every
// child is tracked and killed on process exit.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, openSync, closeSync, ftruncateSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from '../support/net.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../support/paths.js';

export { REPO };
export const SERVER_KIND: 'sanbox' | 'nbdkit' =
  process.env.SANBOX_INTEROP_SERVER === 'nbdkit' ? 'nbdkit' : 'sanbox';
export const HOST = '127.0.0.1';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** PATH with the system directories first: Debian's python3 (with `import nbd`)
 * must win over a pyenv shim, and /usr/sbin holds losetup, mkfs, nbd-client. */
export function toolEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const sys = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  const rest = (process.env.PATH ?? '').split(':').filter((p) => p && !sys.includes(p));
  // LIBNBD_DEBUG etc. are inherited; keep locale stable for parsing tool output.
  return { ...process.env, PATH: [...sys, ...rest].join(':'), LC_ALL: 'C', ...extra };
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

export function tempDir(prefix = 'sanbox-interop-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface RunResult {
  cmd: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string | Buffer;
  env?: Record<string, string>;
  cwd?: string;
}

function quote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** Run a command to completion (bounded). Never throws; see `mustRun`. */
export function run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const cmd = [file, ...args].map(quote).join(' ');
  return new Promise((resolvePromise) => {
    const child = execFile(
      file,
      args,
      {
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * MiB,
        env: toolEnv(opts.env),
        cwd: opts.cwd,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        live.delete(child);
        const e = err as (NodeJS.ErrnoException & { killed?: boolean; code?: unknown; signal?: NodeJS.Signals | null }) | null;
        let code: number | null = 0;
        let signal: NodeJS.Signals | null = null;
        if (e) {
          code = typeof e.code === 'number' ? e.code : null;
          signal = e.signal ?? null;
          if (typeof e.code === 'string') stderr += `\n[spawn error ${e.code}: ${e.message}]`;
        }
        resolvePromise({ cmd, code, signal, stdout, stderr, timedOut: !!(e && e.killed && signal === 'SIGKILL') });
      },
    );
    live.add(child);
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

export function describeRun(r: RunResult): string {
  return [
    `$ ${r.cmd}`,
    `exit=${r.code} signal=${r.signal}${r.timedOut ? ' (TIMED OUT)' : ''}`,
    `--- stdout ---\n${r.stdout.slice(-6000)}`,
    `--- stderr ---\n${r.stderr.slice(-6000)}`,
  ].join('\n');
}

/** Run and require exit status 0; the error carries the full output and the server's stderr. */
export async function mustRun(file: string, args: string[], opts: RunOptions & { server?: NbdServer } = {}): Promise<RunResult> {
  const r = await run(file, args, opts);
  if (r.code !== 0) {
    throw new Error(`command failed\n${describeRun(r)}${opts.server ? `\n--- server stderr (${opts.server.kind}) ---\n${opts.server.stderr().slice(-6000)}` : ''}`);
  }
  return r;
}

/** A free TCP port on the loopback address (below the ephemeral range: ../support/net.ts). */
export { freePort };

/** One probe: connect and read the 8-byte NBDMAGIC greeting. */
function probeNbd(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((res) => {
    let got = Buffer.alloc(0);
    let done = false;
    const sock = connect({ host: HOST, port });
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      sock.destroy();
      res(ok);
    };
    const t = setTimeout(() => finish(false), timeoutMs);
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 8) finish(got.subarray(0, 8).toString('latin1') === 'NBDMAGIC');
    });
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(false));
  });
}

export interface LunSpec {
  name: string;
  /** bytes, multiple of 512 */
  size: number;
}

export interface StartOptions {
  luns: LunSpec[];
  readOnly?: boolean;
  /** Reuse a directory (e.g. restart on the same images). Default: a fresh temp dir. */
  dir?: string;
  readyTimeoutMs?: number;
  /** Extra server options, spelled alike by sanbox serve and nbdkit (e.g. `--tls require`). */
  args?: string[];
}

export interface StopResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** true when SIGTERM was not enough and SIGKILL had to be sent */
  killed: boolean;
  ms: number;
}

export interface NbdServer {
  kind: 'sanbox' | 'nbdkit';
  host: string;
  port: number;
  dir: string;
  pid: number;
  /** nbd://127.0.0.1:PORT/NAME */
  uri(name: string): string;
  stderr(): string;
  stdout(): string;
  exited(): boolean;
  stop(graceMs?: number): Promise<StopResult>;
  /** sanbox: the management API URL from the ready JSON (undefined for nbdkit). */
  apiUrl(): Promise<string | undefined>;
  /** Path of the image file that backs an export (sanbox: from `sanbox status --json`). */
  imagePath(name: string): Promise<string>;
  /**
   * Resolves once every acknowledged write is in the image files. At once without SPs; with
   * SPs (SANBOX_INTEROP_SPS=1) a flush only means "in both SPs' caches", so this waits for the
   * write caches to destage (their idle timer does it).
   */
  destaged(): Promise<void>;
}

/** The first complete JSON object in a stream of text, or undefined. */
function firstJson(text: string): Record<string, unknown> | undefined {
  const start = text.indexOf('{');
  if (start < 0) return undefined;
  let depth = 0;
  let inStr = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
    } else if (c === '"') inStr = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      try { return JSON.parse(text.slice(start, i + 1)) as Record<string, unknown>; } catch { return undefined; }
    }
  }
  return undefined;
}

/** Size as the sanbox CLI takes it: plain bytes (exact). */
function sizeArg(bytes: number): string {
  return String(bytes);
}

function ensureNbdkitImages(dir: string, luns: LunSpec[]): void {
  for (const l of luns) {
    const p = join(dir, l.name);
    if (!existsSync(p)) {
      const fd = openSync(p, 'w');
      try { ftruncateSync(fd, l.size); } finally { closeSync(fd); }
    }
  }
}

function commandFor(kind: 'sanbox' | 'nbdkit', dir: string, port: number, opts: StartOptions): [string, string[]] {
  if (kind === 'nbdkit') {
    ensureNbdkitImages(dir, opts.luns);
    // dir= mode: every file in DIR is an export named by its file name.
    // SANBOX_INTEROP_NBDKIT_ARGS (e.g. "--filter=noextents") lets us check that tests fail
    // against a deliberately degraded server.
    const extra = (process.env.SANBOX_INTEROP_NBDKIT_ARGS ?? '').split(/\s+/).filter(Boolean);
    return ['nbdkit', ['-f', '--exit-with-parent', '-p', String(port), '-i', HOST, ...(opts.readOnly ? ['-r'] : []), ...(opts.args ?? []),
      ...extra.filter((a) => a.startsWith('-')), 'file', `dir=${dir}`, ...extra.filter((a) => !a.startsWith('-'))]];
  }
  // --api-port 0: the management API on any free port, so several servers can run at once.
  // SANBOX_BIN: another sanbox entry point (e.g. an installed one); default the repo's bin/sanbox.js.
  // --json: the endpoints (API URL, image paths) as JSON on stdout when ready.
  const args = [process.env.SANBOX_BIN ?? join(REPO, 'bin', 'sanbox.js'), 'serve', '--dir', dir, '--port', String(port), '--bind', HOST, '--api-port', '0', '--json'];
  for (const l of opts.luns) args.push('--lun', `${l.name}=${sizeArg(l.size)}`);
  if (opts.readOnly) args.push('--read-only');
  if (opts.args) args.push(...opts.args);
  // SANBOX_INTEROP_SPS=1: the same tests through a two-SP array (chassis, SP A on this port: the
  // owner of even LUN ids, the forwarding path over CMI for odd ones; mirrored write cache).
  if (process.env.SANBOX_INTEROP_SPS === '1') args.push('--sps');
  return [process.execPath, args];
}

const servers = new Set<NbdServer>();

export async function startServer(opts: StartOptions): Promise<NbdServer> {
  const dir = opts.dir ?? tempDir();
  mkdirSync(dir, { recursive: true });
  const readyTimeoutMs = opts.readyTimeoutMs ?? 20_000;
  let lastErr = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const [file, args] = commandFor(SERVER_KIND, dir, port, opts);
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: toolEnv(), cwd: REPO });
    live.add(child);
    let err = '';
    let out = '';
    let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; if (err.length > 1_000_000) err = err.slice(-500_000); });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.length > 1_000_000) out = out.slice(-500_000); });
    const exitP = new Promise<void>((r) => child.on('exit', (code, signal) => { exitInfo = { code, signal }; live.delete(child); r(); }));
    child.on('error', (e) => { err += `\n[spawn error: ${e.message}]`; });

    const deadline = Date.now() + readyTimeoutMs;
    let ready = false;
    let delay = 20;
    while (Date.now() < deadline && !exitInfo) {
      if (await probeNbd(port, 2000)) { ready = true; break; }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 250);
    }
    const cmdline = [file, ...args].map(quote).join(' ');
    if (!ready) {
      if (!exitInfo) { child.kill('SIGKILL'); await exitP; }
      const ei = exitInfo as { code: number | null; signal: NodeJS.Signals | null } | null;
      lastErr = `server did not become ready on port ${port} within ${readyTimeoutMs} ms (exit=${ei?.code} signal=${ei?.signal})\n$ ${cmdline}\n--- stderr ---\n${err.slice(-6000)}\n--- stdout ---\n${out.slice(-2000)}`;
      if (/EADDRINUSE|address already in use/i.test(err)) continue; // lost the port race: retry
      if (!opts.dir) rmrf(dir);
      throw new Error(lastErr);
    }
    const srv: NbdServer = {
      kind: SERVER_KIND,
      host: HOST,
      port,
      dir,
      pid: child.pid ?? -1,
      uri: (name: string) => `nbd://${HOST}:${port}/${name}`,
      stderr: () => err,
      stdout: () => out,
      exited: () => exitInfo !== null,
      stop: (graceMs = 10_000) => (stopping ??= doStop(graceMs)),
      apiUrl: async () => {
        if (SERVER_KIND !== 'sanbox') return undefined;
        await waitFor(() => firstJson(out) !== undefined || exitInfo !== null, 10_000, 'the ready JSON of sanbox serve --json');
        const api = firstJson(out)?.api as { url?: string } | undefined;
        return api?.url;
      },
      imagePath: async (name: string) => {
        if (SERVER_KIND === 'nbdkit') return join(dir, name);
        const url = await srv.apiUrl();
        if (!url) throw new Error(`no API URL in the output of sanbox serve --json:\n${out}`);
        const r = await mustRun(process.execPath, [join(REPO, 'bin', 'sanbox.js'), 'status', '--json', '--api', url], { server: srv });
        const st = JSON.parse(r.stdout) as { luns: Array<{ name: string; image: string }> };
        const lun = st.luns.find((l) => l.name === name);
        if (!lun) throw new Error(`LUN ${name} not in sanbox status --json:\n${r.stdout}`);
        return lun.image;
      },
      destaged: async () => {
        if (SERVER_KIND !== 'sanbox' || process.env.SANBOX_INTEROP_SPS !== '1') return;
        const url = await srv.apiUrl();
        let dirty = -1;
        await waitFor(async () => {
          const r = await mustRun(process.execPath, [join(REPO, 'bin', 'sanbox.js'), 'status', '--json', '--api', url!], { server: srv });
          const st = JSON.parse(r.stdout) as { sps?: Array<{ cache: { dirtyBytes: number } }> };
          dirty = (st.sps ?? []).reduce((n, sp) => n + sp.cache.dirtyBytes, 0);
          return dirty === 0;
        }, 20_000, 'the SP write caches to destage');
      },
    };
    let stopping: Promise<StopResult> | undefined;
    const doStop = async (graceMs: number): Promise<StopResult> => {
        const t0 = Date.now();
        servers.delete(srv);
        let killed = false;
        if (!exitInfo) {
          child.kill('SIGTERM');
          const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
          if ((await Promise.race([exitP.then(() => 'exit' as const), timer])) === 'timeout') {
            killed = true;
            child.kill('SIGKILL');
            await exitP;
          }
        }
        const ei = exitInfo as { code: number | null; signal: NodeJS.Signals | null } | null;
        return { code: ei?.code ?? null, signal: ei?.signal ?? null, killed, ms: Date.now() - t0 };
    };
    servers.add(srv);
    return srv;
  }
  if (!opts.dir) rmrf(dir);
  throw new Error(lastErr);
}

/** Stop every server still running (for afterAll hooks). */
export async function stopAll(): Promise<void> {
  await Promise.all([...servers].map((s) => s.stop()));
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * A raw image with a mix of random data, zero-filled data and holes, so copies
 * exercise data, zero detection and sparseness. Deterministic layout, random bytes.
 */
export function makeMixedImage(path: string, size: number, chunk = 1 * MiB): Buffer {
  const buf = Buffer.alloc(size);
  for (let off = 0, i = 0; off < size; off += chunk, i++) {
    const len = Math.min(chunk, size - off);
    switch (i % 4) {
      case 0: randomBytes(len).copy(buf, off); break; // full random chunk
      case 1: break; // hole
      case 2: randomBytes(len / 2).copy(buf, off + len / 4); break; // data in the middle
      case 3: buf.fill(0xa5, off, off + 4096); break; // one 4k block of pattern
    }
  }
  writeFileSync(path, buf);
  return buf;
}

export function rmrf(p: string): void {
  try { rmSync(p, { recursive: true, force: true }); } catch { /* ignore */ }
}

/** Poll a condition until true or the bound is reached. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export { spawn, live as liveChildren };
