// The armed freeze of a synchronous consistency group (docs/group.md#freeze), between real arrays
// over a real link emulator: when member m1's remote write fails (bravo's disk refuses it, or
// bravo drops m1's connection), every member stops sending host writes to bravo before m1's
// write is acknowledged, so a write the host makes to m2 after that ack never reaches bravo: the
// secondaries hold a prefix of the writes in the order the host made them. With `freeze: off`
// the same sequence leaves m2's write on bravo while m1's predecessor is missing.
import { describe, it, expect, afterEach } from 'vitest';
import type { GroupFreeze } from '../../../src/replication/group/index.js';
import { freePort, makeLab, until, type Lab } from '../../support/mirror-lab.js';
import { fixCrcs, FrameProxy } from '../../link/protocol/mitm.js';

const MiB = 1024 * 1024;
const BLOCK = 64 * 1024;
let lab: Lab | null = null;
let proxy: FrameProxy | null = null;
afterEach(async () => {
  await lab?.close();
  await proxy?.close();
  lab = null;
  proxy = null;
});

const LUNS = { m1: 'disk0', m2: 'disk1' } as const;
type Member = keyof typeof LUNS;

/** alpha and bravo, disk0/disk1 mirrored as m1/m2 (manual recovery: a fracture waits for `sync`), grouped as g0, synchronous. */
async function syncGroupLab(freeze: GroupFreeze, opts: { behindProxy?: boolean } = {}): Promise<Lab> {
  const l = await makeLab(['alpha', 'bravo'], [
    { name: 'disk0', size: 4 * MiB },
    { name: 'disk1', size: 4 * MiB },
  ], { timers: { reconnectMaxMs: 300 } });
  lab = l;
  if (opts.behindProxy) {
    // a man in the middle between the emulator and bravo's remote-link port (link-integrity.test.ts)
    const target = l.sites.bravo!.linkPort;
    await l.stop('bravo');
    const port = await freePort();
    l.sites.bravo!.cfg.remoteLink!.port = port;
    proxy = new FrameProxy(port);
    await proxy.listen(target);
    await l.start('bravo');
  }
  const n = l.node('alpha');
  for (const [m, lun] of Object.entries(LUNS)) {
    await n.create({ lun, name: m });
    await n.addSecondary(m, { array: 'bravo', lun, synchronized: true, recoveryPolicy: 'manual' });
  }
  await until(() => n.list().every((m) => m.images[1]!.link === 'connected'), 10_000, 'links');
  await n.groups.create({ name: 'g0', members: ['m1', 'm2'], attributes: { mode: 'synchronous', freeze } });
  return l;
}

/** The host's writes, one after the other (each issued after the previous one's ack), each a block of its own. */
class Writes {
  readonly done: Array<{ m: Member; offset: number; fill: number }> = [];
  constructor(private readonly l: Lab) {}
  async write(m: Member): Promise<void> {
    const i = this.done.length;
    const w = { m, offset: i * BLOCK, fill: 0x10 + i };
    await this.l.hostDevice('alpha', LUNS[m]).write(w.offset, Buffer.alloc(BLOCK, w.fill));
    this.done.push(w);
  }
  /** Which of the writes bravo's images hold, in the host's order. */
  async onBravo(): Promise<boolean[]> {
    const out: boolean[] = [];
    for (const w of this.done) out.push((await this.l.sites.bravo!.running!.array.device(LUNS[w.m])!.read(w.offset, BLOCK)).equals(Buffer.alloc(BLOCK, w.fill)));
    return out;
  }
}

/** true..true false..false: the secondaries are the group as of one point in the host's order. */
const isPrefix = (held: boolean[]) => held.indexOf(false) === -1 || held.slice(held.indexOf(false)).every((x) => !x);

const image = (l: Lab, m: Member) => l.node('alpha').get(m).record.images.find((i) => i.array === 'bravo')!;

/**
 * Two writes that land, then bravo's disk under m1 refuses writes, then m1, m2, m1, m2: m1's
 * first write is the one whose remote half fails; m2's next write is issued after its ack.
 */
async function rollingFailure(l: Lab): Promise<Writes> {
  const w = new Writes(l);
  await w.write('m1');
  await w.write('m2');
  expect(await w.onBravo()).toEqual([true, true]);
  await l.sites.bravo!.running!.diskFaults.set('disk0', { errors: ['write'] });
  await w.write('m1'); // acknowledged: the local half succeeded, bravo refused the remote half
  await w.write('m2');
  await w.write('m1');
  await w.write('m2');
  return w;
}

describe('armed freeze of a synchronous group', () => {
  it('armed: once m1\'s remote write failed, no write of m2 reaches bravo; the secondaries hold a prefix; the resync brings both back', async () => {
    const l = await syncGroupLab('armed');
    const w = await rollingFailure(l);
    const held = await w.onBravo();
    expect(held).toEqual([true, true, false, false, false, false]);
    expect(isPrefix(held)).toBe(true);

    const frozen = l.events('alpha', 'group.frozen');
    expect(frozen).toHaveLength(1);
    expect(frozen[0]).toMatchObject({ name: 'g0', array: 'bravo', member: 'm1', op: 'write', frozen: ['m2'] });
    await until(() => image(l, 'm1').fractured && image(l, 'm2').fractured, 5000, 'both members fractured');
    expect(image(l, 'm1').fractureReason).toBe('link');
    expect(image(l, 'm2').fractureReason).toBe('freeze');
    const m2id = l.node('alpha').get('m2').record.mirrorId;
    expect(l.events('alpha', 'mirror.image-fractured').some((e) => e.mirrorId === m2id && e.reason === 'freeze')).toBe(true);

    // manual recovery: both wait for the operator, reconnected; nothing reaches bravo meanwhile
    await until(() => l.node('alpha').list().every((m) => m.images[1]!.link === 'connected'), 10_000, 'reconnected');
    await w.write('m2');
    expect((await w.onBravo()).at(-1)).toBe(false);

    // the fault goes, the operator synchronizes: both secondaries catch up as after any fracture
    await l.sites.bravo!.running!.diskFaults.clear('disk0');
    for (const m of ['m1', 'm2'] as const) await l.node('alpha').synchronize(m);
    await until(async () => (await w.onBravo()).every(Boolean) && (['m1', 'm2'] as const).every((m) => ['CONSISTENT', 'SYNCHRONIZED'].includes(image(l, m).state as string) && !image(l, m).fractured), 20_000, 'resynchronized');
    // and the group replicates again
    await w.write('m2');
    expect((await w.onBravo()).every(Boolean)).toBe(true);
  }, 60_000);

  it('off: the same sequence leaves m2\'s later write on bravo while m1\'s earlier one is missing (not a point in time)', async () => {
    const l = await syncGroupLab('off');
    const w = await rollingFailure(l);
    const held = await w.onBravo();
    expect(held).toEqual([true, true, false, true, false, true]);
    expect(isPrefix(held)).toBe(false);
    expect(l.events('alpha', 'group.frozen')).toEqual([]);
    expect(image(l, 'm2').fractured).toBe(false);
  }, 60_000);

  it('armed: bravo drops m1\'s connection during its write (the link path): m2\'s next write does not reach bravo', async () => {
    const l = await syncGroupLab('armed', { behindProxy: true });
    const w = new Writes(l);
    await w.write('m1');
    await w.write('m2');
    // from now on, the next write to disk0 arrives with a bit flipped: bravo refuses the frame
    // and closes m1's connection (bad MAC); m2's connection is untouched
    const m1id = l.node('alpha').get('m1').record.mirrorId;
    let flipped = 0;
    proxy!.rewrite = (f, dir) => {
      const args = f.json.args as { mirrorId?: string } | undefined;
      if (dir !== 'c2s' || f.json.op !== 'write' || args?.mirrorId !== m1id || flipped++) return [f.bytes];
      const b = Buffer.from(f.bytes);
      b[b.length - 100]! ^= 0x01;
      return [fixCrcs(b)];
    };
    await w.write('m1');
    expect(flipped).toBe(1);
    await w.write('m2');
    expect(await w.onBravo()).toEqual([true, true, false, false]);
    const frozen = l.events('alpha', 'group.frozen');
    expect(frozen).toHaveLength(1);
    expect(frozen[0]).toMatchObject({ array: 'bravo', member: 'm1', frozen: ['m2'] });
    expect(frozen[0]!.op).toBe('link'); // the connection's close comes before the write's rejection
  }, 60_000);

  it('the attribute: armed or off (default off), refused otherwise, settable, kept in the record across a restart, accepted in any mode', async () => {
    const l = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 4 * MiB }], { timers: { reconnectMaxMs: 300 } });
    lab = l;
    const n = l.node('alpha');
    await n.create({ lun: 'disk0', name: 'm1' });
    await n.addSecondary('m1', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(() => n.get('m1').images[1]!.link === 'connected', 10_000, 'link');
    await expect(n.groups.create({ name: 'g0', members: ['m1'], attributes: { mode: 'synchronous', freeze: 'on' as GroupFreeze } })).rejects.toMatchObject({ code: 'invalid', message: expect.stringContaining('freeze must be armed or off') });
    expect(n.groups.list()).toEqual([]);
    // asynchronous: accepted (it acts once the group is synchronous)
    const v = await n.groups.create({ name: 'g0', members: ['m1'], attributes: { mode: 'asynchronous' } });
    expect(v.record.freeze).toBe('off');
    await expect(n.groups.setAttributes('g0', { freeze: true as unknown as GroupFreeze })).rejects.toMatchObject({ code: 'invalid' });
    expect((await n.groups.setAttributes('g0', { freeze: 'armed' })).record.freeze).toBe('armed');
    expect(n.groups.info('g0').text).toContain('\n  freeze:    armed (acts in synchronous mode; the group is asynchronous)\n');
    expect(l.events('alpha', 'group.attributes').at(-1)).toMatchObject({ changed: ['freeze'] });
    expect((await n.groups.setMode('g0', 'synchronous')).record.freeze).toBe('armed');
    expect(n.groups.info('g0').text).toMatch(/\n  freeze: +armed \(a member that stops replicating to an array stops every member's writes to it\)\n/);
    await until(() => l.node('bravo').groups.list()[0]?.record.freeze === 'armed', 5000, 'the secondary has the record');
    await l.stop('alpha');
    await l.start('alpha');
    expect(l.node('alpha').groups.get('g0').record).toMatchObject({ mode: 'synchronous', freeze: 'armed' });
  }, 60_000);
});
