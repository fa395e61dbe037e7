// GET /metrics of arrays with a mirror driver: two real arrays in this process joined by a real
// link emulator (test/support/mirror-lab), mirrors m-disk0 and m-disk1 in the asynchronous
// group g0. The API servers run on real sockets; the text is parsed by a strict parser. Host
// writes go through the LUN's host stack (what an NBD session writes to).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlServer } from '../../src/control/index.js';
import { groupLab, until, type Lab } from '../support/mirror-lab.js';
import { sampleValue, samplesOf, scrape } from '../support/prom-text.js';

let lab: Lab;
const servers: ControlServer[] = [];
const urls: Record<string, string> = {};

beforeAll(async () => {
  lab = await groupLab();
  for (const name of ['alpha', 'bravo']) {
    const r = lab.sites[name]!.running!;
    const srv = new ControlServer({ array: r.array, mirrors: r.mirrors });
    servers.push(srv);
    urls[name] = `${(await srv.listen()).url}/metrics`;
  }
}, 60_000);
afterAll(async () => {
  for (const s of servers) await s.close();
  await lab?.close();
});

describe('GET /metrics with mirrors and a consistency group', () => {
  it('has each mirror\'s state and each image\'s state and reachability, on both arrays', async () => {
    const a = await scrape(urls.alpha!);
    for (const mirror of ['m-disk0', 'm-disk1']) {
      expect(sampleValue(a, 'sanbox_mirror_state', { array: 'alpha', mirror, state: 'ACTIVE' })).toBe(1);
      expect(sampleValue(a, 'sanbox_mirror_local_primary', { array: 'alpha', mirror })).toBe(1);
      const states = samplesOf(a, 'sanbox_mirror_image_state', { array: 'alpha', mirror });
      // One series per image state, exactly one of them 1.
      expect(states).toHaveLength(4);
      expect(states.filter((s) => s.value === 1).map((s) => s.labels.state)).toEqual(['SYNCHRONIZED']);
      expect(states[0]!.labels.image).toMatch(/^bravo:/);
      expect(sampleValue(a, 'sanbox_mirror_image_reachable', { array: 'alpha', mirror, image: states[0]!.labels.image! })).toBe(1);
      expect(sampleValue(a, 'sanbox_mirror_image_fractured', { array: 'alpha', mirror, image: states[0]!.labels.image! })).toBe(0);
    }
    const b = await scrape(urls.bravo!);
    expect(sampleValue(b, 'sanbox_mirror_local_primary', { array: 'bravo', mirror: 'm-disk0' })).toBe(0);
    expect(sampleValue(b, 'sanbox_group_local_primary', { array: 'bravo', group: 'g0' })).toBe(0);
    expect(sampleValue(b, 'sanbox_group_receiver_next_expected', { array: 'bravo', group: 'g0' })).toBeGreaterThanOrEqual(1);
  });

  it('shows the backlog of a paused group grow with host writes, and drain once resumed', async () => {
    const n = lab.node('alpha');
    await n.groups.pause('g0', true);
    const before = await scrape(urls.alpha!);
    const g = { array: 'alpha', group: 'g0' };
    expect(sampleValue(before, 'sanbox_group_local_primary', g)).toBe(1);
    const dev = lab.hostDevice('alpha', 'disk0');
    for (let i = 0; i < 4; i++) await dev.write(i * 65536, Buffer.alloc(65536, i + 1));
    const paused = await scrape(urls.alpha!);
    expect(sampleValue(paused, 'sanbox_group_backlog_entries', g) - sampleValue(before, 'sanbox_group_backlog_entries', g)).toBe(4);
    expect(sampleValue(paused, 'sanbox_group_backlog_bytes', g) - sampleValue(before, 'sanbox_group_backlog_bytes', g)).toBeGreaterThanOrEqual(4 * 65536);
    expect(sampleValue(paused, 'sanbox_group_writelog_used_ratio', g)).toBeGreaterThan(0);
    expect(sampleValue(paused, 'sanbox_group_writelog_used_ratio', g)).toBeLessThanOrEqual(1);
    expect(sampleValue(paused, 'sanbox_group_oldest_entry_age_seconds', g)).toBeGreaterThanOrEqual(0);
    await n.groups.pause('g0', false);
    await until(async () => sampleValue(await scrape(urls.alpha!), 'sanbox_group_backlog_entries', g) === 0, 10_000, 'backlog drained');
    const drained = await scrape(urls.alpha!);
    expect(sampleValue(drained, 'sanbox_group_acked_through', g)).toBeGreaterThan(sampleValue(before, 'sanbox_group_acked_through', g));
    const b = await scrape(urls.bravo!);
    expect(sampleValue(b, 'sanbox_group_receiver_next_expected', { array: 'bravo', group: 'g0' })).toBe(sampleValue(drained, 'sanbox_group_acked_through', g) + 1);
  });
});
