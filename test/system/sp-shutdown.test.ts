/**
 * An orderly `sanbox down` destages every SP's cache: afterwards the image files themselves hold
 * every acknowledged write (checked offline with verifyImageFile), with no fault before, and
 * after an SP crash + restart.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatVerifyReport, formatWriteReport, LedgerWriter, verifyImageFile } from '../../src/check/ledger/index.js';
import { startLab, type SpLab } from '../support/sp-lab.js';

const WRITER = { connections: 4, depth: 4, blocks: 512, durationMs: 3000, maxWrites: 8000 };

describe('ledger on the image files after sanbox down', { timeout: 120_000 }, () => {
  let lab: SpLab | null = null;
  afterEach(async () => {
    await lab?.down();
    lab = null;
  });

  for (const crash of [false, true]) {
    it(`every acknowledged write is in the image file after down${crash ? ' (after an SP crash + restart)' : ''}`, async () => {
      lab = await startLab({ idleMs: 0 });
      const l = lab;
      if (crash) {
        await l.ok(['fault', 'sp-crash', 'alpha', 'A']);
        await l.ok(['fault', 'sp-restart', 'alpha', 'A']);
      }
      const w = new LedgerWriter({ ...WRITER, endpoints: [l.uri('A'), l.uri('B')], seed: crash ? 52 : 51 });
      const rep = await w.run();
      console.log(formatWriteReport(rep));
      expect(rep.acked).toBe(rep.issued);
      const st = await l.status();
      console.log(`dirty before down: ${JSON.stringify(st.sps.map((s: any) => [s.name, s.cache.dirtyBytes]))}`);
      const down = await l.stop();
      console.log(`down: ${JSON.stringify(down)}`);
      expect(down.code).toBe(0);
      const v = verifyImageFile(w.ledger, join(l.dir, 'images', 'alpha', 'lun0.img'));
      console.log(formatVerifyReport(v));
      expect(v.ok).toBe(true);
    });
  }
});
