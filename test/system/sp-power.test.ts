/**
 * Guarantee 1 across power failures, and guarantee 5 (issue 4):
 * - a power failure with a good battery: the SPs dump their mirrored caches to the vault, power
 *   comes back, the vault is replayed, and every acknowledged write is there;
 * - power restored in the middle of the dump: the SPs abandon the dump and keep serving;
 * - a power failure with a failed battery the SPs knew about: they ran write-through, nothing
 *   is lost;
 * - a power failure with a latent (undetected) battery failure: dirty cache is lost, and the LUN
 *   must refuse host I/O with EIO ("cache dirty") rather than serve stale data, until
 *   `sanbox lun recover --accept-data-loss`.
 * Idle destaging is off (idleMs: 0) so that acknowledged data really sits in the cache.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { formatVerifyReport, formatWriteReport, LedgerWriter, NbdClient, NbdReplyError, verifyLedger } from '../../src/check/ledger/index.js';
import { startLab, type SpLab } from '../support/sp-lab.js';

const WRITER = { connections: 4, depth: 4, blocks: 512, durationMs: 30_000, maxWrites: 60_000, reconnectTimeoutMs: 5_000 };

async function verifyBoth(l: SpLab, ledger: any, label: string): Promise<void> {
  for (const sp of ['A', 'B'] as const) {
    const v = await verifyLedger(ledger, { endpoints: [l.uri(sp)] });
    console.log(`${label}: ${formatVerifyReport(v)}`);
    expect(v.ok, `${label}, through SP ${sp}`).toBe(true);
  }
}

/** A short fault-free run after the restore: the array serves writes again, and keeps them. */
async function serveAgain(l: SpLab, seed: number): Promise<void> {
  const w = new LedgerWriter({ ...WRITER, endpoints: [l.uri('A'), l.uri('B')], seed, durationMs: 1500, maxWrites: 3000, blocks: 256 });
  const rep = await w.run();
  expect(rep.acked).toBe(rep.issued);
  await verifyBoth(l, w.ledger, 'after restore, new writes');
}

describe('ledger across power failures', { timeout: 120_000 }, () => {
  let lab: SpLab | null = null;
  afterEach(async () => {
    await lab?.down();
    lab = null;
  });

  it('power failure with a good battery: dump, restore, every acknowledged write is there', async () => {
    lab = await startLab({ idleMs: 0, holdUpMs: 10_000 });
    const l = lab;
    const w = new LedgerWriter({ ...WRITER, endpoints: [l.uri('A'), l.uri('B')], seed: 41 });
    const done = w.run();
    let pf: any;
    try {
      await w.until((s) => s.acked >= 1500, 30_000);
      pf = await l.ok(['fault', 'power-fail', 'alpha'], 60_000);
    } finally {
      w.stop();
    }
    const rep = await done;
    console.log(`power-fail: ${JSON.stringify(pf)}\n${formatWriteReport(rep)}`);
    expect(pf.power).toBe('off');
    expect(pf.holdUpMs).toBeGreaterThan(0);
    // The owner dumped real dirty pages: the vault path is what is being checked.
    expect(pf.sps.find((s: any) => s.sp === 'A')).toMatchObject({ dumped: true });
    expect(pf.sps.reduce((n: number, s: any) => n + (s.pages ?? 0), 0)).toBeGreaterThan(0);
    const pr = await l.ok(['fault', 'power-restore', 'alpha'], 60_000);
    console.log(`power-restore: ${JSON.stringify(pr)}`);
    expect((await l.lun('disk0')).cacheDirty).toBe(false);
    await verifyBoth(l, w.ledger, 'after power restore');
    await serveAgain(l, 42);
  });

  it('a second power failure during the restore: nothing consumed, the next restore replays the vault', async () => {
    lab = await startLab({ idleMs: 0, holdUpMs: 10_000 });
    const l = lab;
    const w = new LedgerWriter({ ...WRITER, endpoints: [l.uri('A'), l.uri('B')], seed: 47 });
    const done = w.run();
    try {
      await w.until((s) => s.acked >= 1500, 30_000);
      const pf = await l.ok(['fault', 'power-fail', 'alpha'], 60_000);
      expect(pf.sps.find((s: any) => s.sp === 'A')).toMatchObject({ dumped: true });
    } finally {
      w.stop();
    }
    console.log(formatWriteReport(await done));
    // Restore, and cut the power again while the SPs are restoring.
    const restore = l.api('POST', '/v1/faults/power-restore');
    let seen = false;
    for (const t0 = Date.now(); Date.now() - t0 < 15_000; ) {
      const st = await l.api('GET', '/v1/status');
      if (st.json.power === 'restoring') {
        seen = true;
        break;
      }
      if (st.json.power === 'on') break;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(seen, 'caught the array while restoring').toBe(true);
    const second = await l.api('POST', '/v1/faults/power-fail');
    const first = await restore;
    console.log(`restore: ${JSON.stringify(first)}\nsecond power-fail: ${JSON.stringify(second)}`);
    expect(second.json).toMatchObject({ during: 'restore' });
    // Power on again: the vault image the interrupted restore did not finish is replayed now.
    let pr: any = null;
    for (let i = 0; i < 20 && !pr; i++) {
      const r = await l.cli(['fault', 'power-restore', 'alpha', '--json'], 60_000);
      if (r.code === 0) pr = r.json;
      else await new Promise((res) => setTimeout(res, 250)); // the chassis may still be settling the cut
    }
    console.log(`power-restore: ${JSON.stringify(pr)}`);
    expect(pr?.power).toBe('on');
    expect((await l.lun('disk0')).cacheDirty).toBe(false);
    await verifyBoth(l, w.ledger, 'after a second power failure during the restore');
  });

  it('power restored in the middle of the dump: the SPs keep serving, nothing is lost', async () => {
    // A slow vault (256 KiB/s) makes the dump of a few MiB of dirty cache last seconds.
    lab = await startLab({ idleMs: 0, holdUpMs: 60_000, vaultBandwidth: '256K' });
    const l = lab;
    const w = new LedgerWriter({ ...WRITER, reconnectTimeoutMs: 30_000, endpoints: [l.uri('A'), l.uri('B')], seed: 43 });
    const done = w.run();
    let pf: any;
    let pr: any;
    try {
      await w.until((s) => s.acked >= 1500, 30_000);
      const fail = l.cli(['fault', 'power-fail', 'alpha', '--json'], 90_000);
      // Wait until the dump is under way, then bring power back.
      const t0 = Date.now();
      while (Date.now() - t0 < 15_000 && (await l.status()).power !== 'failing') await new Promise((r) => setTimeout(r, 100));
      pr = await l.ok(['fault', 'power-restore', 'alpha'], 60_000);
      const f = await fail;
      expect(f.code, f.err).toBe(0);
      pf = f.json;
      const before = w.stats.acked;
      await w.until((s) => s.acked >= before + 1000, 40_000);
    } finally {
      w.stop();
    }
    const rep = await done;
    console.log(`power-fail: ${JSON.stringify(pf)}\npower-restore: ${JSON.stringify(pr)}\n${formatWriteReport(rep)}`);
    expect(pr.restoredMidDump).toBe(true);
    expect(pf.restoredMidDump).toBe(true);
    expect((await l.status()).power).toBe('on');
    await verifyBoth(l, w.ledger, 'after power restored mid-dump');
  });

  it('power failure with a failed (detected) battery: write-through beforehand, nothing lost', async () => {
    lab = await startLab({ idleMs: 0 });
    const l = lab;
    await l.ok(['fault', 'battery-fail', 'alpha']);
    const st = await l.status();
    for (const sp of st.sps) expect(sp.cache.mode, `SP ${sp.name}`).toBe('write-through');
    const w = new LedgerWriter({ ...WRITER, endpoints: [l.uri('A'), l.uri('B')], seed: 44 });
    const done = w.run();
    let pf: any;
    try {
      await w.until((s) => s.acked >= 1500, 30_000);
      pf = await l.ok(['fault', 'power-fail', 'alpha'], 60_000);
    } finally {
      w.stop();
    }
    const rep = await done;
    console.log(`power-fail: ${JSON.stringify(pf)}\n${formatWriteReport(rep)}`);
    expect(pf.holdUpMs).toBe(0);
    await l.ok(['fault', 'power-restore', 'alpha'], 60_000);
    expect((await l.lun('disk0')).cacheDirty).toBe(false);
    await verifyBoth(l, w.ledger, 'after power restore (battery failed, detected)');
  });

  it('power failure with a latent battery failure: the LUN goes cache-dirty (EIO), never stale, until recovered', async () => {
    lab = await startLab({ idleMs: 0 });
    const l = lab;
    await l.ok(['fault', 'battery-fail', 'alpha', '--undetected']);
    expect((await l.status()).sps.find((s: any) => s.name === 'A').cache.mode).toBe('write-back');
    const w = new LedgerWriter({ ...WRITER, endpoints: [l.uri('A'), l.uri('B')], seed: 45 });
    const done = w.run();
    let pf: any;
    try {
      await w.until((s) => s.acked >= 1500, 30_000);
      pf = await l.ok(['fault', 'power-fail', 'alpha'], 60_000);
    } finally {
      w.stop();
    }
    const rep = await done;
    console.log(`power-fail: ${JSON.stringify(pf)}\n${formatWriteReport(rep)}`);
    expect(pf.holdUpMs).toBe(0);
    await l.ok(['fault', 'power-restore', 'alpha'], 60_000);
    const lun = await l.lun('disk0');
    console.log(`disk0 after restore: ${JSON.stringify(lun)}`);
    expect(lun.cacheDirty).toBe(true);
    expect(lun.state).toBe('cache-dirty');

    // Host I/O fails with EIO through either port: no block may come back stale or torn.
    for (const sp of ['A', 'B'] as const) {
      const v = await verifyLedger(w.ledger, { endpoints: [l.uri(sp)], allowReadErrors: true });
      console.log(`cache-dirty, through SP ${sp}: ${formatVerifyReport(v)}`);
      expect(v.violations, `through SP ${sp}`).toBe(0);
      expect(v.unreadable).toBe(v.blocksChecked);
      expect(Object.keys(v.unreadableByErrno)).toEqual(['EIO']);
      const c = await NbdClient.connect(l.uri(sp));
      try {
        const err = await c.write(0, Buffer.alloc(4096, 1)).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(NbdReplyError);
        expect((err as NbdReplyError).errno).toBe('EIO');
      } finally {
        await c.close();
      }
    }

    // The explicit way back: the LUN serves again (what it holds now is the accepted loss).
    const rec = await l.cli(['lun', 'recover', 'alpha', 'disk0']);
    expect(rec.code).not.toBe(0); // refused without --accept-data-loss
    await l.ok(['lun', 'recover', 'alpha', 'disk0', '--accept-data-loss']);
    expect((await l.lun('disk0')).cacheDirty).toBe(false);
    const c = await NbdClient.connect(l.uri('A'));
    try {
      expect((await c.read(0, 4096)).length).toBe(4096);
    } finally {
      await c.close();
    }
    await serveAgain(l, 46);
  });
});
