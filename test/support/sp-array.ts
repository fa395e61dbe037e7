import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ApiClient } from '../../src/control/client.js';
import { DEFAULT_SPS } from '../../src/array/chassis/index.js';
import { BIN } from './paths.js';

export { BIN };

const run = promisify(execFile);

export interface SpArray {
  dir: string;
  api: ApiClient;
  url: string;
  ports: { A: number; B: number };
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `sanbox array serve --config` with two SPs; resolves when it printed its endpoints. */
export async function startSpArray(name: string, sps: Partial<typeof DEFAULT_SPS> & { cache?: Partial<typeof DEFAULT_SPS.cache> } = {}): Promise<SpArray> {
  const dir = mkdtempSync(join(tmpdir(), 'sanbox-sp-'));
  const cfg = {
    name,
    dir: join(dir, name),
    nbd: { bind: '127.0.0.1', port: 0 },
    api: { bind: '127.0.0.1', port: 0 },
    luns: [
      { name: 'd0', size: 32 * 1024 * 1024 },
      { name: 'd1', size: 32 * 1024 * 1024 },
    ],
    sync: false,
    sps: { ...structuredClone(DEFAULT_SPS), cacheBytes: 16 * 1024 * 1024, ...sps, cache: { ...DEFAULT_SPS.cache, idleMs: 0, ...(sps.cache ?? {}) } },
  };
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify(cfg));
  const proc = spawn(process.execPath, [BIN, 'array', 'serve', '--config', join(dir, 'cfg.json'), '--json', '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const ready = await new Promise<{ api: { url: string }; sps: { name: string; port: number }[] }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`array did not start: ${err}`)), 30_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      try {
        const j = JSON.parse(out);
        clearTimeout(t);
        resolve(j);
      } catch {
        /* more to come */
      }
    });
    proc.on('exit', (code) => reject(new Error(`array exited ${code}: ${err}`)));
  });
  const api = new ApiClient({ url: ready.api.url });
  const ports = { A: ready.sps.find((s) => s.name === 'A')!.port, B: ready.sps.find((s) => s.name === 'B')!.port };
  return {
    dir,
    api,
    url: ready.api.url,
    ports,
    proc,
    async stop() {
      if (proc.exitCode === null) {
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([done, new Promise((r) => setTimeout(r, 15_000))]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** qemu-io against nbd://127.0.0.1:PORT/EXPORT; resolves with stdout, rejects on failure. */
export async function qemuIo(port: number, exp: string, cmds: string[]): Promise<string> {
  const args = ['-f', 'raw'];
  for (const c of cmds) args.push('-c', c);
  args.push(`nbd://127.0.0.1:${port}/${exp}`);
  let text: string;
  try {
    const r = await run('qemu-io', args, { timeout: 60_000 });
    text = r.stdout + r.stderr;
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`qemu-io ${cmds.join(' ; ')}: ${x.message} ${x.stdout ?? ''} ${x.stderr ?? ''}`);
  }
  if (/error|fail|Pattern verification/i.test(text)) throw new Error(`qemu-io ${cmds.join(' ; ')}: ${text}`);
  return text;
}

export async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 90_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

export interface Status {
  power: string;
  sps: { name: string; state: string; pid: number | null; lunsOwned: number[]; cache: { mode: string; reason: string; dirtyBytes: number }; nbd: { port: number } }[];
  luns: { id: number; name: string; state: string; defaultOwner: string; currentOwner: string | null; cacheDirty: boolean; cacheDirtyReason?: string }[];
  lastTakeover: { ms: number; sp: string; luns: number[] } | null;
}

export async function status(a: SpArray): Promise<Status> {
  return a.api.status<Status>();
}

/** At most one owner per LUN, and each SP's list agrees with the LUN records. */
export function assertOneOwner(st: Status): void {
  for (const l of st.luns) {
    const owners = st.sps.filter((s) => s.lunsOwned.includes(l.id)).map((s) => s.name);
    if (owners.length > 1) throw new Error(`LUN ${l.id} owned by ${owners.join(' and ')}`);
    if (owners.length === 1 && owners[0] !== l.currentOwner) throw new Error(`LUN ${l.id}: SP lists say ${owners[0]}, record says ${l.currentOwner}`);
  }
}
