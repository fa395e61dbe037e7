// Checksum resync after an unclean stop: the primary array (its own process) is SIGKILLed under
// scattered small writes; at its restart the write-intent log's 1 MiB extents go into the fracture
// log as "may differ", and the resync (resyncChecksums auto) compares them by checksum: it sends
// exactly the 4 KiB pieces that differ, not the extents, and the image files end identical.
// Children run dist/ (npx tsc -p tsconfig.json first).
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArray, type RunningArray } from '../../../src/control/service.js';
import { LedgerWriter } from '../../../src/check/ledger/index.js';
import { freePort, linkBetween, until, SECRET } from '../../support/mirror-lab.js';
import { kill, startChild } from '../../support/workload.js';
import { differingBlocks, imageFile } from '../../support/image-files.js';
import { childEvents } from '../../support/child-events.js';

const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function api(base: string, method: string, path: string, body?: unknown): Promise<any> {
  const r = await fetch(base + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

describe('checksum resync after an unclean stop', () => {
  it('sends the differing 4 KiB pieces only, far fewer bytes than the extents; image files identical', async () => {
    const root = await mkdtemp(join(tmpdir(), 'sanbox-csum-crash-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const [aLink, bLink, aApi] = [await freePort(), await freePort(), await freePort()];
    const { emu, toA, toB } = await linkBetween(aLink, bLink);
    cleanups.push(() => emu.stop());
    const luns = [{ name: 'disk0', size: 64 * MiB }];
    const bravo: RunningArray = await startArray({
      name: 'bravo',
      dir: join(root, 'bravo'),
      nbd: { bind: '127.0.0.1', port: 0 },
      api: false,
      luns,
      remoteLink: { bind: '127.0.0.1', port: bLink, peers: [{ array: 'alpha', host: '127.0.0.1', port: toA, secret: SECRET }] },
    });
    cleanups.push(() => bravo.close(100));
    const cfgPath = join(root, 'alpha.json');
    await writeFile(
      cfgPath,
      JSON.stringify({
        name: 'alpha',
        dir: join(root, 'alpha'),
        nbd: { bind: '127.0.0.1', port: 0 },
        api: { bind: '127.0.0.1', port: aApi },
        luns,
        remoteLink: { bind: '127.0.0.1', port: aLink, peers: [{ array: 'bravo', host: '127.0.0.1', port: toB, secret: SECRET }] },
      }),
    );
    const start = async () => {
      const c = await startChild(cfgPath);
      cleanups.push(() => kill(c.proc));
      return { ...c, api: c.apiUrl! };
    };
    const alpha = await start();
    await api(alpha.api, 'POST', '/v1/mirrors', { lun: 'disk0', name: 'm0' });
    await api(alpha.api, 'POST', '/v1/mirrors/m0/secondaries', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(async () => (await api(alpha.api, 'GET', '/v1/mirrors/m0')).images[1].link === 'connected', 10_000, 'link up');

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
    expect(rd.bytesCompared).toBe(rd.bytesDone);
    expect(rd.bytesDone as number).toBeGreaterThanOrEqual(4 * MiB);
    // exactly the differing pieces: data, or zero requests where the primary's piece is zero
    expect((rd.bytesSent as number) + (rd.bytesZeroed as number)).toBe(differ * 4096);
    // far fewer than the extents (how many pieces differ depends on how many writes landed on
    // alpha alone before the kill: more on a loaded machine)
    expect(rd.bytesSent as number).toBeLessThan((rd.bytesDone as number) / 4);
    expect(differingBlocks(a, b)).toBe(0);
  });
});
