// qemu-io against the server: patterned writes at many offsets and lengths,
// verified reads on fresh connections, aio, write-zeroes and discard. A final
// dump of the whole export (qemu-img convert) is compared with a model kept
// in memory, so a write landing in the wrong place is caught too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { KiB, MiB, mustRun, rmrf, startServer, tempDir, type NbdServer } from './harness.js';

const SIZE = 64 * MiB;
let srv: NbdServer;
let work: string;
const model = Buffer.alloc(SIZE);

async function qemuIo(cmds: string[], name = 'disk') {
  const r = await mustRun('qemu-io', ['-f', 'raw', srv.uri(name), ...cmds.flatMap((c) => ['-c', c])], {
    server: srv,
    timeoutMs: 60_000,
  });
  // qemu-io does not fail the exit status for aio pattern mismatches; catch them here.
  if (/fail|error/i.test(r.stdout + r.stderr)) {
    throw new Error(`qemu-io reported a failure\n$ ${r.cmd}\n${r.stdout}\n${r.stderr}\n--- server stderr ---\n${srv.stderr().slice(-4000)}`);
  }
  return r;
}

function hex(n: number) {
  return `0x${n.toString(16)}`;
}

const regions: Array<[number, number, number]> = [
  // pattern, offset, length
  [0xab, 0, 64 * KiB],
  [0x11, 64 * KiB + 512, 512], // one sector, not 4k aligned
  [0x22, 1 * MiB - 4 * KiB, 8 * KiB], // straddles a 1 MiB boundary
  [0x33, 2 * MiB, 3 * MiB], // multi-MiB
  [0x44, 8 * MiB, 40 * MiB], // larger than a 32 MiB request: the client splits it
  [0x55, SIZE - 4 * KiB, 4 * KiB], // last block of the export
  [0x66, 50 * MiB + 12 * KiB, 100 * KiB], // odd 4k-multiple length
];

describe('qemu-io', () => {
  beforeAll(async () => {
    work = tempDir();
    srv = await startServer({ luns: [{ name: 'disk', size: SIZE }] });
  });
  afterAll(async () => {
    if (srv) {
      await srv.stop();
      rmrf(srv.dir);
    }
    rmrf(work);
  });

  it('writes patterns at various offsets and lengths and reads them back on a new connection', async () => {
    await qemuIo(regions.map(([p, o, l]) => `write -P ${hex(p)} ${o} ${l}`));
    for (const [p, o, l] of regions) model.fill(p, o, o + l);
    await qemuIo(regions.map(([p, o, l]) => `read -P ${hex(p)} ${o} ${l}`));
    // never-written gaps read as zeros
    await qemuIo([`read -P 0 ${64 * KiB} 512`, `read -P 0 ${5 * MiB} ${3 * MiB}`, `read -P 0 ${48 * MiB} ${2 * MiB}`]);
  });

  it('overwrites inside an existing region without disturbing its neighbours', async () => {
    const o = 8 * MiB + 4 * KiB;
    await qemuIo([`write -P 0xcc ${o} 4096`, `write -P 0xcd ${o + 6 * KiB} 1024`]);
    model.fill(0xcc, o, o + 4096);
    model.fill(0xcd, o + 6 * KiB, o + 7 * KiB);
    await qemuIo([
      `read -P 0x44 ${8 * MiB} 4096`,
      `read -P 0xcc ${o} 4096`,
      `read -P 0x44 ${o + 4 * KiB} ${2 * KiB}`,
      `read -P 0xcd ${o + 6 * KiB} 1024`,
      `read -P 0x44 ${o + 7 * KiB} ${9 * KiB}`,
    ]);
  });

  it('detects a wrong pattern (the check itself can fail)', async () => {
    await expect(qemuIo([`read -P 0x12 0 4096`])).rejects.toThrow(/Pattern verification failed/);
  });

  it('aio: many writes in flight, flush, then many verified reads in flight', async () => {
    const base = 52 * MiB;
    const n = 64;
    const writes: string[] = [];
    const reads: string[] = [];
    for (let i = 0; i < n; i++) {
      const off = base + i * 12 * KiB; // 8k written, 4k gap
      const pat = (i * 7 + 1) & 0xff;
      writes.push(`aio_write -P ${hex(pat)} ${off} ${8 * KiB}`);
      reads.push(`aio_read -P ${hex(pat)} ${off} ${8 * KiB}`);
      model.fill(pat, off, off + 8 * KiB);
    }
    await qemuIo([...writes, 'aio_flush', 'flush']);
    await qemuIo([...reads, 'aio_flush']);
    await qemuIo([`read -P 0 ${base + 8 * KiB} ${4 * KiB}`]);
  });

  it('write -z zeroes data (with and without unmap) and leaves neighbours intact', async () => {
    const o = 2 * MiB; // inside the 0x33 region [2M, 5M)
    await qemuIo([`write -z ${o + 64 * KiB} ${256 * KiB}`, `write -z -u ${o + 1 * MiB} ${1 * MiB}`, `write -z ${o + 2 * MiB + 512} 1024`]);
    model.fill(0, o + 64 * KiB, o + 320 * KiB);
    model.fill(0, o + 1 * MiB, o + 2 * MiB);
    model.fill(0, o + 2 * MiB + 512, o + 2 * MiB + 1536);
    await qemuIo([
      `read -P 0x33 ${o} ${64 * KiB}`,
      `read -P 0 ${o + 64 * KiB} ${256 * KiB}`,
      `read -P 0x33 ${o + 320 * KiB} ${(1024 - 320) * KiB}`,
      `read -P 0 ${o + 1 * MiB} ${1 * MiB}`,
      `read -P 0x33 ${o + 2 * MiB} 512`,
      `read -P 0 ${o + 2 * MiB + 512} 1024`,
      `read -P 0x33 ${o + 2 * MiB + 1536} ${1 * MiB - 1536}`,
    ]);
  });

  it('discard succeeds, leaves neighbours intact, and the range reads as zeros or old data', async () => {
    const o = 8 * MiB + 16 * MiB; // inside the 0x44 region [8M, 48M)
    await qemuIo([`discard ${o} ${4 * MiB}`, 'flush']);
    await qemuIo([`read -P 0x44 ${o - 64 * KiB} ${64 * KiB}`, `read -P 0x44 ${o + 4 * MiB} ${64 * KiB}`]);
    // NBD allows any content after TRIM; a file-backed LUN that punches holes reads zeros.
    const out = join(work, 'after-discard.img');
    await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', srv.uri('disk'), out], { server: srv });
    const got = readFileSync(out).subarray(o, o + 4 * MiB);
    const allZero = got.every((b) => b === 0);
    const allOld = got.every((b) => b === 0x44);
    expect(allZero || allOld, 'discarded range is neither zeros nor the old data').toBe(true);
    if (allZero) model.fill(0, o, o + 4 * MiB);
  });

  it('the whole export equals the model (nothing landed in the wrong place)', async () => {
    const out = join(work, 'dump.img');
    await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', srv.uri('disk'), out], { server: srv });
    const got = readFileSync(out);
    expect(got.length).toBe(SIZE);
    if (!got.equals(model)) {
      let first = 0;
      while (first < SIZE && got[first] === model[first]) first++;
      throw new Error(`export differs from model; first difference at offset ${first}: got ${hex(got[first]!)} expected ${hex(model[first]!)}`);
    }
  });
});
