// Consistency-group operations between real arrays: refresh, backfresh, pause/resume, throttles
// converging the sender's rate, performance records, qdsinfo, delete.
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { groupLab, until, type Lab } from '../../support/mirror-lab.js';

const MiB = 1024 * 1024;
let lab: Lab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});


const read = (l: Lab, a: string, lun: string, size = 16 * MiB) => l.sites[a]!.running!.array.device(lun)!.read(0, size);

describe('consistency group operations', () => {
  it('refresh copies every allocated region through the writelog while host writes go on', async () => {
    lab = await groupLab();
    const n = lab.node('alpha');
    // data the secondary never got (written below the replication layer), then a refresh
    await lab.sites.alpha!.running!.array.device('disk0')!.write(3 * MiB, randomBytes(MiB));
    await lab.sites.alpha!.running!.array.device('disk1')!.write(0, randomBytes(512 * 1024));
    expect((await read(lab, 'alpha', 'disk0')).equals(await read(lab, 'bravo', 'disk0'))).toBe(false);
    await n.groups.refresh('g0');
    expect(n.groups.get('g0').incoherent).toMatch(/refresh/);
    const d0 = lab.hostDevice('alpha', 'disk0');
    for (let i = 0; i < 50; i++) await d0.write(3 * MiB + i * 8192, randomBytes(4096));
    await until(() => lab!.events('alpha', 'group.refresh-done').length > 0, 20_000, 'refresh done');
    expect(lab.events('alpha', 'group.refresh-done')[0]!.bytes).toBe(MiB + 512 * 1024);
    await until(() => n.groups.get('g0').metrics!.entriesWaiting === 0, 10_000, 'drained');
    expect(n.groups.get('g0').incoherent).toBeNull();
    for (const lun of ['disk0', 'disk1']) expect((await read(lab, 'alpha', lun)).equals(await read(lab, 'bravo', lun))).toBe(true);
  });

  it('backfresh copies the secondary back; the members are offline meanwhile; journaling resumes', async () => {
    lab = await groupLab();
    const n = lab.node('alpha');
    const theirs = randomBytes(MiB);
    await lab.sites.bravo!.running!.array.device('disk1')!.write(MiB, theirs); // only on the secondary
    const v = n.groups.backfresh('g0');
    await new Promise((r) => setImmediate(r));
    await expect(lab.hostDevice('alpha', 'disk1').read(0, 4096)).rejects.toThrow(/offline/);
    await v;
    expect((await read(lab, 'alpha', 'disk1')).subarray(MiB, 2 * MiB).equals(theirs)).toBe(true);
    await lab.hostDevice('alpha', 'disk1').write(0, randomBytes(4096));
    await until(() => n.groups.get('g0').metrics!.entriesWaiting === 0, 10_000, 'drained');
    expect((await read(lab, 'alpha', 'disk1')).equals(await read(lab, 'bravo', 'disk1'))).toBe(true);
    expect(lab.events('alpha', 'group.backfresh-done')[0]).toMatchObject({ from: 'bravo', bytes: 32 * MiB });
  });

  it('pause holds records in the writelog; resume drains them; qdsinfo reports it', async () => {
    lab = await groupLab();
    const n = lab.node('alpha');
    await n.groups.pause('g0', true);
    const d0 = lab.hostDevice('alpha', 'disk0');
    for (let i = 0; i < 40; i++) await d0.write(i * 4096, randomBytes(4096));
    await new Promise((r) => setTimeout(r, 200));
    expect(n.groups.get('g0').metrics!.entriesWaiting).toBe(40);
    const info = n.groups.info('g0');
    expect(info.text).toMatch(/PAUSED/i);
    expect(info.text).toMatch(/40/);
    await n.groups.pause('g0', false);
    await until(() => n.groups.get('g0').metrics!.entriesWaiting === 0, 10_000, 'drained');
    expect((await read(lab, 'alpha', 'disk0')).equals(await read(lab, 'bravo', 'disk0'))).toBe(true);
  });

  it("throttles: the source's example slows the sender to about 200 KB/s; performance records go to the group's file", async () => {
    lab = await groupLab({
      throttleEveryMs: 500,
      perfEveryMs: 500,
      throttles: [
        { measure: 'netkbps', op: 'gt', value: 200, actions: [{ do: 'sleep-incr', ms: 20 }] },
        { measure: 'netkbps', op: 'lt', value: 200, actions: [{ do: 'sleep-decr', ms: 5 }] },
      ],
    });
    const n = lab.node('alpha');
    const d0 = lab.hostDevice('alpha', 'disk0');
    // offered load about 800 KB/s, far above the throttle's target
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        await d0.write((i % 4000) * 4096, randomBytes(4096));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await new Promise((r) => setTimeout(r, 12_000));
    const samples = lab.events('alpha', 'group.metrics').slice(-8);
    stop = true;
    await writer;
    const avg = samples.reduce((a, m) => a + (m.netkbps as number), 0) / samples.length;
    if (process.env.SANBOX_DEBUG) console.log(`throttled sender: ${samples.map((m) => Math.round(m.netkbps as number)).join(' ')} KB/s, average ${avg.toFixed(0)}, sleep ${samples.at(-1)!.senderSleepMs} ms`);
    expect(avg).toBeGreaterThan(100);
    expect(avg).toBeLessThan(350);
    expect(samples.at(-1)!.senderSleepMs as number).toBeGreaterThan(20);
    expect(lab.events('alpha', 'group.throttled').length).toBeGreaterThan(5);
    const dir = join(lab.sites.alpha!.dir, 'mirrors', 'groups', n.groups.get('g0').record.groupId);
    const lines = (await readFile(join(dir, 'perf.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThan(10);
    expect(lines[0]).toHaveProperty('pctwl');
    expect(lines[0]).toHaveProperty('entriesWaiting');
  }, 30_000);

  it('delete drains the journal; the members go on as synchronous mirrors; the secondary forgets the group', async () => {
    lab = await groupLab();
    const n = lab.node('alpha');
    const d0 = lab.hostDevice('alpha', 'disk0');
    for (let i = 0; i < 20; i++) await d0.write(i * 4096, randomBytes(4096));
    await n.groups.delete('g0');
    expect(n.groups.list()).toEqual([]);
    await until(() => lab!.node('bravo').groups.list().length === 0, 5000, 'bravo forgets');
    await d0.write(MiB, randomBytes(4096)); // synchronous again
    expect((await read(lab, 'alpha', 'disk0')).equals(await read(lab, 'bravo', 'disk0'))).toBe(true);
  });
});
