// What the view of a real group says of a refresh that does not progress, and of the writelog
// chain its backlog percentage is taken of (the render functions: test/cli/group-render.test.ts).
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { groupLab, until, type Lab } from '../../support/mirror-lab.js';
import { groupText } from '../../../src/cli/group-render.js';

const MiB = 1024 * 1024;
let lab: Lab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});

describe('group view: why a refresh waits', () => {
  it('a throttle sleeps the sender: status and info name the sleep and the throttle', async () => {
    lab = await groupLab({ throttles: [{ measure: 'netkbps', op: 'ge', value: 0, actions: [{ do: 'sleep-set', ms: 215 }] }], throttleEveryMs: 100 });
    const n = lab.node('alpha');
    const d0 = lab.hostDevice('alpha', 'disk0');
    for (let i = 0; i < 16; i++) await d0.write(i * MiB, randomBytes(256 * 1024));
    await until(() => n.groups.get('g0').metrics!.senderSleepMs === 215, 5000, 'throttled');
    await n.groups.refresh('g0');
    await new Promise((r) => setTimeout(r, 300));
    const v = n.groups.get('g0');
    expect(v.record.refresh?.running).toBe(true);
    expect(v.throttledBy).toEqual({ throttle: 0, measure: 'netkbps', op: 'ge', value: 0 });
    expect(groupText(v)).toMatch(/\n {2}waiting +sender sleeping 215 ms per transmission \(throttle #0: netkbps >= 0\)/);
    expect(n.groups.info('g0').text).toMatch(/waiting: +the refresh waits: sender sleeping 215 ms per transmission \(throttle #0: netkbps >= 0\)/);
    // the throttles cleared: no sleep, nothing named
    await n.groups.setAttributes('g0', { throttles: [] });
    const after = n.groups.get('g0');
    expect(after.throttledBy).toBeNull();
    expect(groupText(after)).not.toMatch(/sender sleeping/);
  });

  it('the live writelog chain: an extension chained in counts in the size shown', async () => {
    lab = await groupLab({ writelog: { capacity: 1 * MiB, extensions: 2, extensionCapacity: 512 * 1024, extendAtPercent: 90 } });
    const n = lab.node('alpha');
    expect(n.groups.get('g0').writelog).toEqual({ capacity: 1 * MiB, extensionsInUse: 0, extensionsFree: 2 });
    await n.groups.pause('g0', true); // the backlog stays: the writelog fills and chains an extension in
    const d0 = lab.hostDevice('alpha', 'disk0');
    for (let i = 0; i < 24 && n.groups.get('g0').writelog!.extensionsInUse === 0; i++) await d0.write(i * 65536, randomBytes(65536));
    const v = n.groups.get('g0');
    expect(v.writelog!.extensionsInUse).toBe(1);
    expect(v.writelog!.capacity).toBe(1.5 * MiB);
    expect(groupText(v)).toMatch(/\(\d+\.\d% of the writelog: 1 MiB \+ 1 extension of 512 KiB = 1\.5 MiB\)/);
  });
});
