// The whole two-SP primary array (chassis process and both SP processes) dies in the middle of
// host writes through both SP ports; the single-process secondary array is promoted and must hold
// every acknowledged write (synchronous mirroring: the ack waited for it).
import { afterEach, describe, expect, it } from 'vitest';
import { formatVerifyReport, formatWriteReport, LedgerWriter, verifyLedger } from '../../src/check/ledger/index.js';
import { makeLab, until, type MirrorSpLab } from '../support/mirror-sp-lab.js';

let lab: MirrorSpLab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});

describe('promote the secondary after the two-SP primary array is killed', { timeout: 120_000 }, () => {
  it('every acknowledged write is on the promoted secondary', async () => {
    lab = await makeLab({ mode: 'child' });
    const l = lab;
    await l.api('POST', '/v1/mirrors', { lun: 'disk0', name: 'm0', regionSize: 65536 });
    await l.api('POST', '/v1/mirrors/m0/secondaries', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(async () => (await l.api('GET', '/v1/mirrors/m0')).images[1].link === 'connected', 20_000, 'link up');
    const w = new LedgerWriter({ endpoints: [l.uri('A'), l.uri('B')], connections: 2, depth: 8, blocks: 2048, seed: 91, reconnectTimeoutMs: 300, opTimeoutMs: 5000, durationMs: 60_000 });
    const done = w.run();
    try {
      await w.until((s) => s.acked >= 2000, 60_000);
      // the chassis dies; its SP processes lose their IPC channel and stop at once
      l.child!.proc.kill('SIGKILL');
      await new Promise((r) => l.child!.proc.once('exit', r));
    } finally {
      w.stop();
    }
    const rep = await done.catch((e: unknown) => {
      throw new Error(`writer: ${(e as Error).message}`);
    });
    console.log(formatWriteReport(rep));
    const view = await l.bravoNode().promote('m0', { force: true }); // the primary is dead: only --force promotes
    expect(view.local.role).toBe('primary');
    const v = await verifyLedger(w.ledger, { endpoints: [l.bravoUri()] });
    console.log(formatVerifyReport(v));
    expect(v.violations, JSON.stringify(v.details.slice(0, 3))).toBe(0);
    expect(v.ok).toBe(true);
    expect(v.ackedBlocks).toBeGreaterThan(1000);
  });
});
