// Checksum resync after an unclean stop: the primary array (its own process) is SIGKILLed under
// scattered small writes; at its restart the write-intent log's 1 MiB extents go into the fracture
// log as "may differ", and the resync (resyncChecksums auto) compares them by checksum: it sends
// exactly the 4 KiB pieces that differ, not the extents, and the image files end identical.
// Children run dist/ (npx tsc -p tsconfig.json first).
import { describe, it, expect, afterEach } from 'vitest';
import { join } from 'node:path';
import { LedgerWriter } from '../../../src/check/ledger/index.js';
import { until } from '../../support/mirror-lab.js';
import { crashPair } from '../../support/crash-pair.js';
import { differingBlocks, imageFile } from '../../support/image-files.js';
import { childEvents } from '../../support/child-events.js';

const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('checksum resync after an unclean stop', () => {
  it('sends the differing 4 KiB pieces only, far fewer bytes than the extents; image files identical', async () => {
    const { root, alpha, emu, child: start } = await crashPair(cleanups, 'sanbox-csum-crash-');

    // scattered 4 KiB writes over 32 MiB, 16 in flight; SIGKILL in the middle of them
    const w = new LedgerWriter({ endpoints: [`nbd://127.0.0.1:${alpha.nbdPort}/disk0`], connections: 2, depth: 8, blocks: 8192, seed: 5, reconnectTimeoutMs: 300, opTimeoutMs: 3000 });
    const running = w.run();
    await w.until((s) => s.acked >= 6000, 60_000);
    // the link goes first (its connections reset: the writes from now on land on alpha only, and
    // are marked in the fracture log too), then the array: these extents hold blocks that differ
    emu.cutLink('both', { reset: true });
    const acked = w.stats.acked;
    await w.until((s) => s.acked >= acked + 200, 30_000);
    alpha.proc.kill('SIGKILL');
    await new Promise((r) => alpha.proc.once('exit', r));
    w.stop();
    await running.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500)); // frames already on their way land on bravo
    const a = imageFile(join(root, 'alpha'));
    const b = imageFile(join(root, 'bravo'));
    const differ = differingBlocks(a, b);
    expect(differ).toBeGreaterThan(0);

    emu.restore();
    const again = await start();
    let evs: Array<Record<string, unknown>> = [];
    await until(async () => (evs = await childEvents(again.api)).some((e) => e.type === 'mirror.resync-done'), 30_000, 'resync done');
    const unclean = evs.find((e) => e.type === 'mirror.unclean-stop')!;
    const rd = evs.find((e) => e.type === 'mirror.resync-done')!;
    if (process.env.CSUM_DEBUG) console.log({ differ, unclean, rd });
    expect(unclean.bytes as number).toBeGreaterThanOrEqual(4 * MiB); // 1 MiB extents written in the last seconds
    expect(rd).toMatchObject({ full: false, checksums: 'auto' });
    // compared, or copied where a chunk holds only regions known to differ (the writes after the cut)
    expect(rd.bytesCompared as number).toBeLessThanOrEqual(rd.bytesDone as number);
    expect((rd.bytesDone as number) - (rd.bytesCompared as number)).toBeLessThanOrEqual(rd.bytesSent as number);
    expect(rd.bytesDone as number).toBeGreaterThanOrEqual(4 * MiB);
    // exactly the differing pieces: data, or zero requests where the primary's piece is zero
    expect((rd.bytesSent as number) + (rd.bytesZeroed as number)).toBe(differ * 4096);
    // far fewer than the extents (how many pieces differ depends on how many writes landed on
    // alpha alone before the kill: more on a loaded machine)
    expect(rd.bytesSent as number).toBeLessThan((rd.bytesDone as number) / 4);
    expect(differingBlocks(a, b)).toBe(0);
  });
});
