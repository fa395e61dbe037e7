// Administrative operations and policies of the mirror driver between real arrays.
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { makeLab, until, type Lab } from '../../support/mirror-lab.js';

const MiB = 1024 * 1024;
let lab: Lab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});
const img = (l: Lab, arr: string, id: string) => l.node(arr).get('m0').images.find((i) => i.imageId === id)!;
const connected = (l: Lab, id: string) => img(l, 'alpha', id).link === 'connected';

describe('mirror administration', () => {
  it('create refuses the mirror names . and .. (invalid, nothing made); .hidden is a name', async () => {
    lab = await makeLab(['alpha'], [{ name: 'disk0', size: 4 * MiB }]);
    const n = lab.node('alpha');
    for (const name of ['.', '..']) await expect(n.create({ lun: 'disk0', name })).rejects.toMatchObject({ code: 'invalid', message: expect.stringContaining('(not . or ..)') });
    expect(n.list()).toEqual([]);
    expect((await n.create({ lun: 'disk0', name: '.hidden' })).record.name).toBe('.hidden');
  });

  it('three arrays: each secondary has its own state; cutting one link fractures only that one', async () => {
    lab = await makeLab(['alpha', 'bravo', 'charlie'], [{ name: 'disk0', size: 16 * MiB }]);
    const n = lab.node('alpha');
    await n.create({ lun: 'disk0', name: 'm0', attributes: { maxMissingImages: 0 } });
    await n.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
    await n.addSecondary('m0', { array: 'charlie', lun: 0, synchronized: true });
    await until(() => connected(lab!, 'bravo:0') && connected(lab!, 'charlie:0'), 10_000, 'links');
    expect(lab.node('charlie').get('m0').record.images.length).toBe(3);
    lab.links['alpha-charlie']!.cutLink('both', { reset: true });
    const dev = lab.hostDevice('alpha');
    await dev.write(0, randomBytes(65536));
    await until(() => img(lab!, 'alpha', 'charlie:0').reachability === 'UNREACHABLE', 10_000, 'charlie lost');
    // ATTENTION by the maximum-missing rule, and the host still writes
    expect(n.get('m0').record.state).toBe('ATTENTION');
    await dev.write(65536, randomBytes(65536));
    expect(img(lab, 'alpha', 'bravo:0').fractured).toBe(false);
    expect(img(lab, 'alpha', 'charlie:0').fractureLog!.regions).toBe(2);
    lab.links['alpha-charlie']!.restore();
    await until(() => n.get('m0').record.state === 'ACTIVE' && lab!.events('alpha', 'mirror.resync-done').length > 0, 20_000, 'charlie back');
    expect(lab.events('alpha', 'mirror.resync-done')[0]!.imageId).toBe('charlie:0');
    expect(lab.events('alpha', 'mirror.resync-done')[0]!.bytesDone).toBe(2 * 65536);
  });

  it('region map: the fracture log of a cut secondary and the write-intent log, bucket by bucket', async () => {
    lab = await makeLab(['alpha', 'bravo', 'charlie'], [{ name: 'disk0', size: 16 * MiB }]);
    const n = lab.node('alpha');
    await n.create({ lun: 'disk0', name: 'm0', regionSize: 65536, attributes: { maxMissingImages: -1 } });
    await n.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
    await n.addSecondary('m0', { array: 'charlie', lun: 'disk0', synchronized: true });
    await until(() => connected(lab!, 'bravo:0') && connected(lab!, 'charlie:0'), 10_000, 'links');
    lab.links['alpha-charlie']!.cutLink('both', { reset: true });
    const dev = lab.hostDevice('alpha');
    // 16 MiB in 16 buckets of 1 MiB (16 regions each): 4 regions of bucket 0, all of bucket 15
    await dev.write(0, randomBytes(4 * 65536));
    await until(() => img(lab!, 'alpha', 'charlie:0').fractured, 10_000, 'charlie fractured');
    await dev.write(15 * MiB, randomBytes(MiB));
    const map = n.regionMap('m0', 16);
    expect(map).toMatchObject({ mirror: 'm0', lunSize: 16 * MiB, bucketBytes: MiB });
    expect(map.writeIntentLog.regionSize).toBe(MiB); // write-intent extents, not the mirror's regions
    const charlieLog = map.images.find((i) => i.imageId === 'charlie:0')!.fractureLog!;
    expect(charlieLog.regionSize).toBe(65536);
    const charlie = charlieLog.shares;
    expect(charlie[15]).toBe(1);
    expect(charlie.slice(1, 15).every((x) => x === 0)).toBe(true);
    expect(charlie[0]).toBeGreaterThan(0);
    expect(map.images.find((i) => i.imageId === 'bravo:0')!.fractureLog!.shares.every((x) => x === 0)).toBe(true);
    expect(map.writeIntentLog.shares).toHaveLength(16);
    expect(map.images.map((i) => i.imageId).sort()).toEqual(['bravo:0', 'charlie:0']);
    // more buckets than write-intent extents: one extent (1 MiB) each, for every log alike;
    // the secondary has no map to give
    const fine = n.regionMap('m0', 1024);
    expect(fine.bucketBytes).toBe(MiB);
    expect(fine.images[0]!.fractureLog!.shares).toHaveLength(16);
    expect(() => lab!.node('bravo').regionMap('m0', 16)).toThrow(/primary/);
    expect(() => n.regionMap('m0', 0)).toThrow(RangeError);
  });

  it('manual recovery policy: a returning secondary waits for "synchronize"', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }]);
    const n = lab.node('alpha');
    await n.create({ lun: 'disk0', name: 'm0' });
    await n.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true, recoveryPolicy: 'manual' });
    await until(() => connected(lab!, 'bravo:0'), 10_000, 'link');
    lab.links['alpha-bravo']!.cutLink('both', { reset: true });
    await lab.hostDevice('alpha').write(0, randomBytes(4096));
    await until(() => img(lab!, 'alpha', 'bravo:0').reachability === 'UNREACHABLE', 10_000, 'lost');
    lab.links['alpha-bravo']!.restore();
    await until(() => img(lab!, 'alpha', 'bravo:0').reachability === 'REACHABLE', 10_000, 'back');
    await new Promise((r) => setTimeout(r, 300));
    expect(lab.events('alpha', 'mirror.awaiting-operator').length).toBeGreaterThan(0);
    expect(lab.events('alpha', 'mirror.resync-started').length).toBe(0);
    expect(img(lab, 'alpha', 'bravo:0').fractured).toBe(true);
    await n.synchronize('m0');
    await until(() => lab!.events('alpha', 'mirror.resync-done').length > 0, 10_000, 'resync');
    expect((await n.verify('m0')).identical).toBe(true);
  });

  it('admin fracture, throttled resync with progress, rate changed while it runs', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 32 * MiB }]);
    const n = lab.node('alpha');
    await n.create({ lun: 'disk0', name: 'm0', attributes: { syncRate: 2 * MiB } });
    await n.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(() => connected(lab!, 'bravo:0'), 10_000, 'link');
    await n.fracture('m0');
    expect(img(lab, 'alpha', 'bravo:0').fractureReason).toBe('admin');
    const dev = lab.hostDevice('alpha');
    for (let r = 0; r < 128; r++) await dev.write(r * 131072, randomBytes(65536)); // 8 MiB in 128 regions
    // no automatic resync after an admin fracture
    await new Promise((r) => setTimeout(r, 200));
    expect(lab.events('alpha', 'mirror.resync-started').length).toBe(0);
    const t0 = Date.now();
    await n.synchronize('m0');
    await until(() => lab!.events('alpha', 'mirror.resync-progress').length >= 2, 10_000, 'progress');
    const p = lab.events('alpha', 'mirror.resync-progress').at(-1)!;
    expect(p.bytesTotal).toBe(8 * MiB);
    expect(p.bytesDone as number).toBeLessThan(8 * MiB);
    expect(p.rate as number).toBeGreaterThan(0);
    expect(p.rate as number).toBeLessThan(4 * MiB); // throttled near 2 MiB/s
    expect(n.get('m0').images[1]!.resync!.eta).not.toBeNull();
    await n.setAttributes('m0', { syncRate: 256 * MiB });
    await until(() => lab!.events('alpha', 'mirror.resync-done').length > 0, 10_000, 'resync');
    expect(Date.now() - t0).toBeLessThan(3800); // 8 MiB at 2 MiB/s would take 4 s
    expect(lab.events('alpha', 'mirror.resync-done')[0]!.bytesDone).toBe(8 * MiB);
    expect((await n.verify('m0')).identical).toBe(true);
  });

  it('a stalled link times the remote write out: the host write still succeeds, the image is fractured', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }]);
    const n = lab.node('alpha');
    await n.create({ lun: 'disk0', name: 'm0' });
    await n.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(() => connected(lab!, 'bravo:0'), 10_000, 'link');
    lab.links['alpha-bravo']!.stall(60_000, 'a-to-b');
    const t = Date.now();
    await lab.hostDevice('alpha').write(0, randomBytes(4096));
    expect(Date.now() - t).toBeGreaterThanOrEqual(4000); // the remote write timeout (5 s)
    expect(img(lab, 'alpha', 'bravo:0').fractureLog!.regions).toBe(1);
    await until(() => img(lab!, 'alpha', 'bravo:0').reachability === 'UNREACHABLE', 5000, 'unreachable');
  });

  it('remove-secondary (graceful), deactivate, destroy: both sides forget the mirror', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }]);
    const n = lab.node('alpha');
    await n.create({ lun: 'disk0', name: 'm0' });
    await n.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(() => connected(lab!, 'bravo:0'), 10_000, 'link');
    await expect(n.destroy('m0')).rejects.toMatchObject({ code: 'has-secondaries' });
    await expect(lab.node('bravo').fracture('m0')).rejects.toMatchObject({ code: 'not-primary' });
    await n.removeSecondary('m0', 'bravo');
    await until(() => lab!.node('bravo').list().length === 0, 5000, 'bravo left');
    // bravo's LUN is an ordinary LUN again: host writes allowed
    await lab.hostDevice('bravo').write(0, Buffer.alloc(4096, 1));
    await expect(n.destroy('m0')).rejects.toMatchObject({ code: 'state' });
    await n.deactivate('m0');
    await n.destroy('m0');
    expect(n.list()).toEqual([]);
    await lab.sites.alpha!.running!.array.deleteLun('disk0');
  });
});
