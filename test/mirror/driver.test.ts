// The mirror driver between real arrays over real remote links (through link emulators).
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { makeLab, until, type Lab } from './harness.js';

const MiB = 1024 * 1024;
let lab: Lab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});

const imageState = (l: Lab, arr: string, m: string, img: string) => l.node(arr).get(m).record.images.find((i) => i.imageId === img);

async function mirrored(l: Lab, synchronized = false) {
  await l.node('alpha').create({ lun: 'disk0', name: 'm0' });
  await l.node('alpha').addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized });
  await until(() => ['CONSISTENT', 'SYNCHRONIZED'].includes(imageState(l, 'alpha', 'm0', 'bravo:0')?.state as string) && l.node('alpha').get('m0').images[1]!.link === 'connected', 20_000, 'initial sync');
}

async function sameBytes(l: Lab, size: number): Promise<boolean> {
  const a = await l.sites.alpha!.running!.array.device('disk0')!.read(0, size);
  const b = await l.sites.bravo!.running!.array.device('disk0')!.read(0, size);
  return a.equals(b);
}

describe('mirror driver, synchronous', () => {
  it('full sync copies only allocated data, then host writes reach the secondary before the ack', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }]);
    const dev = lab.hostDevice('alpha');
    await dev.write(3 * MiB, randomBytes(256 * 1024));
    await mirrored(lab);
    const done = lab.events('alpha', 'mirror.resync-done')[0]!;
    expect(done.full).toBe(true);
    expect(done.bytesCopied).toBe(256 * 1024);
    expect(await sameBytes(lab, 16 * MiB)).toBe(true);
    for (let i = 0; i < 50; i++) await dev.write(Math.floor(Math.random() * 4000) * 4096, randomBytes(4096));
    expect(await sameBytes(lab, 16 * MiB)).toBe(true);
    const v = await lab.node('alpha').verify('m0');
    expect(v.identical).toBe(true);
    // the secondary refuses host writes
    await expect(lab.hostDevice('bravo').write(0, Buffer.alloc(4096))).rejects.toThrow(/EPERM/);
    await expect(lab.hostDevice('bravo').read(0, 4096)).rejects.toThrow(/EPERM/);
  });

  it('link cut: writes mark the fracture log; restore resyncs exactly the dirty regions', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 64 * MiB }]);
    await mirrored(lab, true);
    const dev = lab.hostDevice('alpha');
    lab.links['alpha-bravo']!.cutLink('both', { reset: true });
    await dev.write(0, randomBytes(4096)); // fails remotely, fractures
    await until(() => imageState(lab!, "alpha", "m0", "bravo:0")?.reachability === "UNREACHABLE", 10_000, "unreachable").catch((e) => { console.log(JSON.stringify(lab!.events("alpha").filter((x) => String(x.type).startsWith("mirror")).map((x) => [x.type, x.imageId, x.why ?? x.error ?? x.reachability ?? x.to])), null, 0); throw e; });
    const regions = new Set<number>([0]);
    for (let i = 0; i < 40; i++) {
      const r = Math.floor(Math.random() * 1024);
      regions.add(r);
      await dev.write(r * 65536 + 4096, randomBytes(8192));
    }
    const view = lab.node('alpha').get('m0');
    expect(view.images[1]!.fractureLog!.regions).toBe(regions.size);
    lab.links['alpha-bravo']!.restore();
    await until(() => lab!.events('alpha', 'mirror.resync-done').length > 0, 20_000, 'resync');
    const done = lab.events('alpha', 'mirror.resync-done')[0]!;
    expect(done.full).toBe(false);
    expect(done.bytesDone).toBe(regions.size * 65536);
    expect(await sameBytes(lab, 64 * MiB)).toBe(true);
    await until(() => imageState(lab!, 'alpha', 'm0', 'bravo:0')?.state === 'SYNCHRONIZED', 10_000, 'quiesced');
  });
});
