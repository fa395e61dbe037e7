// Server lifecycle with real clients: many clients at once, a client killed in
// the middle of heavy I/O, graceful shutdown on SIGTERM, data persisting across
// a restart on the same images.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { MiB, mustRun, rmrf, startServer, tempDir, toolEnv, waitFor, type NbdServer } from './harness.js';

const SIZE = 64 * MiB;
let srv: NbdServer;
let dir: string;

describe('server lifecycle', () => {
  beforeAll(async () => {
    dir = tempDir();
    srv = await startServer({ luns: [{ name: 'disk', size: SIZE }, { name: 'other', size: 16 * MiB }], dir });
  });
  afterAll(async () => {
    await srv?.stop();
    rmrf(dir);
  });

  it('16 clients at once write distinct regions; all verify', async () => {
    const n = 16;
    const region = SIZE / n;
    await Promise.all(Array.from({ length: n }, (_, i) =>
      mustRun('qemu-io', ['-f', 'raw', srv.uri('disk'), '-c', `write -P ${i + 1} ${i * region} ${region}`, '-c', 'flush'], { server: srv })));
    await Promise.all(Array.from({ length: n }, (_, i) =>
      mustRun('qemu-io', ['-f', 'raw', srv.uri('disk'), '-c', `read -P ${i + 1} ${i * region} ${region}`], { server: srv }).then((r) => {
        expect(r.stdout).not.toMatch(/fail/i);
      })));
  });

  it('a client killed in the middle of heavy I/O does not disturb the server or other clients', async () => {
    const fio = spawn('fio', ['--name=victim', '--ioengine=nbd', `--uri=${srv.uri('other')}`, '--rw=randwrite', '--bs=64k', '--iodepth=32',
      '--size=8M', '--time_based', '--runtime=30', '--eta=always', '--eta-newline=1'], { env: toolEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    fio.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
    fio.stderr!.setEncoding('utf8').on('data', (d: string) => { out += d; });
    const exited = new Promise<void>((r) => fio.on('exit', () => r()));
    try {
      // wait until fio reports a non-zero write rate (I/O really in flight), bounded
      await waitFor(() => /\[w=[1-9][^\]]* IOPS\]/.test(out) || fio.exitCode !== null, 15_000, 'fio to report I/O');
      expect(fio.exitCode, `fio ended early: ${out}`).toBeNull();
    } finally {
      fio.kill('SIGKILL');
      await exited;
    }
    expect(srv.exited(), `server died: ${srv.stderr().slice(-3000)}`).toBe(false);
    const r = await mustRun('qemu-io', ['-f', 'raw', srv.uri('disk'), '-c', `read -P 1 0 ${SIZE / 16}`], { server: srv });
    expect(r.stdout).not.toMatch(/fail/i);
    // outside the victim's 8 MiB: writes it left in flight may still be applied after it died
    await mustRun('qemu-io', ['-f', 'raw', srv.uri('other'), '-c', 'write -P 0x7e 8M 1M', '-c', 'read -P 0x7e 8M 1M'], { server: srv });
  });

  it('SIGTERM shuts down gracefully and the data is there after a restart', async () => {
    await mustRun('qemu-io', ['-f', 'raw', srv.uri('disk'), '-c', `write -P 0xee ${SIZE - MiB} ${MiB}`], { server: srv });
    const st = await srv.stop(10_000);
    expect(st.killed, `server ignored SIGTERM for 10 s\n${srv.stderr().slice(-3000)}`).toBe(false);
    expect(st.code === 0 || st.signal === 'SIGTERM', `exit code ${st.code} signal ${st.signal}\n${srv.stderr().slice(-3000)}`).toBe(true);
    srv = await startServer({ luns: [{ name: 'disk', size: SIZE }, { name: 'other', size: 16 * MiB }], dir });
    const r = await mustRun('qemu-io', ['-f', 'raw', srv.uri('disk'),
      '-c', `read -P 0xee ${SIZE - MiB} ${MiB}`, '-c', `read -P 2 ${SIZE / 16} ${SIZE / 16}`], { server: srv });
    const o = await mustRun('qemu-io', ['-f', 'raw', srv.uri('other'), '-c', 'read -P 0x7e 8M 1M'], { server: srv });
    expect(o.stdout).not.toMatch(/fail/i);
    expect(r.stdout).not.toMatch(/fail/i);
    const info = await mustRun('nbdinfo', ['--size', srv.uri('disk')], { server: srv });
    expect(info.stdout.trim()).toBe(String(SIZE));
  });
});
