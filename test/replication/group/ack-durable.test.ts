// An acknowledged write of an asynchronous group survives a crash of the primary: the host is
// acknowledged only once the write's record is in the writelog file, so after a SIGKILL and a
// restart the primary still sends every acknowledged write, and the secondary ends up with all of
// them. Here the link is cut while the writers run (nothing reaches the secondary before the
// crash), the primary is killed while they still write, restarted, and the link restored.
import { describe, it, expect } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArray, type RunningArray } from '../../../src/control/service.js';
import { freePort, linkBetween, SECRET, until } from '../../support/mirror-lab.js';
import { BLOCK, DependentWriters, kill, startChild } from '../../support/workload.js';
import { xorshift32 } from '../../support/random.js';

const MiB = 1024 * 1024;
const LUN_SIZE = 32 * MiB;

describe('an acknowledged write of an asynchronous group', () => {
  it('survives a SIGKILL of the primary: after the restart the secondary receives every acknowledged write', { timeout: 90_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'sanbox-ack-durable-'));
    const local: Array<() => Promise<unknown> | unknown> = [];
    try {
      const [aLink, bLink] = [await freePort(), await freePort()];
      const { emu, toA, toB } = await linkBetween(aLink, bLink, {});
      local.push(() => emu.stop());
      const luns = [
        { name: 'disk0', size: LUN_SIZE },
        { name: 'disk1', size: LUN_SIZE },
      ];
      const timers = { reconnectInitialMs: 50, reconnectMaxMs: 200 };
      const bravo: RunningArray = await startArray({
        name: 'bravo',
        dir: join(root, 'bravo'),
        nbd: { bind: '127.0.0.1', port: 0 },
        api: false,
        luns,
        sync: false,
        remoteLink: { bind: '127.0.0.1', port: bLink, peers: [{ array: 'alpha', host: '127.0.0.1', port: toA, secret: SECRET }], timers },
      });
      local.push(() => bravo.close(100));
      const cfgPath = join(root, 'alpha.json');
      const setupPath = join(root, 'setup.json');
      // fsync on (the default): what the ack promises is what is on disk at the kill
      await writeFile(cfgPath, JSON.stringify({ name: 'alpha', dir: join(root, 'alpha'), nbd: { bind: '127.0.0.1', port: 0 }, api: false, luns, remoteLink: { bind: '127.0.0.1', port: aLink, peers: [{ array: 'bravo', host: '127.0.0.1', port: toB, secret: SECRET }], timers } }));
      await writeFile(
        setupPath,
        JSON.stringify({
          mirrors: [
            { name: 'm0', lun: 'disk0', to: { array: 'bravo', lun: 'disk0' } },
            { name: 'm1', lun: 'disk1', to: { array: 'bravo', lun: 'disk1' } },
          ],
          groups: [{ name: 'g0', members: ['m0', 'm1'], attributes: { mode: 'asynchronous', writelog: { capacity: 128 * MiB } } }],
        }),
      );
      let alpha = await startChild(cfgPath, setupPath);
      local.push(() => kill(alpha.proc));

      emu.cutLink('both');
      const writers = new DependentWriters(1, LUN_SIZE / BLOCK, xorshift32(20261204));
      await writers.start(alpha.nbdPort);
      await new Promise((r) => setTimeout(r, 1500));
      await kill(alpha.proc); // the writers are still writing
      await writers.stop();
      const acked = [...writers.ackOrder];
      expect(acked.length, 'writes acknowledged before the crash').toBeGreaterThan(100);
      const nothing = writers.check([await bravo.array.device('disk0')!.read(0, LUN_SIZE), await bravo.array.device('disk1')!.read(0, LUN_SIZE)], 'before the restart');
      expect(nothing.size, 'the secondary got nothing while the link was cut').toBe(0);

      emu.restore();
      alpha = await startChild(cfgPath, setupPath);
      // the stream has drained when the receiver's applied count stands still (a read during an
      // apply may see one LUN ahead of the other: the secondary is a prefix only between batches)
      const applied = () => (bravo.mirrors!.groups.get('g0').receiver as { applied: number } | null)?.applied ?? 0;
      let last = -1;
      let stillSince = performance.now();
      await until(
        () => {
          const now = applied();
          if (now !== last) [last, stillSince] = [now, performance.now()];
          return now > 0 && performance.now() - stillSince > 1500;
        },
        60_000,
        'the writelog drained to the secondary',
      );
      const present = writers.check([await bravo.array.device('disk0')!.read(0, LUN_SIZE), await bravo.array.device('disk1')!.read(0, LUN_SIZE)], 'after the restart');
      const missing = acked.filter((w) => !present.has(w));
      expect(missing.length, `acknowledged writes missing on the secondary (of ${acked.length}), e.g. ${JSON.stringify(missing.slice(0, 5).map((w) => writers.writes[w]))}`).toBe(0);
      expect(bravo.mirrors!.groups.get('g0').record.bypass.on, 'never in bypass (the writelog held every write)').toBe(false);
    } finally {
      while (local.length) await local.pop()!();
      await rm(root, { recursive: true, force: true });
    }
  });
});
