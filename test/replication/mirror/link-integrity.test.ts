// Issue 19, item 3, end to end: a man in the middle of the remote link (between the link emulator
// and bravo's remote-link port) flips one bit of a replicated host write. The secondary must
// refuse the frame, the bad data must never land in its image, and the mirror must repair the
// region through its fracture log (the correct data reaches bravo by the resync).
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, makeLab, until, type Lab } from '../../support/mirror-lab.js';
import { fixCrcs, FrameProxy, HEADER } from '../../link/protocol/mitm.js';

const MiB = 1024 * 1024;
let lab: Lab | null = null;
let proxy: FrameProxy | null = null;
afterEach(async () => {
  await lab?.close();
  await proxy?.close();
  lab = null;
  proxy = null;
});

const imageState = (l: Lab, m: string) => l.node('alpha').get(m).record.images.find((i) => i.imageId === 'bravo:0');
const inSync = (l: Lab) => ['CONSISTENT', 'SYNCHRONIZED'].includes(imageState(l, 'm0')?.state as string) && !imageState(l, 'm0')?.fractured && l.node('alpha').get('m0').images[1]!.link === 'connected';

describe('remote link integrity between real arrays', () => {
  it('a bit flipped in a replicated write on the path: bravo refuses it, the bad data never lands, the resync repairs the region', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }], { timers: { reconnectMaxMs: 300 } });
    // put the attacker between the emulator and bravo: bravo moves to another port, the proxy
    // takes over the one the emulator forwards to
    const emulatorTarget = lab.sites.bravo!.linkPort;
    await lab.stop('bravo');
    const bravoPort = await freePort();
    lab.sites.bravo!.cfg.remoteLink!.port = bravoPort;
    proxy = new FrameProxy(bravoPort);
    await proxy.listen(emulatorTarget);
    await lab.start('bravo');

    const X = 5 * MiB;
    const good = Buffer.alloc(4096, 0x5a);
    let flipped = 0;
    proxy.rewrite = (f, dir) => {
      const args = f.json.args as { offset?: number } | undefined;
      if (dir !== 'c2s' || f.json.op !== 'write' || args?.offset !== X || flipped++) return [f.bytes];
      const b = Buffer.from(f.bytes);
      b[HEADER + f.jsonLen + 1000]! ^= 0x01;
      return [fixCrcs(b)];
    };

    await lab.node('alpha').create({ lun: 'disk0', name: 'm0' });
    await lab.node('alpha').addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(() => inSync(lab!), 20_000, 'mirror in sync');
    const dev = lab.hostDevice('alpha');
    await dev.write(0, Buffer.alloc(4096, 0x11)); // an untouched write crosses
    const bravoDisk = lab.sites.bravo!.running!.array.device('disk0')!;
    expect((await bravoDisk.read(0, 4096)).equals(Buffer.alloc(4096, 0x11))).toBe(true);

    // the host write is acknowledged (the primary keeps serving; the secondary is fractured)
    await dev.write(X, good);
    expect(flipped).toBe(1);
    await until(() => lab!.events('bravo', 'mirror.link-refused').some((e) => e.code === 'bad-mac'), 10_000, 'bravo refuses the frame');
    expect(lab.events('alpha', 'mirror.remote-write-failed').some((e) => e.code === 'bad-mac')).toBe(true);
    const bad = Buffer.from(good);
    bad[1000]! ^= 0x01;
    expect((await bravoDisk.read(X, 4096)).equals(bad)).toBe(false);

    // the fracture log brings the right data over the new session
    await until(() => inSync(lab!) && (lab!.node('alpha').get('m0').images[1]!.fractureLog?.regions ?? 0) === 0, 20_000, 'resynchronized');
    expect((await bravoDisk.read(X, 4096)).equals(good)).toBe(true);
    const v = await lab.node('alpha').verify('m0');
    expect(v.identical).toBe(true);
  });
});
