// A fenced LUN on a two-SP array (`sanbox array serve` with SPs: each SP its own process): host
// writes are refused with EPERM on both SP ports, reads served, and the fence follows the LUN: it
// holds after a trespass to the peer SP, through an SP crash and restart, and across a restart of
// the whole array (it is in the LUN table the chassis hands both SPs). Lifting it lets writes in.
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SPS } from '../../src/array/chassis/index.js';
import { NbdClient, NbdReplyError } from '../../src/check/nbd-client/index.js';
import { ApiClient } from '../../src/control/client.js';
import { launchArray, stopProcess } from '../support/launch.js';
import { requireBuild } from '../support/paths.js';
import { until } from '../support/net.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let dir: string;
let cfg: Record<string, unknown>;
let proc: ChildProcess;
let api: ApiClient;
let ports: { A: number; B: number };

async function start(): Promise<void> {
  const l = await launchArray(join(dir, 'cfg.json'), cfg, 'array alpha');
  proc = l.proc;
  ports = l.ports;
  api = new ApiClient({ url: l.ready.api.url });
}

const post = <T = any>(path: string, body: unknown): Promise<T> => api.request<T>('POST', path, body);
const lun = async (name: string): Promise<any> => (await api.request<{ lun: any }>('GET', `/v1/luns/${name}`)).lun;
const uri = (sp: 'A' | 'B', name = 'd0') => `nbd://127.0.0.1:${ports[sp]}/${name}`;

/** One write and one read through each SP port: what each did ('ok' or the errno). */
async function tryBoth(name: string, fill: number): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const sp of ['A', 'B'] as const) {
    const c = await NbdClient.connect(uri(sp, name));
    try {
      out[`${sp}.write`] = await c.write(0, Buffer.alloc(4096, fill)).then(
        () => 'ok',
        (e: unknown) => (e instanceof NbdReplyError ? e.errno : String(e)),
      );
      out[`${sp}.read`] = await c.read(0, 4096).then(
        () => 'ok',
        (e: unknown) => (e instanceof NbdReplyError ? e.errno : String(e)),
      );
    } finally {
      await c.close();
    }
  }
  return out;
}
const REFUSED = { 'A.write': 'EPERM', 'A.read': 'ok', 'B.write': 'EPERM', 'B.read': 'ok' };
const ALLOWED = { 'A.write': 'ok', 'A.read': 'ok', 'B.write': 'ok', 'B.read': 'ok' };

beforeAll(async () => {
  requireBuild('cli/index.js');
  dir = mkdtempSync(join(tmpdir(), 'sanbox-fence-sp-'));
  cfg = {
    name: 'alpha',
    dir: join(dir, 'alpha'),
    nbd: { bind: '127.0.0.1', port: 0 },
    api: { bind: '127.0.0.1', port: 0 },
    luns: [
      { name: 'd0', size: 16 * MiB },
      { name: 'd1', size: 16 * MiB },
    ],
    sync: false,
    sps: { ...structuredClone(DEFAULT_SPS), cacheBytes: 16 * MiB, cache: { ...DEFAULT_SPS.cache, idleMs: 0 } },
  };
  await start();
}, 60_000);
afterAll(async () => {
  if (proc) await stopProcess(proc);
  rmSync(dir, { recursive: true, force: true });
});

describe('fencing on a two-SP array', { timeout: 120_000 }, () => {
  it('refuses host writes on both SP ports, after a trespass, an SP crash and restart, and an array restart', async () => {
    expect(await tryBoth('d0', 1)).toEqual(ALLOWED);
    const r = await post<{ lun: any }>('/v1/luns/d0/fence', { fenced: true, reason: 'lost every path to the standby and the witness', by: 'hb-master' });
    expect(r.lun.fenced).toMatchObject({ reason: 'lost every path to the standby and the witness', by: 'hb-master' });
    // the answer comes once the SPs took the route that carries the fence: refused at once
    expect(await tryBoth('d0', 2)).toEqual(REFUSED);
    expect(await tryBoth('d1', 2)).toEqual(ALLOWED);
    // qemu-io through the owner's port
    const owner = (await lun('d0')).currentOwner as 'A' | 'B';
    const w = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 4k', uri(owner)]).then(
      (x) => x.stdout + x.stderr,
      (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`,
    );
    expect(w).toMatch(/Operation not permitted/);

    // trespass: the LUN moves to the peer SP; the fence follows it
    const peer = owner === 'A' ? 'B' : 'A';
    await post('/v1/luns/d0/trespass', { to: peer });
    expect((await lun('d0')).currentOwner).toBe(peer);
    expect(await tryBoth('d0', 3)).toEqual(REFUSED);

    // the new owner crashes: the other SP takes over, and a restarted SP gets the fence at boot
    await post('/v1/faults/sp-crash', { sp: peer });
    const c = await NbdClient.connect(uri(owner));
    await expect(c.write(0, Buffer.alloc(512, 4))).rejects.toMatchObject({ errno: 'EPERM' });
    await c.close();
    await post('/v1/faults/sp-restart', { sp: peer });
    await until(async () => ((await api.request<any>('GET', '/v1/status')).sps as any[]).every((s) => s.state === 'up'), 30_000, 'both SPs up');
    expect(await tryBoth('d0', 5)).toEqual(REFUSED);

    // the whole array restarts: the fence is in its LUN table
    await stopProcess(proc);
    await start();
    expect((await lun('d0')).fenced).toMatchObject({ reason: 'lost every path to the standby and the witness', by: 'hb-master' });
    expect(await tryBoth('d0', 6)).toEqual(REFUSED);

    const off = await post<{ lun: any }>('/v1/luns/d0/fence', { fenced: false, by: 'operator' });
    expect(off.lun.fenced).toBeUndefined();
    expect(await tryBoth('d0', 7)).toEqual(ALLOWED);
    const c2 = await NbdClient.connect(uri('A'));
    expect((await c2.read(0, 4096)).equals(Buffer.alloc(4096, 7))).toBe(true);
    await c2.close();
  });
});
