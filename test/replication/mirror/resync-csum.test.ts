// Checksum-based resync (src/replication/mirror/resync-csum.ts): the primary compares hashes of
// each piece with the secondary and sends only what differs. Real arrays, real image files,
// compared byte for byte at the end.
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { openSync, writeSync, closeSync, readSync } from 'node:fs';
import { ControlServer } from '../../../src/control/index.js';
import { makeLab, until, type Lab } from '../../support/mirror-lab.js';
import { captureCli } from '../../support/cli.js';
import { differingBlocks, imageFile } from '../../support/image-files.js';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
let lab: Lab | null = null;
let api: ControlServer | null = null;
afterEach(async () => {
  await api?.close();
  api = null;
  await lab?.close();
  lab = null;
});

const img = (l: Lab) => l.node('alpha').get('m0').images.find((i) => i.imageId === 'bravo:0')!;
const resyncDone = (l: Lab) => l.events('alpha', 'mirror.resync-done');

/** alpha -> bravo, synchronized, SIZE of random data written through the mirror (both images identical). */
async function identicalPair(opts: { latencyMs?: number; syncRate?: number } = {}): Promise<Lab> {
  const l = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: SIZE }], { latencyMs: opts.latencyMs });
  const n = l.node('alpha');
  await n.create({ lun: 'disk0', name: 'm0', attributes: opts.syncRate ? { syncRate: opts.syncRate } : {} });
  await n.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
  await until(() => img(l).link === 'connected', 10_000, 'link up');
  const dev = l.hostDevice('alpha');
  for (let off = 0; off < SIZE; off += MiB) await dev.write(off, randomBytes(MiB));
  expect(differingBlocks(imageFile(l.sites.alpha!.dir), imageFile(l.sites.bravo!.dir))).toBe(0);
  return l;
}

/** Changes bytes of bravo's image file behind the mirror's back. */
function scribble(l: Lab, offset: number, data: Buffer): void {
  const fd = openSync(imageFile(l.sites.bravo!.dir), 'r+');
  writeSync(fd, data, 0, data.length, offset);
  closeSync(fd);
}

function byteAt(path: string, offset: number): number {
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, offset);
  closeSync(fd);
  return b[0]!;
}

async function fullChecksumSync(l: Lab): Promise<Record<string, unknown>> {
  const before = resyncDone(l).length;
  await l.node('alpha').synchronize('m0', 'bravo:0', { full: true, checksum: true });
  await until(() => resyncDone(l).length > before, 30_000, 'resync done');
  return resyncDone(l).at(-1)!;
}

describe('checksum resync', () => {
  it('sync --checksum --full of a fractured secondary that is identical already sends no data (CLI)', async () => {
    lab = await identicalPair();
    const n = lab.node('alpha');
    await n.fracture('m0');
    api = new ControlServer({ array: lab.sites.alpha!.running!.array, mirrors: n });
    const url = (await api.listen()).url;
    const linkBytesNow = () => Object.values(lab!.links['alpha-bravo']!.status().totals.bytes as Record<string, number>).reduce((x, y) => x + y, 0);
    const linkBefore = linkBytesNow();
    const c = await captureCli(['mirror', 'sync', 'm0', '--checksum', '--full', '--api', url], { SANBOX_LAB: undefined, SANBOX_API: undefined });
    expect(c.code, c.out + c.err).toBe(0);
    await until(() => resyncDone(lab!).length > 0, 30_000, 'resync done');
    const done = resyncDone(lab)[0]!;
    expect(done).toMatchObject({ full: true, checksums: 'always', bytesSent: 0, bytesCopied: 0, bytesCompared: SIZE });
    expect(done.chunksSkipped as number).toBeGreaterThanOrEqual(SIZE / MiB);
    // the hashes of 16 chunks and the requests: a few KiB, against 16 MiB for a copy
    const linkBytes = linkBytesNow() - linkBefore;
    expect(linkBytes).toBeLessThan(64 * 1024);
    expect(differingBlocks(imageFile(lab.sites.alpha!.dir), imageFile(lab.sites.bravo!.dir))).toBe(0);
    const st = await captureCli(['mirror', 'status', 'm0', '--api', url], { SANBOX_LAB: undefined, SANBOX_API: undefined });
    expect(st.out).toMatch(/checksums auto/);
  });

  it('a chunk that differs only in its last byte is sent (one 4 KiB piece), and the images end identical', async () => {
    lab = await identicalPair();
    const off = 5 * MiB + 7 * 4096 + 4095; // the last byte of a 4 KiB piece inside a 1 MiB chunk
    const a = imageFile(lab.sites.alpha!.dir);
    const b = imageFile(lab.sites.bravo!.dir);
    scribble(lab, off, Buffer.from([byteAt(b, off) ^ 0xff]));
    // and the very last byte of the image
    scribble(lab, SIZE - 1, Buffer.from([byteAt(b, SIZE - 1) ^ 0x01]));
    expect(differingBlocks(a, b)).toBe(2);
    await lab.node('alpha').fracture('m0');
    const done = await fullChecksumSync(lab);
    expect(done).toMatchObject({ checksums: 'always', bytesSent: 2 * 4096, bytesCompared: SIZE });
    expect(differingBlocks(a, b)).toBe(0);
    expect(byteAt(a, off)).toBe(byteAt(b, off));
  });

  it('a host writer during a checksum resync loses nothing: images identical once it stopped and the resync is done', async () => {
    lab = await identicalPair({ latencyMs: 2, syncRate: 1024 * 1024 });
    // 512 scattered 4 KiB pieces differ on the secondary: 2 MiB at 1 MiB/s, about 2 s of resync
    for (let i = 0; i < 512; i++) scribble(lab, i * 32 * 1024 + (i % 8) * 4096, randomBytes(4096));
    const n = lab.node('alpha');
    await n.fracture('m0');
    const dev = lab.hostDevice('alpha');
    let stop = false;
    let writes = 0;
    const writer = async (seed: number) => {
      let x = seed;
      while (!stop) {
        x = (x * 1103515245 + 12345) >>> 0;
        const len = 4096 * (1 + (x % 4));
        const off = Math.min(SIZE - len, (x % (SIZE / 4096)) * 4096);
        await dev.write(off, randomBytes(len));
        writes++;
        await new Promise((r) => setTimeout(r, 2));
      }
    };
    const writers = [writer(1), writer(2), writer(3)];
    const done = await fullChecksumSync(lab);
    stop = true;
    await Promise.all(writers);
    expect(writes).toBeGreaterThan(50);
    expect(done.checksums).toBe('always');
    expect(done.bytesSent as number).toBeGreaterThanOrEqual(512 * 4096 * 0.5);
    // writes that landed in chunks being compared left them marked: a later pass or resync takes them
    await until(() => img(lab!).state !== 'SYNCHRONIZING' && img(lab!).fractureLog?.regions === 0 && !img(lab!).resync, 30_000, 'fracture log empty');
    expect(differingBlocks(imageFile(lab.sites.alpha!.dir), imageFile(lab.sites.bravo!.dir))).toBe(0);
  });

  it('resyncChecksums: auto copies fracture-log regions, always (per image) compares them; invalid values refused', async () => {
    lab = await identicalPair();
    const n = lab.node('alpha');
    const dev = lab.hostDevice('alpha');
    const round = async () => {
      const before = resyncDone(lab!).length;
      await n.fracture('m0');
      for (let i = 0; i < 4; i++) await dev.write(i * 2 * MiB, randomBytes(4096));
      await n.synchronize('m0');
      await until(() => resyncDone(lab!).length > before, 30_000, 'resync done');
      return resyncDone(lab!).at(-1)!;
    };
    // the default: fracture-log regions are known to differ, copied whole (4 regions of 64 KiB)
    expect(await round()).toMatchObject({ checksums: 'auto', bytesCompared: 0, bytesSent: 4 * 65536 });
    await n.setAttributes('m0', { image: 'bravo', imageResyncChecksums: 'always' });
    expect(n.get('m0').record.images.find((i) => i.imageId === 'bravo:0')!.resyncChecksums).toBe('always');
    expect(await round()).toMatchObject({ checksums: 'always', bytesCompared: 4 * 65536, bytesSent: 4 * 4096 });
    await n.setAttributes('m0', { image: 'bravo', imageResyncChecksums: null });
    await n.setAttributes('m0', { resyncChecksums: 'never' });
    expect(n.get('m0').record.resyncChecksums).toBe('never');
    expect(await round()).toMatchObject({ checksums: 'never', bytesSent: 4 * 65536 });
    await expect(n.setAttributes('m0', { resyncChecksums: 'sometimes' as never })).rejects.toThrow(/resyncChecksums/);
    expect(differingBlocks(imageFile(lab.sites.alpha!.dir), imageFile(lab.sites.bravo!.dir))).toBe(0);
  });

  it('online verify under a writer: zero false positives', async () => {
    lab = await identicalPair();
    const n = lab.node('alpha');
    const dev = lab.hostDevice('alpha');
    let stop = false;
    const writer = (async () => {
      let i = 0;
      while (!stop) await dev.write(((i++ * 7919) % (SIZE / 65536)) * 65536, randomBytes(65536));
    })();
    for (let k = 0; k < 3; k++) {
      const r = await n.verify('m0');
      expect(r.mismatched).toEqual([]);
      expect(r.result).not.toBe('different');
    }
    stop = true;
    await writer;
  });
});
