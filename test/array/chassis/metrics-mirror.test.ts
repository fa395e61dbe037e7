// GET /metrics of a two-SP array with a mirror driver (alpha: `sanbox array serve --config`,
// chassis + SP processes) mirrored to a single-process array (bravo): a host write through
// SP B of the primary image is counted on SP B, and the mirror's and image's state are there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NbdClient } from '../../../src/check/nbd-client/index.js';
import { makeLab, MiB, until, type MirrorSpLab } from '../../support/mirror-sp-lab.js';
import { requireBuild } from '../../support/paths.js';
import { sampleValue, samplesOf, scrape } from '../../support/prom-text.js';

requireBuild('control/api/metrics.js');

let lab: MirrorSpLab;
let url: string;
beforeAll(async () => {
  lab = await makeLab({ mode: 'child' });
  url = `${lab.child!.api}/metrics`;
  await lab.api('POST', '/v1/mirrors', { lun: 'disk0', name: 'm0', regionSize: 64 * 1024 });
  await lab.api('POST', '/v1/mirrors/m0/secondaries', { array: 'bravo', lun: 'disk0', synchronized: true });
}, 90_000);
afterAll(async () => lab?.close());

describe('GET /metrics of a two-SP array with a mirror', { timeout: 60_000 }, () => {
  it('counts a primary image\'s host writes on the receiving SP and shows the mirror', async () => {
    const image = { array: 'alpha', mirror: 'm0', image: 'bravo:0' };
    await until(async () => samplesOf(await scrape(url), 'sanbox_mirror_image_state', { ...image, state: 'SYNCHRONIZED' }).some((s) => s.value === 1), 30_000, 'm0 synchronized');
    const before = await scrape(url);
    const c = await NbdClient.connect(lab.uri('B'));
    await c.write(MiB, Buffer.alloc(128 * 1024, 0x5a));
    await c.close();
    const after = await scrape(url);
    const w = (f: typeof after, sp: string) => sampleValue(f, 'sanbox_lun_bytes_total', { array: 'alpha', sp, lun: 'disk0', op: 'write' });
    expect(w(after, 'B') - w(before, 'B')).toBe(128 * 1024);
    expect(w(after, 'A') - w(before, 'A')).toBe(0);
    expect(sampleValue(after, 'sanbox_mirror_state', { array: 'alpha', mirror: 'm0', state: 'ACTIVE' })).toBe(1);
    expect(sampleValue(after, 'sanbox_mirror_local_primary', { array: 'alpha', mirror: 'm0' })).toBe(1);
    expect(sampleValue(after, 'sanbox_mirror_image_reachable', image)).toBe(1);
    expect(sampleValue(after, 'sanbox_sp_state', { array: 'alpha', sp: 'B', state: 'up' })).toBe(1);
  });
});
