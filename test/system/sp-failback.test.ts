/**
 * Failback of several LUNs: SP A owns disk0 and disk2 by default; when it crashes, SP B takes
 * both over, and when it restarts (failback automatic) each LUN must move back on its own turn:
 * one failback record per LUN from B to A, and afterwards each SP routes each LUN as the
 * ownership table says (A owner of disk0 and disk2, forwarding disk1; B the reverse). Data
 * written through either port before and after reads back through both.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { startLab, type SpLab } from '../support/sp-lab.js';

let lab: SpLab | null = null;
afterEach(async () => {
  await lab?.down();
  lab = null;
});

function qemuIo(uri: string, cmd: string): string {
  return execFileSync('qemu-io', ['-f', 'raw', '-c', cmd, uri], { encoding: 'utf8', timeout: 30_000 });
}

const routes = async (l: SpLab) => Object.fromEntries(((await l.status()).sps as { name: string; routes: Record<string, string> }[]).map((s) => [s.name, s.routes]));

describe('failback of several LUNs after an SP crash', { timeout: 120_000 }, () => {
  it('moves each LUN back on its own turn, and both SPs route every LUN as the ownership table says', async () => {
    lab = await startLab({ luns: ['disk0', 'disk1', 'disk2'] });
    const l = lab;
    expect(await routes(l)).toEqual({ A: { disk0: 'owner', disk1: 'forward', disk2: 'owner' }, B: { disk0: 'forward', disk1: 'owner', disk2: 'forward' } });
    qemuIo(l.uri('A', 'disk2'), 'write -P 0x5a 0 64k');
    const crash = await l.ok(['fault', 'sp-crash', 'alpha', 'A']);
    expect(crash.takeover).toMatchObject({ sp: 'B', luns: [0, 2] });
    qemuIo(l.uri('B', 'disk2'), 'write -P 0xa5 64k 64k');
    const restart = await l.ok(['fault', 'sp-restart', 'alpha', 'A']);
    expect(restart.failback.map((f: { lun: number; from: string; to: string }) => [f.lun, f.from, f.to])).toEqual([
      [0, 'B', 'A'],
      [2, 'B', 'A'],
    ]);
    for (const [name, owner] of [['disk0', 'A'], ['disk1', 'B'], ['disk2', 'A']] as const) expect((await l.lun(name)).currentOwner).toBe(owner);
    expect(await routes(l)).toEqual({ A: { disk0: 'owner', disk1: 'forward', disk2: 'owner' }, B: { disk0: 'forward', disk1: 'owner', disk2: 'forward' } });
    for (const sp of ['A', 'B'] as const) {
      expect(qemuIo(l.uri(sp, 'disk2'), 'read -P 0x5a 0 64k'), `disk2 via SP ${sp}`).toMatch(/read 65536\/65536 bytes/);
      expect(qemuIo(l.uri(sp, 'disk2'), 'read -P 0xa5 64k 64k'), `disk2 via SP ${sp}`).toMatch(/read 65536\/65536 bytes/);
    }
  });
});
