// Mirroring of a two-SP array (alpha: chassis + SP processes A and B) with a single-process
// array (bravo): the mirror driver runs in alpha's chassis, host writes of a primary image reach
// it from either SP, the secondary side writes into the owner SP's mirrored cache, and a
// secondary image refuses host writes through both SPs.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { NbdClient } from '../../../src/check/nbd-client/index.js';
import { imageOf, makeLab, mirrorLun, MiB, until, type MirrorSpLab } from '../../support/mirror-sp-lab.js';

let lab: MirrorSpLab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});

/** Median latency (ms) of 200 sequential 4k writes over the first 1 MiB of the LUN (after 20 warm-up writes). */
async function qd1(uri: string): Promise<number> {
  const c = await NbdClient.connect(uri);
  const buf = randomBytes(4096);
  const t: number[] = [];
  for (let i = 0; i < 220; i++) {
    const t0 = performance.now();
    await c.write((i % 256) * 4096, buf);
    if (i >= 20) t.push(performance.now() - t0);
  }
  await c.close();
  t.sort((x, y) => x - y);
  return t[t.length >> 1]!;
}

async function nbdErrno(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return String((e as { errno?: string }).errno ?? (e as Error).message);
  }
}

describe('two-SP array mirrored to a single-process array', { timeout: 90_000 }, () => {
  it('writes through SP A (owner) and SP B (peer) reach bravo; the secondary image refuses host writes through both SPs', async () => {
    lab = await makeLab();
    const l = lab;
    const a = l.alphaNode();
    // data that predates the mirror: the initial (full) synchronization copies it through the owner's cache
    // QD1 4k write latency of a LUN that is no mirror image, through its owner SP (disk1: SP B)
    const unmirrored = await qd1(l.uri('B', 'disk1'));
    const early = await NbdClient.connect(l.uri('A'));
    const before = randomBytes(256 * 1024);
    await early.write(5 * MiB, before);
    await early.close();
    await mirrorLun(a, 'bravo', 'disk0', 'm0');
    const full = l.alphaEvents('mirror.resync-done')[0]!;
    expect(full.full).toBe(true);
    expect(full.bytesCopied).toBe(256 * 1024);
    expect((await l.bravo.array.device('disk0')!.read(5 * MiB, before.length)).equals(before)).toBe(true);

    // host writes through both SP ports (B forwards nothing: it hands them to the chassis)
    const ca = await NbdClient.connect(l.uri('A'));
    const cb = await NbdClient.connect(l.uri('B'));
    const written: Array<[number, Buffer]> = [];
    const t0 = performance.now();
    for (let i = 0; i < 64; i++) {
      const off = (i * 7919 % 8000) * 4096;
      const buf = randomBytes(4096);
      await (i % 2 ? cb : ca).write(off, buf);
      written.push([off, buf]);
    }
    console.log(`64 mirrored 4k writes through the SPs: ${((performance.now() - t0) / 64).toFixed(2)} ms each`);
    for (const [off, buf] of written) {
      expect((await l.bravo.array.device('disk0')!.read(off, 4096)).equals(buf), `bravo at ${off}`).toBe(true);
      expect((await cb.read(off, 4096)).equals(buf), `alpha via SP B at ${off}`).toBe(true);
    }
    await ca.flush();
    await cb.flush();
    const v = await a.verify('m0');
    expect(v.mismatched).toEqual([]);
    expect(v.identical).toBe(true);
    await ca.close();
    await cb.close();
    const mirrored = await qd1(l.uri('A'));
    const viaPeer = await qd1(l.uri('B'));
    console.log(`QD1 4k writes, median: unmirrored via the owner SP ${unmirrored.toFixed(3)} ms; mirrored via the owner SP A ${mirrored.toFixed(3)} ms, via SP B ${viaPeer.toFixed(3)} ms`);

    // trespass disk0 to SP B: the driver's local writes follow the owner
    await l.alpha!.chassis!.trespass('disk0', 'B');
    const cx = await NbdClient.connect(l.uri('A'));
    const moved = randomBytes(8192);
    await cx.write(7 * MiB, moved);
    await cx.close();
    expect((await l.bravo.array.device('disk0')!.read(7 * MiB, moved.length)).equals(moved)).toBe(true);
    expect((await a.verify('m0')).identical).toBe(true);

    // bravo:disk1 -> alpha:disk1 (alpha's disk1 is owned by SP B): alpha holds a secondary image
    const b = l.bravoNode();
    await mirrorLun(b, 'alpha', 'disk1', 'm1');
    await until(() => l.alpha!.chassis!.routeTable?.luns['1']?.mirror?.role === 'secondary', 5000, 'role pushed');
    for (const sp of ['A', 'B'] as const) {
      const c = await NbdClient.connect(l.uri(sp, 'disk1'));
      expect(await nbdErrno(c.write(0, Buffer.alloc(4096, 1))), `write via SP ${sp}`).toBe('EPERM');
      expect(await nbdErrno(c.read(0, 4096)), `read via SP ${sp}`).toBe('EPERM');
      await c.close();
    }
    // bravo's host writes land in alpha's SP cache (the owner's, mirrored to its peer)
    const data = randomBytes(64 * 1024);
    await l.bravo.array.catalog().lookup('disk1')!.device.write(3 * MiB, data);
    await b.setAttributes('m1', { allowSecondaryReads: true });
    await until(() => l.alpha!.chassis!.routeTable?.luns['1']?.mirror?.allowReads === true, 5000, 'allowReads pushed');
    for (const sp of ['A', 'B'] as const) {
      const c = await NbdClient.connect(l.uri(sp, 'disk1'));
      expect((await c.read(3 * MiB, data.length)).equals(data), `secondary read via SP ${sp}`).toBe(true);
      expect(await nbdErrno(c.write(0, Buffer.alloc(4096, 1))), `write via SP ${sp}`).toBe('EPERM');
      await c.close();
    }
    const st = (await l.alpha!.chassis!.status()) as { sps: Array<{ name: string; cache: { mode: string } }> };
    expect(st.sps.map((s) => s.cache.mode)).toEqual(['write-back', 'write-back']);
    expect(imageOf(b, 'm1', 'alpha:1')?.state).toMatch(/SYNCHRONIZED|CONSISTENT/);
  });
});
