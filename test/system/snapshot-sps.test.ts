/**
 * Snapshots on a two-SP array under dependent writes through SP A (the owner of disk0; disk1's
 * writes are forwarded to SP B). With no snapshot the LUNs' writes go straight to the SPs'
 * caches; each group snapshot first routes them through the chassis and has both SPs drain the
 * direct writes admitted before, then cuts. Every snapshot, read back through SP B's port, must
 * be a prefix of the acknowledged writes across both LUNs and hold no write issued after the
 * create answered. Every other round keeps its snapshot, so the next cut is made while the SPs
 * write the regions it saved directly (and must drain those writes first); the other rounds
 * delete the snapshots, which puts the routes back to direct.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SPS } from '../../src/array/chassis/index.js';
import { NbdClient } from '../../src/check/nbd-client/index.js';
import { ApiClient } from '../../src/control/client.js';
import { launchArray, stopProcess } from '../support/launch.js';
import { requireBuild } from '../support/paths.js';
import { seededRandom } from '../support/random.js';
import { BLOCK, DependentWriters } from '../support/workload.js';

const MiB = 1024 * 1024;
const LUN_SIZE = 16 * MiB;
const ROUNDS = 6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const undo: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (undo.length) await undo.pop()!();
});

interface SpRoutes {
  name: string;
  hostRoutes: Record<string, { through?: string }>;
}

async function readExport(port: number, name: string): Promise<Buffer> {
  const c = await NbdClient.connect(`nbd://127.0.0.1:${port}/${name}`);
  try {
    return await c.read(0, LUN_SIZE);
  } finally {
    await c.close();
  }
}

describe('snapshots of a two-SP array', () => {
  it('every group snapshot cut while writes switch to the chassis is a prefix of the acknowledged writes', { timeout: 120_000 }, async () => {
    requireBuild('cli/index.js');
    const root = mkdtempSync(join(tmpdir(), 'sanbox-snap-sps-'));
    undo.push(() => rmSync(root, { recursive: true, force: true }));
    const cfg = {
      name: 'gamma',
      dir: join(root, 'gamma'),
      nbd: { bind: '127.0.0.1', port: 0 },
      api: { bind: '127.0.0.1', port: 0 },
      luns: [
        { name: 'disk0', size: LUN_SIZE },
        { name: 'disk1', size: LUN_SIZE },
      ],
      sync: false,
      sps: { ...structuredClone(DEFAULT_SPS), cacheBytes: 16 * MiB },
    };
    const { proc, ready, ports } = await launchArray(join(root, 'cfg.json'), cfg, 'array gamma');
    undo.push(() => stopProcess(proc));
    const api = new ApiClient({ url: ready.api.url });
    /** What each SP sends of disk0 and disk1 to the chassis. */
    const through = async () => ((await api.request('GET', '/v1/sps')) as { sps: SpRoutes[] }).sps.map((sp) => ['disk0', 'disk1'].map((l) => sp.hostRoutes[l]?.through ?? 'direct').join(','));

    const writers = new DependentWriters(1, LUN_SIZE / BLOCK, seededRandom(20261202), 2, 8);
    await writers.start(ports.A);
    const present: number[] = [];
    try {
      let kept: string | undefined;
      for (let i = 0; i < ROUNDS; i++) {
        await sleep(60);
        // Before the cut the routes are direct (no snapshot yet, or all deleted last round), or,
        // after a round that kept its snapshot, changes of regions it saved go direct.
        const before = kept ? 'writes,writes' : 'direct,direct';
        expect(await through(), `routes before round ${i}`).toEqual([before, before]);
        const made = await api.createSnapshotGroup({ luns: ['disk0', 'disk1'], name: `s${i}` });
        const issuedByAnswer = writers.writes.length;
        expect(made.snapshots).toHaveLength(2);
        expect(await through(), `routes after the cut of round ${i}`).toEqual(['writes,writes', 'writes,writes']);
        const images = [await readExport(ports.B, `disk0@s${i}`), await readExport(ports.B, `disk1@s${i}`)];
        const there = writers.check(images, `snapshot s${i}`);
        // A write issued after the create answered is never in the snapshot (its route crossed the layer).
        const late = [...there].filter((w) => w >= issuedByAnswer);
        expect(late, `snapshot s${i} holds writes issued after it was taken`).toEqual([]);
        present.push(there.size);
        if (i % 2 === 0) {
          kept = `s${i}`; // the next cut is made while changes of the regions it saved go direct
          continue;
        }
        for (const name of [kept, `s${i}`]) for (const lun of ['disk0', 'disk1']) if (name) await api.deleteSnapshot(lun, name);
        kept = undefined;
        // The routes go back to direct once the SPs took the change (pushed on the delete).
        const deadline = Date.now() + 5000;
        while ((await through()).join() !== 'direct,direct,direct,direct' && Date.now() < deadline) await sleep(20);
      }
    } finally {
      await writers.stop();
    }
    expect(writers.ackOrder.length).toBeGreaterThan(300);
    // The snapshots were cut while writes went on: each holds more than the one before, and less than all.
    expect(present.every((n, i) => n > 0 && (i === 0 || n >= present[i - 1]!))).toBe(true);
    expect(present.at(-1)!).toBeLessThan(writers.ackOrder.length);
    console.log(`two-SP group snapshots: writes present ${present.join(', ')} of ${writers.ackOrder.length} acknowledged`);
  });
});
