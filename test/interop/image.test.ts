// The image file is the LUN: what a client writes over NBD is in the sparse
// image at the same offsets, never-written ranges take no space, and a trim
// gives the space back. `sanbox status --json` names every LUN's export, URI,
// size and image file, and those URIs work.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KiB, MiB, REPO, SERVER_KIND, mustRun, rmrf, startServer, type NbdServer } from './harness.js';

const SIZE = 64 * MiB;
let srv: NbdServer;

function readAt(path: string, off: number, len: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(len);
    let done = 0;
    while (done < len) {
      const n = readSync(fd, b, done, len - done, off + done);
      if (n === 0) break;
      done += n;
    }
    return b.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

const allocated = (path: string) => statSync(path).blocks * 512;

describe('image files', () => {
  beforeAll(async () => {
    srv = await startServer({ luns: [{ name: 'disk', size: SIZE }, { name: 'aux', size: 4 * MiB }] });
  });
  afterAll(async () => {
    if (srv) {
      await srv.stop();
      rmrf(srv.dir);
    }
  });

  it.skipIf(SERVER_KIND !== 'sanbox')('sanbox status --json lists every LUN with export, URI, size and image, and the URIs work', async () => {
    const url = await srv.apiUrl();
    expect(url, `no API URL in serve --json output:\n${srv.stdout()}`).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
    const r = await mustRun(process.execPath, [join(REPO, 'bin', 'sanbox.js'), 'status', '--json', '--api', url!], { server: srv });
    const st = JSON.parse(r.stdout) as { luns: Array<{ name: string; export: string; uris: string[]; size: number; image: string; state: string }> };
    const byName = Object.fromEntries(st.luns.map((l) => [l.name, l]));
    expect(Object.keys(byName).sort()).toEqual(['aux', 'disk']);
    for (const [name, size] of [['disk', SIZE], ['aux', 4 * MiB]] as const) {
      const l = byName[name]!;
      expect(l.export).toBe(name);
      expect(l.size).toBe(size);
      expect(l.state).toBe('online');
      expect(l.uris).toContain(srv.uri(name));
      expect(statSync(l.image).size).toBe(size);
      const info = await mustRun('nbdinfo', ['--size', l.uris[0]!], { server: srv });
      expect(info.stdout.trim()).toBe(String(size));
    }
  });

  it('writes over NBD land in the image at the same offsets; untouched ranges stay unallocated', async () => {
    const img = await srv.imagePath('disk');
    expect(statSync(img).size).toBe(SIZE);
    const before = allocated(img);
    expect(before, 'a fresh LUN image should be sparse').toBeLessThan(1 * MiB);
    await mustRun('qemu-io', ['-f', 'raw', srv.uri('disk'),
      '-c', `write -P 0x3c ${4 * MiB} ${2 * MiB}`,
      '-c', `write -P 0x3d ${40 * MiB + 512} ${3 * KiB}`,
      '-c', 'flush'], { server: srv });
    await srv.destaged();
    expect(readAt(img, 4 * MiB, 2 * MiB).every((b) => b === 0x3c)).toBe(true);
    expect(readAt(img, 40 * MiB + 512, 3 * KiB).every((b) => b === 0x3d)).toBe(true);
    expect(readAt(img, 40 * MiB, 512).every((b) => b === 0)).toBe(true);
    expect(readAt(img, 6 * MiB, 1 * MiB).every((b) => b === 0)).toBe(true);
    const after = allocated(img);
    expect(after - before).toBeGreaterThanOrEqual(2 * MiB);
    expect(after, 'writing 2 MiB + 3 KiB allocated far more than that').toBeLessThan(8 * MiB);
  });

  it('trim and write-zeroes with unmap give the space back', async () => {
    const img = await srv.imagePath('disk');
    const before = allocated(img);
    await mustRun('qemu-io', ['-f', 'raw', srv.uri('disk'), '-c', `discard ${4 * MiB} ${1 * MiB}`, '-c', `write -z -u ${5 * MiB} ${1 * MiB}`, '-c', 'flush'], { server: srv });
    await srv.destaged();
    const after = allocated(img);
    expect(before - after, `allocation ${before} -> ${after}`).toBeGreaterThanOrEqual(2 * MiB - 64 * KiB);
    expect(readAt(img, 5 * MiB, 1 * MiB).every((b) => b === 0)).toBe(true);
    expect(readAt(img, 40 * MiB + 512, 3 * KiB).every((b) => b === 0x3d)).toBe(true);
  });
});
