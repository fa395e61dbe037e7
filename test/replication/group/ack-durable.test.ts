// An acknowledged write of an asynchronous group survives a crash of the primary: the host is
// acknowledged only once the write's record is in the writelog file, so after a SIGKILL and a
// restart the primary still sends every acknowledged write, and the secondary ends up with all of
// them. Here the link is cut while the writers run (nothing reaches the secondary before the
// crash), the primary is killed while they still write, restarted, and the link restored.
import { describe, it, expect } from 'vitest';
import type { Cleanups } from '../../support/crash-pair.js';
import { asyncGroupPair, GROUP_LUN_SIZE } from '../../support/group-pair.js';
import { until } from '../../support/mirror-lab.js';
import { BLOCK, DependentWriters, kill, startChild } from '../../support/workload.js';
import { xorshift32 } from '../../support/random.js';

describe('an acknowledged write of an asynchronous group', () => {
  it('survives a SIGKILL of the primary: after the restart the secondary receives every acknowledged write', { timeout: 90_000 }, async () => {
    const local: Cleanups = [];
    try {
      const { emu, bravo, cfgPath, setupPath, images } = await asyncGroupPair(local, 'sanbox-ack-durable-');
      let alpha = await startChild(cfgPath, setupPath);
      local.push(() => kill(alpha.proc));

      emu.cutLink('both');
      const writers = new DependentWriters(1, GROUP_LUN_SIZE / BLOCK, xorshift32(20261204));
      await writers.start(alpha.nbdPort);
      await new Promise((r) => setTimeout(r, 1500));
      await kill(alpha.proc); // the writers are still writing
      await writers.stop();
      const acked = [...writers.ackOrder];
      expect(acked.length, 'writes acknowledged before the crash').toBeGreaterThan(100);
      const nothing = writers.check(await images(), 'before the restart');
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
      const present = writers.check(await images(), 'after the restart');
      const missing = acked.filter((w) => !present.has(w));
      expect(missing.length, `acknowledged writes missing on the secondary (of ${acked.length}), e.g. ${JSON.stringify(missing.slice(0, 5).map((w) => writers.writes[w]))}`).toBe(0);
      expect(bravo.mirrors!.groups.get('g0').record.bypass.on, 'never in bypass (the writelog held every write)').toBe(false);
    } finally {
      while (local.length) await local.pop()!();
    }
  });
});
