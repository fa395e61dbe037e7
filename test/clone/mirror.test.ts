// The mirror driver's I/O on a LUN crosses its clone layer too (src/stack mirrorLunDevice): a
// clone still copying, made the primary of a mirror, synchronizes to its secondary on another
// array the clone's data (the regions not yet copied read from the clone's source).
import { afterEach, describe, expect, it } from 'vitest';
import { makeLab, until, type Lab } from '../support/mirror-lab.js';
import type { CloneView } from '../../src/clone/index.js';

const MiB = 1024 * 1024;
let lab: Lab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});

describe('a clone under a mirror', () => {
  it('a clone still copying synchronizes its full data to a secondary', async () => {
    lab = await makeLab(['alpha', 'bravo'], [
      { name: 'disk0', size: 8 * MiB },
      { name: 'spare', size: 8 * MiB },
    ]);
    const alpha = lab.sites.alpha!.running!;
    const data = Buffer.alloc(8 * MiB);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(Math.imul(i, 2654435761) >>> 0, i);
    await lab.hostDevice('alpha', 'disk0').write(0, data);
    await alpha.clones!.create('c1', 'disk0', { rateBytesPerSec: 256 * 1024 });
    await lab.hostDevice('alpha', 'disk0').write(0, Buffer.alloc(MiB, 0x99)); // after the clone's point in time
    const n = lab.node('alpha');
    await n.create({ lun: 'c1', name: 'm0' });
    await n.addSecondary('m0', { array: 'bravo', lun: 'spare' });
    await until(() => lab!.events('alpha', 'mirror.resync-done').length > 0, 20_000, 'the initial synchronization');
    const clone: CloneView = alpha.clones!.get('c1');
    expect(clone.state).toBe('copying');
    expect(clone.copiedBytes).toBeLessThan(4 * MiB);
    const bravo = lab.sites.bravo!.running!;
    const spare = bravo.array.device(bravo.array.getLunByName('spare')!.id)!;
    expect((await spare.read(0, 8 * MiB)).equals(data)).toBe(true);
    // Both guards hold on the clone LUN; the mirror's speaks first.
    await expect(alpha.array.deleteLun('c1')).rejects.toThrow(/cannot be deleted/);
  });
});
