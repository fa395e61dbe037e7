// `verify` of a secondary that is not entirely comparable: while it is SYNCHRONIZING, or with
// regions its fracture log marks (skipped), the report is `incomplete` (not `identical`), says how
// many regions were skipped and why, and `sanbox mirror verify` exits 1 saying so.
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ControlServer } from '../../../src/control/index.js';
import { makeLab, until, type Lab } from '../../support/mirror-lab.js';
import { captureCli } from '../../support/cli.js';

const MiB = 1024 * 1024;
const REGION = 65536;
let lab: Lab | null = null;
let api: ControlServer | null = null;
afterEach(async () => {
  await api?.close();
  api = null;
  await lab?.close();
  lab = null;
});
const img = (l: Lab, id: string) => l.node('alpha').get('m0').images.find((i) => i.imageId === id)!;
const connected = (l: Lab) => img(l, 'bravo:0').link === 'connected';

/** The management API of alpha (the lab runs none), with its mirror driver. */
async function alphaApi(l: Lab): Promise<string> {
  api = new ControlServer({ array: l.sites.alpha!.running!.array, mirrors: l.node('alpha') });
  return (await api.listen()).url;
}
const cli = (args: string[]) => captureCli(args, { SANBOX_LAB: undefined, SANBOX_API: undefined });

describe('mirror verify: incomplete comparisons', () => {
  it('a secondary SYNCHRONIZING whose uncopied regions differ: incomplete with the skipped count, CLI exit 1', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }]);
    const n = lab.node('alpha');
    const dev = lab.hostDevice('alpha');
    for (let off = 0; off < 16 * MiB; off += MiB) await dev.write(off, randomBytes(MiB));
    await n.create({ lun: 'disk0', name: 'm0', attributes: { syncRate: 256 * 1024 } }); // 16 MiB at 256 KiB/s: over a minute
    await n.addSecondary('m0', { array: 'bravo', lun: 'disk0' });
    await until(() => connected(lab!) && img(lab!, 'bravo:0').state === 'SYNCHRONIZING', 10_000, 'resync running');
    const url = await alphaApi(lab);
    const c = await cli(['mirror', 'verify', 'm0', '--api', url]);
    expect(c.out).not.toMatch(/is identical/);
    expect(c.code, c.out + c.err).toBe(1);
    expect(c.out).toMatch(/mirror m0: bravo:0 INCOMPLETE: \d+ of 256 regions skipped .*image SYNCHRONIZING/);
    const j = await cli(['mirror', 'verify', 'm0', '--api', url, '--json']);
    expect(j.code).toBe(1);
    expect(j.json).toMatchObject({ result: 'incomplete', identical: false });

    const r = await n.verify('m0');
    expect(img(lab, 'bravo:0').state).toBe('SYNCHRONIZING');
    expect(r.skipped).toBeGreaterThan(0);
    expect(r).toMatchObject({ result: 'incomplete', identical: false, mismatched: [] });
    expect(r.incompleteReason).toMatch(new RegExp(`^${r.skipped} of 256 regions skipped .*image SYNCHRONIZING`));
  });

  it('a secondary SYNCHRONIZING with nothing skipped (both sides hold the same data) is still incomplete, not identical', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }]);
    const n = lab.node('alpha');
    // the same data on both LUNs before the mirror: every region compares equal, none is skipped
    const data = randomBytes(MiB);
    for (const arr of ['alpha', 'bravo']) for (let off = 0; off < 16 * MiB; off += MiB) await lab.hostDevice(arr).write(off, data);
    await n.create({ lun: 'disk0', name: 'm0', attributes: { syncRate: 256 * 1024 } });
    await n.addSecondary('m0', { array: 'bravo', lun: 'disk0' });
    await until(() => connected(lab!) && img(lab!, 'bravo:0').state === 'SYNCHRONIZING', 10_000, 'resync running');
    const r = await n.verify('m0');
    expect(img(lab, 'bravo:0').state).toBe('SYNCHRONIZING');
    expect(r).toMatchObject({ result: 'incomplete', identical: false, skipped: 0, mismatched: [], regionsCompared: 256 });
    expect(r.incompleteReason).toMatch(/image SYNCHRONIZING/);

    const c = await cli(['mirror', 'verify', 'm0', '--api', await alphaApi(lab)]);
    expect(c.code, c.out + c.err).toBe(1);
    expect(c.out).toMatch(/INCOMPLETE: .*image SYNCHRONIZING/);
  });

  it('a fractured secondary with regions in its fracture log: incomplete, the exact skipped count; after the resync identical', async () => {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 16 * MiB }]);
    const n = lab.node('alpha');
    await n.create({ lun: 'disk0', name: 'm0' });
    await n.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(() => connected(lab!), 10_000, 'link');
    await n.fracture('m0');
    const dev = lab.hostDevice('alpha');
    for (let r = 0; r < 5; r++) await dev.write(r * 2 * REGION, randomBytes(REGION)); // regions 0 2 4 6 8
    expect(img(lab, 'bravo:0').fractureLog!.regions).toBe(5);
    const url = await alphaApi(lab);
    const c = await cli(['mirror', 'verify', 'm0', '--api', url]);
    expect(c.out).not.toMatch(/is identical/);
    expect(c.code, c.out + c.err).toBe(1);
    expect(c.out).toMatch(/mirror m0: bravo:0 INCOMPLETE: 5 of 256 regions skipped \(marked in the fracture log: not copied to the image yet\)/);
    expect(c.out).toMatch(/251 regions \(15\.7 MiB\) compared in [\d.]+ s, 5 skipped/);

    const r = await n.verify('m0');
    expect(r).toMatchObject({ result: 'incomplete', identical: false, skipped: 5, regionsCompared: 251, bytesCompared: 16 * MiB - 5 * REGION, mismatched: [] });
    expect(r.incompleteReason).toBe('5 of 256 regions skipped (marked in the fracture log: not copied to the image yet)');

    await n.synchronize('m0');
    await until(() => lab!.events('alpha', 'mirror.resync-done').length > 0, 10_000, 'resync');
    const after = await n.verify('m0');
    expect(after).toMatchObject({ result: 'identical', identical: true, skipped: 0, regionsCompared: 256, bytesCompared: 16 * MiB });
    expect(after.incompleteReason).toBeUndefined();
    const ok = await cli(['mirror', 'verify', 'm0', '--api', url]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/mirror m0: bravo:0 is identical to the primary/);
  });
});
