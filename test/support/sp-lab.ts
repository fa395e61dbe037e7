/**
 * Test helper for the SP fault scenarios: a throwaway lab (one array, two SPs) started with
 * `sanbox up --detach` under its own SANBOX_IMAGES, the sanbox CLI run asynchronously (never
 * spawnSync: the ledger writer lives on this process's event loop and must keep running while a
 * fault is injected), and a `down` that always runs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSanbox, type SanboxRun } from './launch.js';

export interface LabOptions {
  cacheSize?: string;
  idleMs?: number;
  vaultBandwidth?: string;
  holdUpMs?: number;
  failback?: 'automatic' | 'manual';
  lunSize?: string;
  /** LUN names (default disk0, disk1: default owners alternate A, B, A, ...). */
  luns?: string[];
}

export type CliResult = SanboxRun;

export interface SpLab {
  dir: string;
  env: Record<string, string>;
  ports: { A: number; B: number };
  uri: (sp: 'A' | 'B', lun?: string) => string;
  cli: (args: string[], timeoutMs?: number) => Promise<CliResult>;
  /** `cli` that must exit 0; returns the parsed --json output. */
  ok: (args: string[], timeoutMs?: number) => Promise<any>;
  status: () => Promise<any>;
  lun: (name: string) => Promise<any>;
  /** The management API directly (fast enough to poll for short-lived states). */
  api: (method: 'GET' | 'POST', path: string, body?: unknown) => Promise<{ status: number; json: any }>;
  /** `sanbox down` (keeps the directory: image files can be checked); returns how long it took. */
  stop: () => Promise<{ ms: number; code: number | null; err: string }>;
  /** stop + remove the directory. */
  down: () => Promise<void>;
}

const runCli = runSanbox;

export async function startLab(o: LabOptions = {}): Promise<SpLab> {
  const dir = mkdtempSync(join(tmpdir(), 'sanbox-sp-ledger-'));
  const env = { SANBOX_IMAGES: join(dir, 'images') };
  const sps = [
    `      cacheSize: ${o.cacheSize ?? '16M'}`,
    `      failback: ${o.failback ?? 'automatic'}`,
    ...(o.idleMs !== undefined ? [`      idleMs: ${o.idleMs}`] : []),
    ...(o.vaultBandwidth !== undefined ? [`      vaultBandwidth: ${o.vaultBandwidth}`] : []),
    `      battery: { charge: 100, holdUpMs: ${o.holdUpMs ?? 10_000} }`,
  ];
  const lab = join(dir, 'lab.yaml');
  writeFileSync(
    lab,
    ['lab: spledger', 'arrays:', '  - name: alpha', '    nbd: { port: 0 }', '    api: { port: 0 }', '    sps:', ...sps, '    luns:', ...(o.luns ?? ['disk0', 'disk1']).map((n) => `      - { name: ${n}, size: ${o.lunSize ?? '64M'} }`), ''].join('\n'),
  );
  const up = await runCli(['up', lab, '--detach', '--json'], env, 60_000);
  let stopped: { ms: number; code: number | null; err: string } | null = null;
  const stop = async () => {
    if (stopped) return stopped;
    const t = Date.now();
    const r = await runCli(['down', 'spledger'], env, 60_000);
    stopped = { ms: Date.now() - t, code: r.code, err: r.err };
    return stopped;
  };
  const cleanup = async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  };
  if (up.code !== 0 || !up.json?.arrays?.[0]?.sps) {
    await cleanup();
    throw new Error(`sanbox up failed (exit ${up.code}): ${up.err}${up.out}`);
  }
  const sp = Object.fromEntries((up.json.arrays[0].sps as { name: string; port: number }[]).map((s) => [s.name, s.port])) as { A: number; B: number };
  const cli = (args: string[], timeoutMs?: number) => runCli(args, env, timeoutMs);
  const ok = async (args: string[], timeoutMs?: number) => {
    const r = await cli([...args, '--json'], timeoutMs);
    if (r.code !== 0) throw new Error(`sanbox ${args.join(' ')} exited ${r.code}: ${r.err}${r.out}`);
    return r.json;
  };
  const status = () => ok(['status']);
  const apiUrl = String(up.json.arrays[0].api.url);
  const api = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const r = await fetch(apiUrl + path, { method, headers: method === 'POST' ? { 'content-type': 'application/json' } : {}, body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined, signal: AbortSignal.timeout(60_000) });
    return { status: r.status, json: await r.json().catch(() => null) };
  };
  return {
    dir,
    env,
    ports: sp,
    uri: (s, lun = 'disk0') => `nbd://127.0.0.1:${sp[s]}/${lun}`,
    cli,
    ok,
    status,
    lun: async (name) => (await status()).luns.find((l: { name: string }) => l.name === name),
    api,
    stop,
    down: cleanup,
  };
}
