// qemu-img: convert a random image into an export and back out with equal
// checksums; `qemu-img map` shows holes for never-written and trimmed ranges
// and data for written ones (block status is truthful).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { KiB, MiB, makeMixedImage, mustRun, rmrf, sha256, sha256File, startServer, tempDir, type NbdServer } from './harness.js';

const SIZE = 48 * MiB;
let srv: NbdServer;
let work: string;

interface MapEntry { start: number; length: number; zero: boolean; data: boolean; present?: boolean }

async function map(name: string): Promise<MapEntry[]> {
  const r = await mustRun('qemu-img', ['map', '--output=json', '-f', 'raw', srv.uri(name)], { server: srv });
  const entries = JSON.parse(r.stdout) as MapEntry[];
  // the map must tile the whole export
  let pos = 0;
  for (const e of entries) {
    expect(e.start, `map not contiguous: ${r.stdout}`).toBe(pos);
    pos += e.length;
  }
  expect(pos).toBe(SIZE);
  return entries;
}

/** Every byte of [off, off+len) is reported with data === want. */
function expectRange(entries: MapEntry[], off: number, len: number, want: boolean, what: string) {
  for (const e of entries) {
    const s = Math.max(off, e.start);
    const end = Math.min(off + len, e.start + e.length);
    if (s < end && e.data !== want) {
      throw new Error(`${what}: [${off}, ${off + len}) expected data=${want}, but map says ${JSON.stringify(e)}\nfull map: ${JSON.stringify(entries)}`);
    }
  }
}

describe('qemu-img', () => {
  beforeAll(async () => {
    work = tempDir();
    srv = await startServer({ luns: [{ name: 'disk', size: SIZE }, { name: 'sparse', size: SIZE }] });
  });
  afterAll(async () => {
    if (srv) {
      await srv.stop();
      rmrf(srv.dir);
    }
    rmrf(work);
  });

  it('convert a random image in and out: checksums equal', async () => {
    const src = join(work, 'src.img');
    const srcBuf = makeMixedImage(src, SIZE);
    await mustRun('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, srv.uri('disk')], { server: srv, timeoutMs: 120_000 });
    const dst = join(work, 'dst.img');
    await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', srv.uri('disk'), dst], { server: srv, timeoutMs: 120_000 });
    expect(sha256File(dst)).toBe(sha256(srcBuf));
    // and qemu-img's own comparison, straight against the export
    await mustRun('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, srv.uri('disk')], { server: srv });
  });

  it('convert with --target-image-opts, out-of-order writes (-W -m 8)', async () => {
    const src = join(work, 'src2.img');
    const srcBuf = makeMixedImage(src, SIZE, 256 * KiB);
    await mustRun(
      'qemu-img',
      ['convert', '-n', '-W', '-m', '8', '-f', 'raw', '--target-image-opts', src,
        `driver=raw,file.driver=nbd,file.host=${srv.host},file.port=${srv.port},file.export=disk`],
      { server: srv, timeoutMs: 120_000 },
    );
    const dst = join(work, 'dst2.img');
    await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', srv.uri('disk'), dst], { server: srv, timeoutMs: 120_000 });
    expect(readFileSync(dst).equals(srcBuf)).toBe(true);
  });

  it('map: never-written ranges are holes, written ranges data, trimmed ranges holes again', async () => {
    // fresh export: all hole
    let m = await map('sparse');
    expectRange(m, 0, SIZE, false, 'fresh export');
    expect(m.every((e) => e.zero), `fresh export should read as zero: ${JSON.stringify(m)}`).toBe(true);

    await mustRun('qemu-io', ['-f', 'raw', srv.uri('sparse'),
      '-c', `write -P 0x5a ${4 * MiB} ${1 * MiB}`,
      '-c', `write -P 0x5b ${16 * MiB} ${4 * MiB}`,
      '-c', `write -P 0x5c ${SIZE - 64 * KiB} ${64 * KiB}`,
      '-c', 'flush'], { server: srv });
    m = await map('sparse');
    expectRange(m, 4 * MiB, 1 * MiB, true, 'written 1 MiB');
    expectRange(m, 16 * MiB, 4 * MiB, true, 'written 4 MiB');
    expectRange(m, SIZE - 64 * KiB, 64 * KiB, true, 'written tail');
    expectRange(m, 0, 3 * MiB, false, 'never written head');
    expectRange(m, 6 * MiB, 9 * MiB, false, 'never written middle');
    expectRange(m, 21 * MiB, SIZE - 22 * MiB, false, 'never written before tail');

    // trim the middle 2 MiB of the 4 MiB region (1 MiB aligned)
    await mustRun('qemu-io', ['-f', 'raw', srv.uri('sparse'), '-c', `discard ${17 * MiB} ${2 * MiB}`, '-c', 'flush'], { server: srv });
    m = await map('sparse');
    expectRange(m, 16 * MiB, 1 * MiB, true, 'data before the trimmed range');
    expectRange(m, 17 * MiB, 2 * MiB, false, 'trimmed range');
    expectRange(m, 19 * MiB, 1 * MiB, true, 'data after the trimmed range');
    expectRange(m, 4 * MiB, 1 * MiB, true, 'untouched written 1 MiB');

    // where the map says zero, the data must be zero
    const dump = join(work, 'sparse.img');
    await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', srv.uri('sparse'), dump], { server: srv });
    const buf = readFileSync(dump);
    for (const e of m) {
      if (e.zero) {
        const slice = buf.subarray(e.start, e.start + e.length);
        expect(slice.every((b) => b === 0), `map says zero but data is not: ${JSON.stringify(e)}`).toBe(true);
      }
    }
    expect(buf.subarray(16 * MiB, 17 * MiB).every((b) => b === 0x5b)).toBe(true);
    expect(buf.subarray(19 * MiB, 20 * MiB).every((b) => b === 0x5b)).toBe(true);
  });

  it('convert out of a sparse export keeps it sparse in the map (holes are not materialised by reads)', async () => {
    const m = await map('sparse');
    expectRange(m, 0, 3 * MiB, false, 'never written head after reads');
    expectRange(m, 17 * MiB, 2 * MiB, false, 'trimmed range after reads');
  });
});
