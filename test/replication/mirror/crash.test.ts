// The primary array crashes (SIGKILL) in the middle of host writes: the write-intent log drives a
// partial resync, and a promoted secondary holds every acknowledged write (acknowledged-write
// ledger through NBD).
import { describe, it, expect, afterEach } from 'vitest';
import { LedgerWriter, verifyLedger } from '../../../src/check/ledger/index.js';
import { until } from '../../support/mirror-lab.js';
import { api, crashPair, type Child } from '../../support/crash-pair.js';
import { childEvents } from '../../support/child-events.js';

const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const setup = () => crashPair(cleanups, 'sanbox-crash-');

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
    const { alpha, bravo, bEvents, child } = await setup();
    await writeAndKill(alpha);
    const again = await child();
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

describe('the old primary returns after a forced promote', () => {
  it('crashed mid-write with its link up: it steps down with nothing acknowledged (its write-intent regions are only maybe written), no split brain, a partial resync', async () => {
    const { alpha, bravo, bEvents, child } = await setup();
    const w = await writeAndKill(alpha);
    await bravo.mirrors!.promote('m0', { force: true });
    const again = await child();
    await until(async () => (await childEvents(again.api)).some((e) => e.type === 'mirror.demoted'), 30_000, 'demoted');
    const demoted = (await childEvents(again.api)).find((e) => e.type === 'mirror.demoted');
    expect(demoted!.acknowledgedRegions).toBe(0);
    expect(demoted!.divergentRegions as number).toBeGreaterThan(0);
    await until(() => bEvents.some((e) => e.type === 'mirror.resync-done'), 30_000, 'failback resync');
    expect(bEvents.filter((e) => e.type === 'mirror.split-brain')).toEqual([]);
    const v = await verifyLedger(w.ledger, { endpoints: [`nbd://127.0.0.1:${bravo.nbd.port}/disk0`] });
    expect(v.ok).toBe(true);
    // what alpha may have written and bravo never got was rewritten from bravo
    await until(async () => (await bravo.mirrors!.verify('m0')).identical, 30_000, 'images identical');
    void alpha;
  });

  it('crashed after acknowledging writes with its link cut: those regions stay acknowledged (split brain), even where its write-intent log overlaps them', async () => {
    const { alpha, bravo, bEvents, emu, child } = await setup();
    emu.cutLink('both');
    await writeAndKill(alpha); // alpha fractures bravo and goes on acknowledging
    await bravo.mirrors!.promote('m0', { force: true });
    emu.restore();
    const again = await child();
    await until(async () => (await childEvents(again.api)).some((e) => e.type === 'mirror.demoted'), 30_000, 'demoted');
    const demoted = (await childEvents(again.api)).find((e) => e.type === 'mirror.demoted');
    expect(demoted!.acknowledgedRegions as number).toBeGreaterThan(0);
    await until(() => bEvents.some((e) => e.type === 'mirror.split-brain'), 30_000, 'split brain');
  });
});
