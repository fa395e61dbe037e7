// The primary array crashes (SIGKILL) in the middle of host writes: the write-intent log drives a
// partial resync, and a promoted secondary holds every acknowledged write (acknowledged-write
// ledger through NBD).
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArray, type RunningArray } from '../../../src/control/service.js';
import { LedgerWriter, verifyLedger } from '../../../src/check/ledger/index.js';
import { freePort, linkBetween, until, SECRET } from '../../support/mirror-lab.js';
import { kill, startChild } from '../../support/workload.js';
import { childEvents } from '../../support/child-events.js';

const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

type Child = Awaited<ReturnType<typeof startChild>> & { api: string };

async function child(cfgPath: string): Promise<Child> {
  const c = await startChild(cfgPath);
  cleanups.push(() => kill(c.proc));
  return { ...c, api: c.apiUrl! };
}

async function api(base: string, method: string, path: string, body?: unknown): Promise<any> {
  const r = await fetch(base + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

async function setup() {
  const root = await mkdtemp(join(tmpdir(), 'sanbox-crash-'));
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
  const bEvents: Array<Record<string, unknown>> = [];
  bravo.array.on('event', (e: Record<string, unknown>) => bEvents.push(e));
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
  const alpha = await child(cfgPath);
  await api(alpha.api, 'POST', '/v1/mirrors', { lun: 'disk0', name: 'm0' });
  await api(alpha.api, 'POST', '/v1/mirrors/m0/secondaries', { array: 'bravo', lun: 'disk0', synchronized: true });
  await until(async () => (await api(alpha.api, 'GET', '/v1/mirrors/m0')).images[1].link === 'connected', 10_000, 'link up');
  return { root, cfgPath, alpha, bravo, bEvents };
}

async function writeAndKill(alpha: Child): Promise<LedgerWriter> {
  const w = new LedgerWriter({ endpoints: [`nbd://127.0.0.1:${alpha.nbdPort}/disk0`], connections: 2, depth: 8, blocks: 4096, seed: 11, reconnectTimeoutMs: 300, opTimeoutMs: 3000 });
  const done = w.run();
  await w.until((s) => s.acked >= 6000, 60_000);
  alpha.proc.kill('SIGKILL');
  await new Promise((r) => alpha.proc.once('exit', r));
  w.stop();
  await done.catch(() => undefined);
  return w;
}

describe('primary array crash mid-write', () => {
  it('restart: the write-intent log drives a partial resync, images identical afterwards', async () => {
    const { cfgPath, alpha, bravo, bEvents } = await setup();
    await writeAndKill(alpha);
    const again = await child(cfgPath);
    const evs = await childEvents(again.api);
    const unclean = evs.find((e) => e.type === 'mirror.unclean-stop');
    expect(unclean, 'unclean-stop event').toBeDefined();
    expect(unclean!.regions as number).toBeGreaterThan(0);
    await until(async () => (await childEvents(again.api)).some((e) => e.type === 'mirror.resync-done'), 30_000, 'resync');
    const done = (await childEvents(again.api)).find((e) => e.type === 'mirror.resync-done')!;
    expect(done.full).toBe(false);
    // only the write-intent regions (a handful of 64 KiB regions), never the LUN
    expect(done.bytesDone as number).toBeLessThanOrEqual(unclean!.bytes as number);
    expect(done.bytesDone as number).toBeLessThan(64 * MiB);
    const v = await api(again.api, 'POST', '/v1/mirrors/m0/verify', {});
    expect(v.mismatched).toEqual([]);
    expect(v.identical).toBe(true);
    expect(bEvents.some((e) => e.type === 'mirror.record-adopted')).toBe(true);
    void bravo;
  });

  it('promote after the crash: the secondary holds every acknowledged write', async () => {
    const { alpha, bravo } = await setup();
    const w = await writeAndKill(alpha);
    await bravo.mirrors!.promote('m0', { force: true }); // the primary is dead: only --force promotes
    const v = await verifyLedger(w.ledger, { endpoints: [`nbd://127.0.0.1:${bravo.nbd.port}/disk0`] });
    expect(v.violations, JSON.stringify(v.details.slice(0, 3))).toBe(0);
    expect(v.ok).toBe(true);
    expect(v.ackedBlocks).toBeGreaterThan(1000);
  });
});
