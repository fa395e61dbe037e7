// The secondary array (the group's receiver) is SIGKILLed while batches stream in: what it has on
// disk must be a prefix of the acknowledged writes across both LUNs (never a later write applied
// with an earlier one missing), and after it restarts the sender resumes from its next expected
// record: no gap, no duplicate, both LUNs equal the primary's once drained.
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArray, type RunningArray } from '../../../src/control/service.js';
import { freePort, linkBetween, until, SECRET } from '../../support/mirror-lab.js';
import { DependentWriters, kill, startChild } from '../../support/workload.js';
import { seededRandom } from '../../support/random.js';

const MiB = 1024 * 1024;
const LUN_SIZE = 16 * MiB;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('receiver crash in the middle of batches', () => {
  it('the secondary on disk is a prefix; after restart the stream resumes without gap or duplicate', async () => {
    const random = seededRandom(7);
    const root = await mkdtemp(join(tmpdir(), 'sanbox-rcrash-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const [aLink, bLink, bApi] = [await freePort(), await freePort(), await freePort()];
    const { emu, toA, toB } = await linkBetween(aLink, bLink);
    cleanups.push(() => emu.stop());
    const luns = [
      { name: 'disk0', size: LUN_SIZE },
      { name: 'disk1', size: LUN_SIZE },
    ];
    const timers = { reconnectInitialMs: 50, reconnectMaxMs: 200 };
    const bravoCfg = join(root, 'bravo.json');
    await writeFile(
      bravoCfg,
      JSON.stringify({
        name: 'bravo',
        dir: join(root, 'bravo'),
        nbd: { bind: '127.0.0.1', port: 0 },
        api: { bind: '127.0.0.1', port: bApi },
        luns,
        remoteLink: { bind: '127.0.0.1', port: bLink, peers: [{ array: 'alpha', host: '127.0.0.1', port: toA, secret: SECRET }], timers },
      }),
    );
    let bravo = await startChild(bravoCfg);
    cleanups.push(() => kill(bravo.proc));
    const alpha: RunningArray = await startArray({
      name: 'alpha',
      dir: join(root, 'alpha'),
      nbd: { bind: '127.0.0.1', port: 0 },
      api: false,
      luns,
      sync: false,
      remoteLink: { bind: '127.0.0.1', port: aLink, peers: [{ array: 'bravo', host: '127.0.0.1', port: toB, secret: SECRET }], timers },
    });
    cleanups.push(() => alpha.close(100));
    const n = alpha.mirrors!;
    for (const lun of ['disk0', 'disk1']) {
      await n.create({ lun, name: `m-${lun}` });
      await n.addSecondary(`m-${lun}`, { array: 'bravo', lun, synchronized: true });
    }
    await until(() => n.list().every((m) => m.images[1]!.link === 'connected'), 10_000, 'links');
    await n.groups.create({ name: 'g0', members: ['m-disk0', 'm-disk1'], attributes: { mode: 'asynchronous' } });
    await until(() => n.groups.get('g0').senders.every((s) => s.state === 'running') && !n.groups.get('g0').record.bypass.on, 10_000, 'journaling');

    const writers = new DependentWriters(1, LUN_SIZE / 4096, random, 2, 8);
    await writers.start(alpha.nbd.port);
    await new Promise((r) => setTimeout(r, 400 + random() * 600));
    // the receiver dies mid-stream
    await kill(bravo.proc);
    const imagePath = (lun: number) => join(root, 'bravo', `lun${lun}.img`); // the array's image files (LUN ids 0, 1)
    const onDisk = [await readFile(imagePath(0)), await readFile(imagePath(1))];
    const present = writers.check(onDisk, 'receiver image after SIGKILL');
    expect(present.size).toBeGreaterThan(50);
    // writes go on meanwhile; the receiver comes back
    await new Promise((r) => setTimeout(r, 300));
    bravo = await startChild(bravoCfg);
    cleanups.push(() => kill(bravo.proc));
    await new Promise((r) => setTimeout(r, 500));
    await writers.stop();
    await until(() => n.groups.get('g0').metrics!.entriesWaiting === 0, 20_000, 'drained after restart');
    expect(n.groups.get('g0').record.bypass.on).toBe(false);
    for (const lun of [0, 1]) {
      const a = await alpha.array.device(`disk${lun}`)!.read(0, LUN_SIZE);
      const b = await readFile(imagePath(lun));
      expect(b.subarray(0, LUN_SIZE).equals(a), `disk${lun} equal after the restart`).toBe(true);
    }
  });
});
