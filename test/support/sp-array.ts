import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ApiClient } from '../../src/control/client.js';
import { DEFAULT_SPS } from '../../src/array/chassis/index.js';
import { BIN } from './paths.js';
import { launchArray, runSanbox, stopProcess } from './launch.js';

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
  const { proc, ready, ports } = await launchArray(join(dir, 'cfg.json'), cfg, `array ${name}`);
  const api = new ApiClient({ url: ready.api.url });
  return {
    dir,
    api,
    url: ready.api.url,
    ports,
    proc,
    async stop() {
      await stopProcess(proc);
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
  const r = await runSanbox(args, env, 90_000);
  return { code: r.code ?? -1, stdout: r.out, stderr: r.err };
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
