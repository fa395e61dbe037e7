// The mirror driver between real arrays over real remote links (through link emulators).
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { makeLab, until, type Lab } from '../../support/mirror-lab.js';

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

describe('promote, failback, split brain', () => {
  it('promote the secondary, write, the old primary returns as a secondary with a partial resync', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 32 * MiB }]);
    await mirrored(lab, true);
    await lab.hostDevice('alpha').write(1 * MiB, randomBytes(64 * 1024));
    await lab.stop('alpha');
    // alpha is gone: it cannot step down first, so the promote is forced (issue 19, item 6)
    const v = await lab.node('bravo').promote('m0', { force: true });
    expect(v.local.role).toBe('primary');
    expect(v.record.epoch).toBe(2);
    const dev = lab.hostDevice('bravo');
    const regions = new Set<number>();
    for (let i = 0; i < 10; i++) {
      const r = 100 + i * 7;
      regions.add(r);
      await dev.write(r * 65536, randomBytes(65536));
    }
    await lab.start('alpha');
    await until(() => lab!.events('bravo', 'mirror.resync-done').length > 0, 20_000, 'failback resync').catch((e) => {
      for (const n of ['alpha', 'bravo']) console.log(n, JSON.stringify(lab!.events(n).filter((x) => String(x.type).startsWith('mirror')).map((x) => { const { seq, time, array, ...r } = x; return r; })));
      throw e;
    });
    const done = lab.events('bravo', 'mirror.resync-done')[0]!;
    expect(done.full).toBe(false);
    expect(done.bytesDone).toBe(regions.size * 65536);
    expect(lab.node('alpha').get('m0').local.role).toBe('secondary');
    expect(lab.events('alpha', 'mirror.demoted').length).toBe(1);
    await expect(lab.hostDevice('alpha').write(0, Buffer.alloc(4096))).rejects.toThrow(/EPERM/);
    expect(await sameBytes(lab, 32 * MiB)).toBe(true);
    expect((await lab.node('bravo').verify('m0')).identical).toBe(true);
  });

  it('a plain promote while the link is cut is refused (naming --force and the split brain); after the restore it demotes the old primary first', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }]);
    await mirrored(lab, true);
    const link = lab.links['alpha-bravo']!;
    link.cutLink('both'); // a black hole: the connections stay open, nothing crosses
    const aData = randomBytes(65536);
    await lab.hostDevice('alpha').write(7 * 65536, aData); // acknowledged on alpha only (fractured)
    // bravo's view of its primary follows the link, not the last record alpha sent
    await until(() => lab!.node('bravo').get('m0').images.find((i) => i.imageId === 'alpha:0')!.reachability === 'UNREACHABLE', 10_000, 'bravo sees alpha unreachable');
    const t0 = Date.now();
    await expect(lab.node('bravo').promote('m0')).rejects.toMatchObject({ code: 'unreachable', message: expect.stringMatching(/cannot be reached.*--force.*split brain.*acknowledged/s) });
    expect(Date.now() - t0).toBeLessThan(12_000);
    expect(lab.node('bravo').get('m0').local.role).toBe('secondary');
    expect(lab.node('alpha').get('m0').local.role).toBe('primary');
    await lab.hostDevice('alpha').write(8 * 65536, randomBytes(65536)); // alpha still takes writes
    await expect(lab.hostDevice('bravo').write(0, Buffer.alloc(4096))).rejects.toThrow(/EPERM/);
    link.restore();
    await until(() => {
      const b = imageState(lab!, 'alpha', 'm0', 'bravo:0');
      return b?.reachability === 'REACHABLE' && !b.fractured && ['CONSISTENT', 'SYNCHRONIZED'].includes(b.state as string) && lab!.node('alpha').get('m0').images[1]!.resync === null;
    }, 20_000, 'resync after restore');
    expect(lab.node('bravo').get('m0').images.find((i) => i.imageId === 'alpha:0')!.reachability).toBe('REACHABLE');
    const v = await lab.node('bravo').promote('m0');
    expect(v.local.role).toBe('primary');
    expect(lab.events('bravo', 'mirror.old-primary-stepped-down').length).toBe(1);
    // alpha stepped down before bravo became primary: demoted by the plain promote itself
    expect(lab.node('alpha').get('m0').local.role).toBe('secondary');
    expect(lab.events('alpha', 'mirror.demoted')[0]!.acknowledgedRegions).toBe(0);
    await expect(lab.hostDevice('alpha').write(0, Buffer.alloc(4096))).rejects.toThrow(/EPERM/);
    expect((await lab.sites.bravo!.running!.array.device('disk0')!.read(7 * 65536, 65536)).equals(aData)).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(lab.events('bravo', 'mirror.split-brain').length).toBe(0);
  });

  it('a plain promote of a secondary its reachable primary knows is behind (fractured) is refused: nothing acknowledged is dropped', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }]);
    await mirrored(lab, true);
    await lab.node('alpha').fracture('m0');
    const aData = randomBytes(65536);
    await lab.hostDevice('alpha').write(4 * 65536, aData); // acknowledged; only in alpha's fracture log
    await expect(lab.node('bravo').promote('m0')).rejects.toMatchObject({ code: 'inconsistent', message: expect.stringMatching(/fractured.*--force/s) });
    expect(lab.node('bravo').get('m0').local.role).toBe('secondary');
    expect(lab.node('alpha').get('m0').local.role).toBe('primary');
    await lab.node('alpha').synchronize('m0');
    await until(() => !imageState(lab!, 'alpha', 'm0', 'bravo:0')!.fractured && lab!.node('alpha').get('m0').images[1]!.resync === null && imageState(lab!, 'alpha', 'm0', 'bravo:0')!.state !== 'SYNCHRONIZING', 20_000, 'resync');
    await lab.node('bravo').promote('m0');
    expect(lab.node('alpha').get('m0').local.role).toBe('secondary');
    expect((await lab.sites.bravo!.running!.array.device('disk0')!.read(4 * 65536, 65536)).equals(aData)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(lab.events('bravo', 'mirror.split-brain').length).toBe(0);
  });

  it('split brain is detected, never resolved silently, and the operator picks the survivor', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 32 * MiB }]);
    await mirrored(lab, true);
    const link = lab.links['alpha-bravo']!;
    link.cutLink('both', { reset: true });
    const a = lab.hostDevice('alpha');
    const aData = randomBytes(65536);
    await a.write(10 * 65536, aData); // acknowledged on alpha only
    await until(() => imageState(lab!, 'alpha', 'm0', 'bravo:0')?.reachability === 'UNREACHABLE', 10_000, 'unreachable');
    await lab.node('bravo').promote('m0', { force: true });
    const bData = randomBytes(65536);
    await lab.hostDevice('bravo').write(20 * 65536, bData);
    link.restore();
    await until(() => lab!.events('bravo', 'mirror.split-brain').length > 0, 20_000, 'split brain');
    const sb = lab.events('bravo', 'mirror.split-brain')[0]!;
    expect(sb.remoteAcknowledgedRegions).toBe(1);
    expect(sb.localRegions).toBe(1);
    const view = lab.node('bravo').get('m0');
    expect(view.splitBrain).toBe(true);
    const sbv = view.images.find((i) => i.imageId === 'alpha:0')!.splitBrain!;
    // alpha's side: its acknowledged write, within its write-intent extent
    expect(sbv.remote.ranges.some(([o, l]) => o <= 10 * 65536 && 11 * 65536 <= o + l)).toBe(true);
    expect(sbv.local.ranges).toEqual([[20 * 65536, 65536]]);
    await new Promise((r) => setTimeout(r, 500));
    expect(lab.events('bravo', 'mirror.resync-started').length).toBe(0);
    await expect(lab.node('bravo').synchronize('m0', 'alpha')).rejects.toThrow(/split brain/);
    // alpha's divergent write is still there
    expect((await lab.sites.alpha!.running!.array.device('disk0')!.read(10 * 65536, 65536)).equals(aData)).toBe(true);
    await lab.node('bravo').resolveSplitBrain('m0', { survivor: 'bravo' });
    await until(() => lab!.events('bravo', 'mirror.resync-done').length > 0, 20_000, 'resync after resolve');
    expect(lab.events('bravo', 'mirror.resync-done')[0]!.bytesDone).toBe(sbv.local.bytes + sbv.remote.bytes);
    expect(await sameBytes(lab, 32 * MiB)).toBe(true);
  });

  it('resolving in favour of the old primary makes it primary again and copies its data back', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }]);
    await mirrored(lab, true);
    const link = lab.links['alpha-bravo']!;
    link.cutLink('both', { reset: true });
    const aData = randomBytes(65536);
    await lab.hostDevice('alpha').write(3 * 65536, aData);
    await until(() => imageState(lab!, 'alpha', 'm0', 'bravo:0')?.reachability === 'UNREACHABLE', 10_000, 'unreachable');
    await lab.node('bravo').promote('m0', { force: true });
    await lab.hostDevice('bravo').write(5 * 65536, randomBytes(65536));
    link.restore();
    await until(() => lab!.events('bravo', 'mirror.split-brain').length > 0, 20_000, 'split brain');
    await lab.node('bravo').resolveSplitBrain('m0', { survivor: 'alpha' });
    await until(() => lab!.events('alpha', 'mirror.resync-done').length > 0, 20_000, 'resync from alpha');
    expect(lab.node('alpha').get('m0').local.role).toBe('primary');
    expect(lab.node('alpha').get('m0').record.epoch).toBe(3);
    expect(lab.node('bravo').get('m0').local.role).toBe('secondary');
    expect(await sameBytes(lab, 16 * MiB)).toBe(true);
    expect((await lab.sites.bravo!.running!.array.device('disk0')!.read(3 * 65536, 65536)).equals(aData)).toBe(true);
  });
});

describe('refusals change nothing', () => {
  it('a secondary smaller than the primary is refused on both sides', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }]);
    await lab.sites.bravo!.running!.array.createLun({ name: 'small', size: 8 * MiB });
    await lab.node('alpha').create({ lun: 'disk0', name: 'm0' });
    await expect(lab.node('alpha').addSecondary('m0', { array: 'bravo', lun: 'small' })).rejects.toMatchObject({ code: 'size-mismatch' });
    expect(lab.node('alpha').get('m0').record.images.length).toBe(1);
    expect(lab.node('bravo').list()).toEqual([]);
  });

  it('a wrong secret is refused: no mirror on either side, no byte written', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }]);
    await lab.stop('alpha');
    lab.sites.alpha!.cfg.remoteLink!.peers[0]!.secret = 'not-the-secret';
    await lab.start('alpha');
    await lab.node('alpha').create({ lun: 'disk0', name: 'm0' });
    await expect(lab.node('alpha').addSecondary('m0', { array: 'bravo', lun: 'disk0' })).rejects.toMatchObject({ code: 'refused', message: /auth-failed/ });
    expect(lab.node('alpha').get('m0').record.images.length).toBe(1);
    expect(lab.node('bravo').list()).toEqual([]);
    await until(() => lab!.events('bravo', 'mirror.link-refused').length > 0, 5000, 'refusal event');
    expect(lab.events('bravo', 'mirror.link-refused')[0]).toMatchObject({ code: 'auth-failed' });
  });

  it('a LUN of a mirror cannot be deleted or grown', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }]);
    await mirrored(lab, true);
    await expect(lab.sites.alpha!.running!.array.deleteLun('disk0', { force: true })).rejects.toThrow(/mirror m0/);
    await expect(lab.sites.bravo!.running!.array.growLun('disk0', 32 * MiB)).rejects.toThrow(/mirror m0/);
  });
});
