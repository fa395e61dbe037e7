/**
 * Guarantee 1 across trespass (issue 4): the LUN's ownership moves back and forth between the SPs
 * while the ledger writes through both ports; no connection should even notice, and every
 * acknowledged write is there through either port.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { formatVerifyReport, formatWriteReport, LedgerWriter, verifyLedger } from '../../src/check/ledger/index.js';
import { startLab, type SpLab } from '../support/sp-lab.js';

describe('ledger across trespass', { timeout: 120_000 }, () => {
  let lab: SpLab | null = null;
  afterEach(async () => {
    await lab?.down();
    lab = null;
  });

  it('keeps every acknowledged write while the LUN trespasses A -> B -> A under load', async () => {
    lab = await startLab({ idleMs: 0 });
    const l = lab;
    const w = new LedgerWriter({ connections: 4, depth: 4, blocks: 512, durationMs: 30_000, maxWrites: 60_000, endpoints: [l.uri('A'), l.uri('B')], seed: 31 });
    const done = w.run();
    const moves: any[] = [];
    try {
      for (const to of ['B', 'A'] as const) {
        const before = w.stats.acked;
        await w.until((s) => s.acked >= before + 1500, 30_000);
        moves.push(await l.ok(['lun', 'trespass', 'alpha', 'disk0', '--to', to]));
        expect((await l.lun('disk0')).currentOwner).toBe(to);
      }
      const before = w.stats.acked;
      await w.until((s) => s.acked >= before + 1000, 30_000);
    } finally {
      w.stop();
    }
    const rep = await done;
    console.log(`trespass: ${JSON.stringify(moves)}\n${formatWriteReport(rep)}`);
    expect(moves.map((m) => [m.from, m.to])).toEqual([
      ['A', 'B'],
      ['B', 'A'],
    ]);
    // A trespass is not a fault: nothing is lost in flight, nothing fails.
    expect(rep.faults).toEqual([]);
    expect(rep.failed).toBe(0);
    expect(rep.acked).toBe(rep.issued);
    for (const sp of ['A', 'B'] as const) {
      const v = await verifyLedger(w.ledger, { endpoints: [l.uri(sp)] });
      console.log(formatVerifyReport(v));
      expect(v.ok, `through SP ${sp}`).toBe(true);
    }
  });
});
