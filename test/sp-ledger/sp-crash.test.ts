/**
 * Guarantee 1 across SP crashes (issue 4): the ledger writes through both SPs' ports (the owner's
 * directly, the peer's forwarded over CMI), an SP is SIGKILLed under load, the host reconnects to
 * the surviving port, and every acknowledged write must be there: through the survivor right
 * away, and through both ports again after the SP restarts and fails back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { formatVerifyReport, formatWriteReport, LedgerWriter, verifyLedger } from '../ledger/ledger.mjs';
import { startLab, type SpLab } from './lab.js';

const WRITER = { connections: 4, depth: 4, blocks: 512, durationMs: 25_000, maxWrites: 60_000, reconnectTimeoutMs: 20_000 };

describe('ledger across SP crashes', () => {
  let lab: SpLab | null = null;
  afterEach(async () => {
    await lab?.down();
    lab = null;
  });

  for (const [name, victim, survivor, seed] of [
    ['the owner SP', 'A', 'B', 21],
    ['the peer SP', 'B', 'A', 22],
  ] as const) {
    it(`keeps every acknowledged write when ${name} (SP ${victim}) is killed under load`, async () => {
      lab = await startLab({ idleMs: 0 }); // idle destaging off: acked data sits in the mirrored cache
      const l = lab;
      expect((await l.lun('disk0')).currentOwner).toBe('A');
      const w = new LedgerWriter({ ...WRITER, endpoints: [l.uri('A'), l.uri('B')], seed });
      const done = w.run();
      let crash: any;
      try {
        await w.until((s) => s.acked >= 1500, 30_000);
        const before = w.stats.acked;
        crash = await l.ok(['fault', 'sp-crash', 'alpha', victim]);
        await w.until((s) => s.acked >= before + 1500, 30_000);
      } finally {
        w.stop();
      }
      const rep = await done;
      console.log(`${name} crash: ${JSON.stringify(crash)}\n${formatWriteReport(rep)}`);
      expect(rep.faults.length).toBeGreaterThanOrEqual(1); // the connections to the victim died
      expect(rep.gaveUp).toBe(0);
      expect((await l.lun('disk0')).currentOwner).toBe(survivor);

      const v1 = await verifyLedger(w.ledger, { endpoints: [l.uri(survivor)] });
      console.log(formatVerifyReport(v1));
      expect(v1.ok).toBe(true);
      expect(v1.blocksChecked).toBe(512);

      const restart = await l.ok(['fault', 'sp-restart', 'alpha', victim]);
      console.log(`restart: ${JSON.stringify(restart)}`);
      expect((await l.lun('disk0')).currentOwner).toBe('A'); // automatic failback
      for (const sp of ['A', 'B'] as const) {
        const v = await verifyLedger(w.ledger, { endpoints: [l.uri(sp)] });
        if (!v.ok) console.log(formatVerifyReport(v));
        expect(v.ok, `after restart, through SP ${sp}`).toBe(true);
      }
    });
  }
});
