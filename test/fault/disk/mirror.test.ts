// A disk fault under a mirror: the secondary array's disk fails writes, so the primary's remote
// writes fail (the mirror driver's own I/O meets the fault layer too), the host's write still
// completes on the primary, and once the fault is cleared the secondary catches up to an equal
// image. Two single-process arrays joined by a link emulator, in this process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLab, until, type Lab } from '../../support/mirror-lab.js';

const SIZE = 4 * 1024 * 1024;
let lab: Lab;

beforeAll(async () => {
  lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: SIZE }]);
  await lab.node('alpha').create({ lun: 'disk0', name: 'm0' });
  await lab.node('alpha').addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
  await until(() => lab.node('alpha').get('m0').images[1]!.link === 'connected', 20_000, 'secondary connected');
}, 60_000);
afterAll(async () => {
  await lab?.close();
});

const image = (site: string) => lab.sites[site]!.running!.array.device('disk0')!.read(0, SIZE);

describe('disk fault on a secondary', () => {
  it('fails the remote writes, not the host write; after clear the secondary converges', async () => {
    const bravo = lab.sites.bravo!.running!;
    await bravo.diskFaults.set('disk0', { errors: ['write'], range: '0:64K' });
    const host = lab.hostDevice('alpha');
    await host.write(4096, Buffer.alloc(4096, 0xa5)); // completes: the local half succeeded
    await until(() => lab.events('alpha', 'mirror.remote-write-failed').length > 0, 10_000, 'the remote write failed');
    const during = (await bravo.diskFaults.show('disk0'))!;
    expect(during.counters.injected.write).toBeGreaterThanOrEqual(1);
    expect((await image('bravo')).subarray(4096, 8192).equals(Buffer.alloc(4096, 0xa5))).toBe(false);
    expect((await image('alpha')).subarray(4096, 8192).equals(Buffer.alloc(4096, 0xa5))).toBe(true);

    await bravo.diskFaults.clear('disk0');
    await until(async () => (await image('bravo')).equals(await image('alpha')), 30_000, 'the secondary converged after the fault was cleared');
  }, 60_000);
});
