// fio's nbd engine (libnbd) with verify=crc32c: random writes with many
// requests in flight, each block verified on read-back, then verified again by
// a separate fio run (new connection) with --verify_only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, mustRun, rmrf, startServer, tempDir, type NbdServer } from './harness.js';

let srv: NbdServer;
let work: string;

interface FioJob { error: number; read: { io_bytes: number }; write: { io_bytes: number } }

async function fio(args: string[]): Promise<FioJob> {
  const r = await mustRun('fio', ['--output-format=json', '--ioengine=nbd', `--uri=${srv.uri('disk')}`, '--verify_fatal=1', '--exitall_on_error=1', ...args],
    { server: srv, timeoutMs: 180_000, cwd: work });
  const json = r.stdout.slice(r.stdout.indexOf('{'));
  const job = (JSON.parse(json) as { jobs: FioJob[] }).jobs[0]!;
  expect(job.error, r.stderr).toBe(0);
  return job;
}

describe('fio nbd engine', () => {
  beforeAll(async () => {
    work = tempDir();
    srv = await startServer({ luns: [{ name: 'disk', size: 128 * MiB }] });
  });
  afterAll(async () => {
    if (srv) {
      await srv.stop();
      rmrf(srv.dir);
    }
    rmrf(work);
  });

  it('4k random writes at QD16 with verify=crc32c', async () => {
    const job = await fio(['--name=rw4k', '--rw=randwrite', '--bs=4k', '--iodepth=16', '--size=48M', '--verify=crc32c', '--do_verify=1', '--randseed=1234']);
    expect(job.write.io_bytes).toBe(48 * MiB);
    expect(job.read.io_bytes).toBe(48 * MiB); // every block was read back and checked
    // a second process, a new connection: the same blocks verify again
    const again = await fio(['--name=rw4k', '--rw=randwrite', '--bs=4k', '--iodepth=16', '--size=48M', '--verify=crc32c', '--verify_only', '--randseed=1234']);
    expect(again.read.io_bytes).toBe(48 * MiB);
  });

  it('mixed block sizes 4k..1M at QD8 with verify=crc32c, at an offset', async () => {
    const job = await fio(['--name=mixed', '--rw=randwrite', '--bsrange=4k-1m', '--bs_unaligned=0', '--iodepth=8', '--offset=64M', '--size=64M',
      '--verify=crc32c', '--do_verify=1', '--randseed=99', '--norandommap=0']);
    expect(job.write.io_bytes).toBeGreaterThan(0);
    expect(job.read.io_bytes).toBeGreaterThan(0);
  });

  it('sequential 256k writes with FUA-style sync (fsync every 16 writes) and verify', async () => {
    const job = await fio(['--name=seq', '--rw=write', '--bs=256k', '--iodepth=4', '--size=32M', '--fsync=16', '--verify=crc32c', '--do_verify=1']);
    expect(job.write.io_bytes).toBe(32 * MiB);
    expect(job.read.io_bytes).toBe(32 * MiB);
  });

  it('verification really fails when the data is changed behind fio', async () => {
    // overwrite part of the 4k region, then verify-only must fail
    await mustRun('qemu-io', ['-f', 'raw', srv.uri('disk'), '-c', 'write -P 0x00 0 1M'], { server: srv });
    await expect(fio(['--name=rw4k', '--rw=randwrite', '--bs=4k', '--iodepth=16', '--size=48M', '--verify=crc32c', '--verify_only', '--randseed=1234']))
      .rejects.toThrow(/verify: bad|bad header|crc32c: wanted|verify failed/i);
  });
});
