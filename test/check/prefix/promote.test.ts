/**
 * The prefix verbs on the experiment they exist for: `sanbox check prefix write` drives dependent
 * writes into both LUNs of an asynchronous consistency group on alpha (its own process) while the
 * link lags and is cut, alpha is SIGKILLed mid-write, the group is promoted on bravo, and `sanbox
 * check prefix verify` against bravo's NBD exports says the copy is a prefix (exit 0) and reports
 * the acknowledged writes lost and the lag (RPO).
 */
import { describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Cleanups } from '../../support/crash-pair.js';
import { asyncGroupPair } from '../../support/group-pair.js';
import { kill, startChild } from '../../support/workload.js';
import { runSanbox } from '../../support/launch.js';
import { requireBuild } from '../../support/paths.js';

const MiB = 1024 * 1024;
const LUN_SIZE = 64 * MiB; // 16384 fresh blocks per LUN: more than the writer reaches before the kill

describe('sanbox check prefix across a primary crash and a promote', () => {
  it('the promoted secondary is a prefix; the lost writes and the RPO are reported', { timeout: 120_000 }, async () => {
    requireBuild('cli/check-verbs.js');
    const undo: Cleanups = [];
    try {
      const { root, emu, bravo, cfgPath, setupPath } = await asyncGroupPair(undo, 'sanbox-check-promote-', {
        link: { settings: { 'a-to-b': { latencyMs: 2 }, 'b-to-a': { latencyMs: 2 } }, cutResetMs: 400 },
        lunSize: LUN_SIZE,
        writelogBytes: 256 * MiB,
      });
      const alpha = await startChild(cfgPath, setupPath);
      undo.push(() => kill(alpha.proc));

      const state = join(root, 'prefix.json');
      const at = (port: number) => `nbd://127.0.0.1:${port}/disk0,nbd://127.0.0.1:${port}/disk1`;
      const writer = runSanbox(['check', 'prefix', 'write', '--uri', at(alpha.nbdPort), '--state', state, '--seconds', '60', '--seed', '9', '--json', '-q'], {}, 90_000);
      // Once the writer writes, cut the link for a while (the writelog fills, bravo falls behind), then kill alpha.
      const deadline = Date.now() + 20_000;
      const image = join(root, 'alpha', 'lun0.img');
      while (statSync(image).blocks === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(statSync(image).blocks, 'the writer never wrote').toBeGreaterThan(0);
      // ...and bravo has applied some of it (on a loaded machine the first batch can take a
      // while: a cut before it would leave bravo empty, with no prefix to check).
      const bravoImage = join(root, 'bravo', 'lun0.img');
      while (statSync(bravoImage).blocks === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(statSync(bravoImage).blocks, 'bravo never applied a write').toBeGreaterThan(0);
      emu.cutLink('both');
      await new Promise((r) => setTimeout(r, 700));
      emu.restore();
      await new Promise((r) => setTimeout(r, 100));
      await kill(alpha.proc);
      const w = await writer; // stops by itself: every connection is lost
      expect(w.code, w.err).toBe(0);
      expect(w.json.lostConnections).toBe(2);
      expect(w.json.acked).toBeGreaterThan(100);

      expect(bravo.mirrors!.groups.get('g0').record.bypass.on, 'never in bypass').toBe(false);
      await bravo.mirrors!.groups.promote('g0', { force: true });
      const v = await runSanbox(['check', 'prefix', 'verify', '--uri', at(bravo.nbd.port), '--state', state, '--json']);
      expect(v.code, v.err + v.out).toBe(0);
      expect(v.json).toMatchObject({ ok: true, violations: 0, acked: w.json.acked });
      expect(v.json.present).toBeGreaterThan(0);
      expect(v.json.missingAcked).toBe(v.json.acked - (v.json.present - v.json.presentUnacked));
      expect(v.json.missingAcked).toBeGreaterThan(0); // asynchronous: the cut left a tail behind
      expect(v.json.lagSeconds).toBeGreaterThan(0);
      console.log(`promoted bravo: ${v.json.present} writes present of ${v.json.acked} acknowledged, ${v.json.missingAcked} lost, RPO ${v.json.lagSeconds} s`);
    } finally {
      while (undo.length) await undo.pop()!();
    }
  });
});
