// Faults of a mirrored two-SP primary array (alpha, chassis in this process) under a running
// acknowledged-write ledger: the owner SP is SIGKILLed mid-write, and the whole array loses power
// mid-write (battery good) and gets it back.
import { afterEach, describe, expect, it } from 'vitest';
import { formatVerifyReport, formatWriteReport, LedgerWriter, verifyLedger } from '../../src/check/ledger/index.js';
import { imageOf, makeLab, mirrorLun, MiB, until, type MirrorSpLab } from '../support/mirror-sp-lab.js';

let lab: MirrorSpLab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});

const WRITER = { connections: 2, depth: 4, blocks: 512, durationMs: 30_000, maxWrites: 40_000, reconnectTimeoutMs: 15_000 };

/** Waits until the mirror is quiet and in sync again, then compares both images region by region. */
async function settledAndIdentical(l: MirrorSpLab): Promise<void> {
  const a = l.alphaNode();
  await until(
    () => {
      const v = a.get('m0');
      const img = imageOf(a, 'm0', 'bravo:0')!;
      return img.link === 'connected' && !img.resync && img.fractureLog?.regions === 0 && v.writeIntentLog?.inFlight === 0 && (img.state === 'SYNCHRONIZED' || img.state === 'CONSISTENT');
    },
    30_000,
    'mirror settled',
  );
  const v = await a.verify('m0');
  expect(v.mismatched).toEqual([]);
  expect(v.identical).toBe(true);
}

describe('mirrored two-SP primary under faults', { timeout: 120_000 }, () => {
  it('owner SP crash mid-write: the peer takes over, writes go on, the images stay identical with no full resync', async () => {
    lab = await makeLab({ sps: { cache: { idleMs: 0, highWatermark: 0.75, lowWatermark: 0.5, writeThrough: false } } });
    const l = lab;
    await mirrorLun(l.alphaNode(), 'bravo', 'disk0', 'm0', true);
    const w = new LedgerWriter({ ...WRITER, endpoints: [l.uri('A'), l.uri('B')], seed: 71 });
    const done = w.run();
    let crash: any;
    try {
      await w.until((s) => s.acked >= 800, 30_000);
      crash = await l.alpha!.chassis!.spCrash('A');
      const mid = w.stats.acked;
      await w.until((s) => s.acked >= mid + 800, 30_000);
    } finally {
      w.stop();
    }
    const rep = await done;
    console.log(`SP A crash: ${JSON.stringify(crash.takeover)}\n${formatWriteReport(rep)}`);
    expect(crash.takeover).toMatchObject({ sp: 'B', luns: [0] });
    expect(rep.gaveUp).toBe(0);
    const v = await verifyLedger(w.ledger, { endpoints: [l.uri('B')] });
    console.log(formatVerifyReport(v));
    expect(v.ok).toBe(true);
    await settledAndIdentical(l);
    // SP A comes back (it learns the roles at boot) and gets disk0 back; mirrored writes go on.
    const restart: any = await l.alpha!.chassis!.spRestart('A');
    expect(restart.failback).toMatchObject([{ lun: 0, to: 'A' }]);
    const w2 = new LedgerWriter({ ...WRITER, endpoints: [l.uri('A'), l.uri('B')], seed: 72, durationMs: 1000, maxWrites: 1000 });
    const rep2 = await w2.run();
    expect(rep2.acked).toBe(rep2.issued);
    await settledAndIdentical(l);
    // Whatever resynced after the crash was marked regions only, never the LUN.
    for (const r of l.alphaEvents('mirror.resync-done')) {
      expect(r.full).toBe(false);
      expect(r.bytesDone as number).toBeLessThan(4 * MiB);
    }
  });

  it('whole-array power failure mid-write (battery good): the write-intent log drives a partial resync after the restore', async () => {
    lab = await makeLab({ sps: { cache: { idleMs: 0, highWatermark: 0.75, lowWatermark: 0.5, writeThrough: false } } });
    const l = lab;
    const ch = l.alpha!.chassis!;
    await mirrorLun(l.alphaNode(), 'bravo', 'disk0', 'm0', true);
    const w = new LedgerWriter({ ...WRITER, endpoints: [l.uri('A'), l.uri('B')], seed: 73, reconnectTimeoutMs: 2000 });
    const done = w.run();
    let pf: any;
    try {
      await w.until((s) => s.acked >= 1000, 30_000);
      pf = await ch.powerFail();
    } finally {
      w.stop();
    }
    const rep = await done;
    console.log(`power-fail: ${JSON.stringify({ power: pf.power, holdUpMs: pf.holdUpMs, sps: pf.sps })}\n${formatWriteReport(rep)}`);
    expect(pf.power).toBe('off');
    expect(l.alphaEvents('mirror.crashed').length).toBe(1);
    const mark = l.alphaEvents().length;
    const pr: any = await ch.powerRestore();
    expect(pr.power).toBe('on');
    await until(() => l.alphaEvents('mirror.resync-done').some((e) => l.alphaEvents().indexOf(e) >= mark), 30_000, 'resync after the restore');
    const after = l.alphaEvents().slice(mark);
    const unclean = after.find((e) => e.type === 'mirror.unclean-stop');
    const resync = after.find((e) => e.type === 'mirror.resync-done')!;
    console.log(`unclean-stop: ${JSON.stringify(unclean)}\nresync-done: ${JSON.stringify(resync)}`);
    expect(unclean, 'unclean-stop event').toBeDefined();
    expect(unclean!.regions as number).toBeGreaterThan(0);
    expect(after.indexOf(unclean!)).toBeLessThan(after.indexOf(resync));
    expect(resync.full).toBe(false);
    expect(resync.bytesDone as number).toBeLessThanOrEqual(unclean!.bytes as number);
    expect(resync.bytesDone as number).toBeLessThan(32 * MiB / 8);
    // every acknowledged write survived the power failure (vault), on both SPs' ports
    for (const sp of ['A', 'B'] as const) {
      const v = await verifyLedger(w.ledger, { endpoints: [l.uri(sp)] });
      console.log(`after restore via SP ${sp}: ${formatVerifyReport(v)}`);
      expect(v.ok).toBe(true);
    }
    await settledAndIdentical(l);
    // and the array mirrors new writes again
    const w2 = new LedgerWriter({ ...WRITER, endpoints: [l.uri('A'), l.uri('B')], seed: 74, durationMs: 1000, maxWrites: 1000 });
    const rep2 = await w2.run();
    expect(rep2.acked).toBe(rep2.issued);
    await settledAndIdentical(l);
  });
});
