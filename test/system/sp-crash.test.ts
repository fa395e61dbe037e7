/**
 * Guarantee 1 across SP crashes (issue 4): ledgers write through both SPs' ports (the owner's
 * directly, the peer's forwarded over CMI) to both LUNs (disk0 owned by A, disk1 by B), an SP is
 * SIGKILLed under load, the host reconnects to the surviving port, and every acknowledged write
 * must be there: through the survivor right away, and through both ports again after the SP
 * restarts and fails back. So each crash covers a takeover (the dead SP's LUN, from the
 * survivor's mirror copy) and a dead forwarding path (the survivor's own LUN).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { formatVerifyReport, formatWriteReport, LedgerWriter, verifyLedger, type WriteReport } from '../../src/check/ledger/index.js';
import { startLab, type SpLab } from '../support/sp-lab.js';

const WRITER = { connections: 4, depth: 4, blocks: 512, durationMs: 40_000, maxWrites: 80_000, reconnectTimeoutMs: 20_000 };
const LUNS = ['disk0', 'disk1'] as const;
type Sp = 'A' | 'B';

async function verifyAll(l: SpLab, writers: LedgerWriter[], sps: Sp[], label: string): Promise<void> {
  for (const [i, w] of writers.entries()) {
    for (const sp of sps) {
      const v = await verifyLedger(w.ledger, { endpoints: [l.uri(sp, LUNS[i])] });
      console.log(`${label}, ${LUNS[i]} via SP ${sp}: ${formatVerifyReport(v)}`);
      expect(v.ok, `${label}: ${LUNS[i]} through SP ${sp}`).toBe(true);
      expect(v.blocksChecked).toBe(512);
    }
  }
}

function startWriters(l: SpLab, seed: number): { writers: LedgerWriter[]; done: Promise<WriteReport[]> } {
  const writers = LUNS.map((lun, i) => new LedgerWriter({ ...WRITER, endpoints: [l.uri('A', lun), l.uri('B', lun)], seed: seed + i }));
  return { writers, done: Promise.all(writers.map((w) => w.run())) };
}

const acked = (ws: LedgerWriter[]) => Math.min(...ws.map((w) => w.stats.acked));

describe('ledger across SP crashes', { timeout: 120_000 }, () => {
  let lab: SpLab | null = null;
  afterEach(async () => {
    await lab?.down();
    lab = null;
  });

  for (const [victim, survivor, seed] of [
    ['A', 'B', 21],
    ['B', 'A', 23],
  ] as const) {
    it(`keeps every acknowledged write when SP ${victim} is killed under load (owner of ${victim === 'A' ? 'disk0' : 'disk1'}, peer of the other)`, async () => {
      lab = await startLab({ idleMs: 0 }); // idle destaging off: acked data sits in the mirrored cache
      const l = lab;
      expect((await l.lun('disk0')).currentOwner).toBe('A');
      expect((await l.lun('disk1')).currentOwner).toBe('B');
      const { writers, done } = startWriters(l, seed);
      let crash: any;
      try {
        await Promise.all(writers.map((w) => w.until((s) => s.acked >= 1500, 30_000)));
        const before = acked(writers);
        crash = await l.ok(['fault', 'sp-crash', 'alpha', victim]);
        await Promise.all(writers.map((w) => w.until((s) => s.acked >= before + 1500, 30_000)));
      } finally {
        for (const w of writers) w.stop();
      }
      const reps = await done;
      console.log(`SP ${victim} crash: ${JSON.stringify(crash)}\n${reps.map(formatWriteReport).join('\n')}`);
      expect(crash.takeover).toMatchObject({ sp: survivor, luns: [victim === 'A' ? 0 : 1] });
      expect(crash.takeover.pages).toBeGreaterThan(0); // the takeover replayed the mirror copy
      for (const rep of reps) {
        expect(rep.faults.length).toBeGreaterThanOrEqual(1); // the connections to the victim died
        expect(rep.gaveUp).toBe(0);
      }
      for (const lun of LUNS) expect((await l.lun(lun)).currentOwner).toBe(survivor);
      await verifyAll(l, writers, [survivor], `after SP ${victim} crash`);

      const restart = await l.ok(['fault', 'sp-restart', 'alpha', victim]);
      console.log(`restart: ${JSON.stringify(restart)}`);
      expect((await l.lun('disk0')).currentOwner).toBe('A'); // automatic failback
      expect((await l.lun('disk1')).currentOwner).toBe('B');
      await verifyAll(l, writers, ['A', 'B'], `after SP ${victim} restart`);
    });
  }

  it('keeps every acknowledged write across alternating crashes and restarts under continuous load', async () => {
    lab = await startLab({ idleMs: 0 });
    const l = lab;
    const { writers, done } = startWriters(l, 25);
    const events: string[] = [];
    try {
      for (const sp of ['A', 'B', 'A'] as const) {
        const before = acked(writers);
        await Promise.all(writers.map((w) => w.until((s) => s.acked >= before + 1000, 30_000)));
        const c = await l.ok(['fault', 'sp-crash', 'alpha', sp]);
        events.push(`crash ${sp}: takeover ${c.takeover?.ms} ms, ${c.takeover?.pages} pages`);
        const mid = acked(writers);
        await Promise.all(writers.map((w) => w.until((s) => s.acked >= mid + 1000, 30_000)));
        const r = await l.ok(['fault', 'sp-restart', 'alpha', sp]);
        events.push(`restart ${sp}: ${r.ms} ms, failback ${JSON.stringify(r.failback?.map((f: any) => f.lun))}`);
      }
      const before = acked(writers);
      await Promise.all(writers.map((w) => w.until((s) => s.acked >= before + 1000, 30_000)));
    } finally {
      for (const w of writers) w.stop();
    }
    const reps = await done;
    console.log(`${events.join('\n')}\n${reps.map(formatWriteReport).join('\n')}`);
    for (const rep of reps) expect(rep.gaveUp).toBe(0);
    await verifyAll(l, writers, ['A', 'B'], 'after alternating crashes');
  });
});
