// Disk faults on arrays run as real processes (bin/sanbox.js runs dist/: build first), set with
// the real `sanbox fault disk` command and met by qemu-io: a single-process `sanbox serve`, and a
// two-SP array whose chassis gives the fault to both SP processes (and again to an SP that
// restarts after a crash).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { launchSanbox, runSanbox, stopProcess } from '../../support/launch.js';
import { requireBuild } from '../../support/paths.js';
import { startSpArray, type SpArray } from '../../support/sp-array.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** qemu-io on a fresh connection: what it printed (its exit status says little about I/O errors). */
async function qemuIo(port: number, exp: string, cmds: string[]): Promise<string> {
  const args = ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), `nbd://127.0.0.1:${port}/${exp}`];
  try {
    const r = await promisify(execFile)('qemu-io', args, { timeout: 60_000 });
    return r.stdout + r.stderr;
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string };
    return `${x.stdout ?? ''}${x.stderr ?? ''}`;
  }
}

beforeAll(() => requireBuild('cli/index.js'));

describe('sanbox serve (single process)', () => {
  let dir: string;
  let proc: ChildProcess;
  let url: string;
  let port: number;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sanbox-diskfault-serve-'));
    const l = await launchSanbox<{ nbd: { port: number }; api: { url: string } }>(
      ['serve', '--dir', dir, '--name', 'solo', '--port', '0', '--api-port', '0', '--json', '-q', '--lun', 'disk=16M'],
      'sanbox serve',
    );
    proc = l.proc;
    url = l.ready.api.url;
    port = l.ready.nbd.port;
  });
  afterAll(async () => {
    if (proc) await stopProcess(proc);
    await rm(dir, { recursive: true, force: true });
  });

  it('qemu-io sees EIO for a read in the faulted range and succeeds outside it', async () => {
    const set = await runSanbox(['fault', 'disk', 'solo', 'disk', '--errors', 'read', '--range', '64K:64K', '--json', '--api', url]);
    expect(set.code, set.err).toBe(0);
    expect(await qemuIo(port, 'disk', [`read ${64 * KiB} 4096`])).toMatch(/read failed: Input\/output error/);
    expect(await qemuIo(port, 'disk', ['read 0 65536', `read ${128 * KiB} 4096`])).not.toMatch(/error/i);
    const st = await runSanbox(['status', '--json', '--api', url]);
    expect(st.json.diskFaults[0]).toMatchObject({ name: 'disk', injected: 1 });
    const clear = await runSanbox(['fault', 'disk', 'solo', 'disk', '--clear', '--api', url]);
    expect(clear.code, clear.err).toBe(0);
    expect(clear.out).toMatch(/cleared \(1 errors injected/);
    expect(await qemuIo(port, 'disk', [`read ${64 * KiB} 4096`])).not.toMatch(/error/i);
  });

  it('bad input exits 2 and nothing changes', async () => {
    const bad = await runSanbox(['fault', 'disk', 'solo', 'disk', '--errno', 'EPERM', '--rate', '-1', '--api', url]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/errno.*rate|rate.*errno/s);
    const st = await runSanbox(['status', '--json', '--api', url]);
    expect(st.json.diskFaults).toEqual([]);
  });
});

describe('two-SP array', () => {
  let a: SpArray;
  beforeAll(async () => {
    a = await startSpArray('duo');
  }, 60_000);
  afterAll(async () => {
    await a?.stop();
  });

  const fault = (args: string[]) => runSanbox(['fault', 'disk', 'duo', ...args, '--api', a.url]);
  type Df = { name: string; injected: number; sps: { sp: string; counters: { injected: { read: number } } }[] };
  const diskFaults = async () => (await a.api.status<{ diskFaults: Df[] }>()).diskFaults;

  it('the fault reaches both SPs: EIO through either SP port in the range, success outside', async () => {
    const set = await fault(['d0', '--errors', 'read', '--range', '0:64K']);
    expect(set.code, set.err).toBe(0);
    for (const sp of ['A', 'B'] as const) {
      expect(await qemuIo(a.ports[sp], 'd0', ['read 4096 4096']), `via SP ${sp}`).toMatch(/Input\/output error/);
      expect(await qemuIo(a.ports[sp], 'd0', [`read ${MiB} 4096`]), `via SP ${sp}`).not.toMatch(/error/i);
      expect(await qemuIo(a.ports[sp], 'd1', ['read 4096 4096']), `via SP ${sp}`).not.toMatch(/error/i);
    }
    const [df] = await diskFaults();
    expect(df!.name).toBe('d0');
    expect(df!.injected).toBeGreaterThanOrEqual(2); // both reads ran on the owner SP's image
    expect(df!.sps.map((s) => s.sp).sort()).toEqual(['A', 'B']);
  });

  it('an SP restarted after a crash gets the fault again; clear removes it from both', async () => {
    const crash = await runSanbox(['fault', 'sp-crash', 'duo', 'A', '--api', a.url]);
    expect(crash.code, crash.err).toBe(0);
    const restart = await runSanbox(['fault', 'sp-restart', 'duo', 'A', '--api', a.url], {}, 90_000);
    expect(restart.code, restart.err).toBe(0);
    const [df] = await diskFaults();
    expect(df!.sps.map((s) => s.sp).sort()).toEqual(['A', 'B']);
    expect(df!.sps.find((s) => s.sp === 'A')!.counters.injected.read).toBe(0); // a new process counts from 0
    for (const sp of ['A', 'B'] as const) expect(await qemuIo(a.ports[sp], 'd0', ['read 8192 4096']), `via SP ${sp}`).toMatch(/Input\/output error/);
    const clear = await fault(['d0', '--clear', '--json']);
    expect(clear.code, clear.err).toBe(0);
    expect(await diskFaults()).toEqual([]);
    for (const sp of ['A', 'B'] as const) expect(await qemuIo(a.ports[sp], 'd0', ['read 8192 4096']), `via SP ${sp}`).not.toMatch(/error/i);
  }, 120_000);
});
