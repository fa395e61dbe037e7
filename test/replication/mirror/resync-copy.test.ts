// A plain resync of scattered regions (src/replication/mirror/resync-copy.ts): chunks of scattered
// dirty regions go several to one write of extents, zeroed regions as zero requests, and the
// secondary ends identical. Real arrays, real image files, compared byte for byte.
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { makeLab, until, type Lab } from '../../support/mirror-lab.js';
import { differingBlocks, imageFile } from '../../support/image-files.js';

const MiB = 1024 * 1024;
const REGION = 64 * 1024;
let lab: Lab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});

describe('resync of scattered regions', () => {
  for (const [controller, mostWrites] of [
    ['fixed', 24], // 256 regions of 64 KiB: about 16 chunk-sized writes (one per region without batching)
    ['adaptive', 128], // two regions a write on average at least: the window starts small (its first pieces carry one)
  ] as const) {
    it(`${controller}: scattered regions go several to a write, zeroed ones as zero requests; the images end identical`, async () => {
      lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 32 * MiB }]);
      const n = lab.node('alpha');
      await n.create({ lun: 'disk0', name: 'm0', attributes: { syncController: controller } });
      await n.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
      await until(() => n.get('m0').images[1]!.link === 'connected', 10_000, 'link');
      const dev = lab.hostDevice('alpha');
      for (let r = 0; r < 4; r++) await dev.write((400 + 2 * r) * REGION, randomBytes(REGION));
      await until(() => differingBlocks(imageFile(lab!.sites.alpha!.dir), imageFile(lab!.sites.bravo!.dir)) === 0, 10_000, 'mirrored');
      await n.fracture('m0');
      for (let r = 0; r < 256; r++) await dev.write((2 * r + 1) * REGION, randomBytes(REGION)); // every odd region
      for (let r = 0; r < 4; r++) await dev.writeZeroes((400 + 2 * r) * REGION, REGION); // data the secondary has, zeroed here
      expect(differingBlocks(imageFile(lab.sites.alpha!.dir), imageFile(lab.sites.bravo!.dir))).toBeGreaterThan(0);
      await n.synchronize('m0');
      await until(() => lab!.events('alpha', 'mirror.resync-done').length > 0, 20_000, 'resync done');
      const done = lab.events('alpha', 'mirror.resync-done')[0]!;
      expect(done).toMatchObject({ bytesSent: 256 * REGION, bytesZeroed: 4 * REGION });
      expect(done.writesSent as number, `${done.writesSent} writes`).toBeGreaterThan(0);
      expect(done.writesSent as number, `${done.writesSent} writes`).toBeLessThanOrEqual(mostWrites);
      expect(differingBlocks(imageFile(lab.sites.alpha!.dir), imageFile(lab.sites.bravo!.dir))).toBe(0);
    });
  }
});
