/**
 * A fault combination: `fault sp-crash` while the SPs dump their dirty caches to their vaults
 * after a power failure (docs/sp-and-fault.md). The crash is accepted (it kills that SP); its
 * dump is cut short, so its vault copy is torn and never replayed; the peer's complete dump
 * holds the mirror of the crashed SP's dirty pages, so after power-restore every acknowledged
 * write is there. Once the power is off (the dump over), sp-crash is refused, saying why.
 * Idle destaging is off (idleMs: 0) so that acknowledged data really sits in the cache; a slow
 * vault (256 KiB/s) makes the dump last seconds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { formatVerifyReport, formatWriteReport, LedgerWriter, verifyLedger } from '../../src/check/ledger/index.js';
import { startLab, type SpLab } from '../support/sp-lab.js';

const WRITER = { connections: 4, depth: 4, blocks: 512, durationMs: 30_000, maxWrites: 60_000, reconnectTimeoutMs: 5_000 };

describe('sp-crash during a power-fail dump', { timeout: 180_000 }, () => {
  let lab: SpLab | null = null;
  afterEach(async () => {
    await lab?.down();
    lab = null;
  });

  /** Writes, fails the power, and kills `kill` in the middle of the dump; returns the answers. */
  async function crashDuringDump(l: SpLab, kill: ('A' | 'B')[], seed: number): Promise<{ w: LedgerWriter; crashes: any[]; pf: any }> {
    const w = new LedgerWriter({ ...WRITER, endpoints: [l.uri('A'), l.uri('B')], seed });
    const done = w.run();
    const crashes: any[] = [];
    let pf: any;
    try {
      await w.until((s) => s.acked >= 1500, 30_000);
      const fail = l.cli(['fault', 'power-fail', 'alpha', '--json'], 120_000);
      // Wait until the dump is under way, then kill the SPs in the middle of it.
      const t0 = Date.now();
      while (Date.now() - t0 < 15_000 && (await l.api('GET', '/v1/status')).json.power !== 'failing') await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 1500)); // past the quiesce (at most 1 s): writing the vault
      for (const sp of kill) {
        expect((await l.api('GET', '/v1/status')).json.power, 'still dumping').toBe('failing');
        const c = await l.cli(['fault', 'sp-crash', 'alpha', sp, '--json'], 30_000);
        expect(c.code, `sp-crash ${sp} during the dump: ${c.err}${c.out}`).toBe(0);
        crashes.push(c.json);
      }
      const f = await fail;
      expect(f.code, f.err).toBe(0);
      pf = f.json;
    } finally {
      w.stop();
    }
    const rep = await done;
    console.log(`sp-crash: ${JSON.stringify(crashes)}\npower-fail: ${JSON.stringify(pf)}\n${formatWriteReport(rep)}`);
    return { w, crashes, pf };
  }

  it('is accepted; the torn vault is not replayed, the peer vault is; nothing acknowledged is lost', async () => {
    lab = await startLab({ idleMs: 0, holdUpMs: 60_000, vaultBandwidth: '256K' });
    const l = lab;
    // SP A owns disk0, where the writes go; SP B holds the mirror of its dirty pages.
    const { w, crashes, pf } = await crashDuringDump(l, ['A'], 51);
    expect(crashes[0]).toMatchObject({ sp: 'A', signal: 'SIGKILL', duringDump: true, takeover: null });
    expect(pf.power).toBe('off');
    const a = pf.sps.find((s: any) => s.sp === 'A');
    const b = pf.sps.find((s: any) => s.sp === 'B');
    expect(a.dumped, 'the crashed SP did not complete its dump').not.toBe(true);
    expect(a.error).toMatch(/SP A exited .*SIGKILL/);
    expect(b, 'the peer completed its dump').toMatchObject({ dumped: true });
    expect(b.pages).toBeGreaterThan(0); // it holds the mirror of A's dirty pages

    // The power is off now: an accurate refusal.
    const late = await l.cli(['fault', 'sp-crash', 'alpha', 'B']);
    expect(late.code).toBe(1);
    expect(late.err).toMatch(/power is off: the SPs are not running/);

    const pr = await l.ok(['fault', 'power-restore', 'alpha'], 60_000);
    console.log(`power-restore: ${JSON.stringify(pr)}`);
    // A's copy is torn (never replayed); B's is used
    expect(JSON.stringify(pr.restored)).toMatch(/torn/);
    // Every acknowledged write is there, through either port; no LUN lost its cache.
    expect((await l.lun('disk0')).cacheDirty).toBe(false);
    for (const sp of ['A', 'B'] as const) {
      const v = await verifyLedger(w.ledger, { endpoints: [l.uri(sp)] });
      console.log(`after restore, through SP ${sp}: ${formatVerifyReport(v)}`);
      expect(v.ok, `through SP ${sp}`).toBe(true);
    }
  });

  it('both SPs killed during the dump: no complete vault holds the dirty cache, the LUN goes cache-dirty until recovered', async () => {
    lab = await startLab({ idleMs: 0, holdUpMs: 60_000, vaultBandwidth: '256K' });
    const l = lab;
    const { w, pf } = await crashDuringDump(l, ['A', 'B'], 52);
    expect(pf.power).toBe('off');
    for (const s of pf.sps) expect(s.error, `SP ${s.sp}`).toMatch(/exited .*SIGKILL/);
    await l.ok(['fault', 'power-restore', 'alpha'], 60_000);
    const lun = await l.lun('disk0');
    console.log(`disk0 after restore: ${JSON.stringify(lun)}`);
    expect(lun).toMatchObject({ cacheDirty: true, state: 'cache-dirty' });
    expect(lun.cacheDirtyReason).toMatch(/no complete vault image holds it/);
    expect(lun.cacheDirtyReason).toMatch(/torn/);
    // never stale: host reads fail with EIO until the loss is accepted
    const v = await verifyLedger(w.ledger, { endpoints: [l.uri('A')], allowReadErrors: true });
    expect(v.violations).toBe(0);
    expect(v.unreadable).toBe(v.blocksChecked);
    await l.ok(['lun', 'recover', 'alpha', 'disk0', '--accept-data-loss']);
    expect((await l.lun('disk0')).cacheDirty).toBe(false);
  });
});
