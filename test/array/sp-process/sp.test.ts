/**
 * Two-SP arrays with real processes and sockets: writes through both SP ports (qemu-io), SIGKILL
 * of the owner SP, restart and failback, trespass under load, power failure with a good battery,
 * battery failure + power failure (cache dirty, EIO, recover), and bad input.
 * Needs the CLI built (npm run build) and qemu-io.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SPS } from '../../../src/array/chassis/index.js';
import { assertOneOwner, cli, qemuIo, startSpArray, status, type SpArray } from '../../support/sp-array.js';

// qemu-io is one of the real clients these tests drive (installed by .ci/run): its absence is a
// failure of the set-up, not a reason to skip.
const MiB = 1024 * 1024;

/** Writes pattern (i+1) at i MiB of each LUN, alternating SP ports; returns what was acknowledged. */
async function writeSet(a: SpArray, base: number, n: number): Promise<{ lun: string; off: number; pat: number }[]> {
  const acked: { lun: string; off: number; pat: number }[] = [];
  for (let i = 0; i < n; i++) {
    for (const lun of ['d0', 'd1']) {
      const pat = (base + i) & 0xff;
      const port = i % 2 === 0 ? a.ports.A : a.ports.B;
      await qemuIo(port, lun, [`write -P ${pat} ${i * MiB} 1M`]);
      acked.push({ lun, off: i * MiB, pat });
    }
  }
  return acked;
}

async function verify(port: number, acked: { lun: string; off: number; pat: number }[]): Promise<void> {
  const latest = new Map<string, { lun: string; off: number; pat: number }>();
  for (const w of acked) latest.set(`${w.lun}:${w.off}`, w);
  for (const lun of ['d0', 'd1']) {
    const cmds = [...latest.values()].filter((w) => w.lun === lun).map((w) => `read -P ${w.pat} ${w.off} 1M`);
    if (cmds.length) await qemuIo(port, lun, cmds);
  }
}

describe('two SPs: crash, takeover, restart, failback', () => {
  let a: SpArray;
  beforeAll(async () => {
    a = await startSpArray('spcrash');
  }, 60_000);
  afterAll(async () => a?.stop(), 30_000);

  it('serves every LUN on both ports, owner optimized, write-back mirrored', async () => {
    const st = await status(a);
    expect(st.sps.map((s) => [s.name, s.state, s.lunsOwned, s.cache.mode])).toEqual([
      ['A', 'up', [0], 'write-back'],
      ['B', 'up', [1], 'write-back'],
    ]);
    expect(st.luns.map((l) => [l.name, l.defaultOwner, l.currentOwner])).toEqual([
      ['d0', 'A', 'A'],
      ['d1', 'B', 'B'],
    ]);
    assertOneOwner(st);
  });

  it('a grown LUN has its new size on both SP ports', async () => {
    const grow = await cli(['lun', 'grow', 'd1', '48M', '--api', a.url]);
    expect(grow.code).toBe(0);
    for (const port of [a.ports.A, a.ports.B]) {
      expect(execFileSync('nbdinfo', ['--size', `nbd://127.0.0.1:${port}/d1`]).toString().trim()).toBe(String(48 * MiB));
    }
    // Written past the old end through the forwarding SP, read back from the owner.
    await qemuIo(a.ports.A, 'd1', [`write -P 0x47 ${40 * MiB} 1M`]);
    await qemuIo(a.ports.B, 'd1', [`read -P 0x47 ${40 * MiB} 1M`]);
  }, 60_000);

  it('every acknowledged write survives a SIGKILL of the owner, read from the survivor', async () => {
    const acked = await writeSet(a, 0x10, 4);
    const before = await status(a);
    expect(before.sps[0]!.cache.dirtyBytes).toBeGreaterThan(0); // held only in cache (+ mirror)
    const r = await cli(['fault', 'sp-crash', 'spcrash', 'A', '--api', a.url, '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const out = JSON.parse(r.stdout) as { takeover: { ms: number; luns: number[]; sp: string } };
    expect(out.takeover.sp).toBe('B');
    expect(out.takeover.luns).toEqual([0]);
    expect(out.takeover.ms).toBeLessThan(5000);
    const st = await status(a);
    expect(st.sps[0]!.state).toBe('down');
    expect(st.sps[1]!.lunsOwned).toEqual([0, 1]);
    expect(st.sps[1]!.cache.mode).toBe('write-through');
    expect(st.sps[1]!.cache.reason).toBe('peer SP down');
    assertOneOwner(st);
    await verify(a.ports.B, acked);
    // more writes while A is down, then restart: A drops its stale state, gets d0 back
    const more = await writeSet(a, 0x40, 2).catch(async () => {
      // port A is down: write through B only
      const acc: { lun: string; off: number; pat: number }[] = [];
      for (const lun of ['d0', 'd1']) {
        await qemuIo(a.ports.B, lun, [`write -P 0x44 ${6 * MiB} 1M`]);
        acc.push({ lun, off: 6 * MiB, pat: 0x44 });
      }
      return acc;
    });
    const rs = await cli(['fault', 'sp-restart', 'spcrash', 'A', '--api', a.url, '--json']);
    expect(rs.code, rs.stderr + rs.stdout).toBe(0);
    const st2 = await status(a);
    expect(st2.sps.map((s) => [s.state, s.lunsOwned])).toEqual([
      ['up', [0]],
      ['up', [1]],
    ]);
    expect(st2.sps[0]!.nbd.port).toBe(a.ports.A);
    assertOneOwner(st2);
    await verify(a.ports.A, [...acked, ...more]);
    await verify(a.ports.B, [...acked, ...more]);
  }, 120_000);

  it('bad input gets a clear error and changes nothing', async () => {
    const before = await status(a);
    const bad = await cli(['fault', 'sp-crash', 'spcrash', 'C', '--api', a.url]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown SP "C"/);
    const nolun = await cli(['lun', 'trespass', 'spcrash', 'nosuch', '--api', a.url]);
    expect(nolun.code).toBe(1);
    expect(nolun.stderr).toMatch(/no LUN "nosuch"/);
    const wrong = await cli(['lun', 'trespass', 'other', 'd0', '--api', a.url]);
    expect(wrong.code).toBe(1);
    await expect(a.api.request('POST', '/v1/faults/sp-crash', { sp: 'Z' })).rejects.toMatchObject({ status: 400 });
    await expect(a.api.request('POST', '/v1/faults/sp-restart', { sp: 'A' })).rejects.toMatchObject({ status: 409 });
    // trespass to a down SP
    expect((await cli(['fault', 'sp-crash', 'spcrash', 'B', '--api', a.url])).code).toBe(0);
    const down = await cli(['lun', 'trespass', 'spcrash', 'd0', '--to', 'B', '--api', a.url]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/SP B is down/);
    const mid = await status(a);
    expect(mid.luns.map((l) => l.currentOwner)).toEqual(['A', 'A']);
    expect((await cli(['fault', 'sp-restart', 'spcrash', 'B', '--api', a.url])).code).toBe(0);
    const after = await status(a);
    expect(after.luns.map((l) => l.currentOwner)).toEqual(before.luns.map((l) => l.currentOwner));
    assertOneOwner(after);
  }, 120_000);

  it('trespass under load: held I/O resumes on the new owner, nothing acknowledged is lost', async () => {
    const load = (async () => {
      const acc: { lun: string; off: number; pat: number }[] = [];
      for (let i = 0; i < 12; i++) {
        const pat = 0x80 + i;
        await qemuIo(i % 2 ? a.ports.A : a.ports.B, 'd0', [`write -P ${pat} ${(i % 4) * MiB} 1M`]);
        acc.push({ lun: 'd0', off: (i % 4) * MiB, pat });
      }
      return acc;
    })();
    for (const to of ['B', 'A', 'B', 'A']) {
      const r = await cli(['lun', 'trespass', 'spcrash', 'd0', '--to', to, '--api', a.url, '--json']);
      expect(r.code, r.stderr).toBe(0);
      assertOneOwner(await status(a));
    }
    const acked = await load;
    await verify(a.ports.A, acked);
    await verify(a.ports.B, acked);
  }, 120_000);
});

describe('two SPs: power and vault', () => {
  let a: SpArray;
  beforeAll(async () => {
    a = await startSpArray('sppower');
  }, 60_000);
  afterAll(async () => a?.stop(), 30_000);

  it('power failure with a good battery preserves every acknowledged write (vault dump + restore)', async () => {
    const acked = await writeSet(a, 0x20, 3);
    expect((await status(a)).sps.reduce((n, s) => n + s.cache.dirtyBytes, 0)).toBeGreaterThan(0);
    const pf = await cli(['fault', 'power-fail', 'sppower', '--api', a.url, '--json']);
    expect(pf.code, pf.stderr).toBe(0);
    const r = JSON.parse(pf.stdout) as { power: string; sps: { dumped: boolean }[] };
    expect(r.power).toBe('off');
    expect(r.sps.every((s) => s.dumped)).toBe(true);
    expect((await status(a)).sps.map((s) => s.state)).toEqual(['off', 'off']);
    await expect(qemuIo(a.ports.A, 'd0', ['read 0 512'])).rejects.toThrow();
    const pr = await cli(['fault', 'power-restore', 'sppower', '--api', a.url, '--json']);
    expect(pr.code, pr.stderr).toBe(0);
    const st = await status(a);
    expect(st.power).toBe('on');
    expect(st.luns.every((l) => !l.cacheDirty)).toBe(true);
    await verify(a.ports.A, acked);
    await verify(a.ports.B, acked);
  }, 120_000);

  it('battery failure + power failure: cache dirty (EIO), recover clears it', async () => {
    await qemuIo(a.ports.A, 'd0', ['write -P 0x55 0 1M']);
    const bf = await cli(['fault', 'battery-fail', 'sppower', '--undetected', '--api', a.url]);
    expect(bf.code, bf.stderr).toBe(0);
    expect((await cli(['fault', 'power-fail', 'sppower', '--api', a.url])).code).toBe(0);
    expect((await cli(['fault', 'power-restore', 'sppower', '--api', a.url])).code).toBe(0);
    const st = await status(a);
    const d0 = st.luns.find((l) => l.name === 'd0')!;
    expect(d0.state).toBe('cache-dirty');
    expect(d0.cacheDirtyReason).toMatch(/lost/);
    await expect(qemuIo(a.ports.A, 'd0', ['read 0 4096'])).rejects.toThrow(/Input\/output error/);
    await expect(qemuIo(a.ports.B, 'd0', ['read 0 4096'])).rejects.toThrow(/Input\/output error/);
    const no = await cli(['lun', 'recover', 'sppower', 'd0', '--api', a.url]);
    expect(no.code).toBe(2);
    const rec = await cli(['lun', 'recover', 'sppower', 'd0', '--accept-data-loss', '--api', a.url]);
    expect(rec.code, rec.stderr).toBe(0);
    expect((await status(a)).luns.find((l) => l.name === 'd0')!.state).toBe('online');
    await qemuIo(a.ports.B, 'd0', ['read 0 4096']);
    expect((await cli(['fault', 'battery-repair', 'sppower', '--api', a.url])).code).toBe(0);
  }, 120_000);
});

describe('two SPs: battery drain and recharge', () => {
  let a: SpArray;
  beforeAll(async () => {
    // Dumps at 8 MiB/s, so holding up takes measurable time; recharge 15% a second.
    a = await startSpArray('spbattery', {
      battery: { ...DEFAULT_SPS.battery, charge: 100, holdUpMs: 5000, thresholds: { low: 30, high: 60 }, rechargePerSec: 15 },
      vaultBytesPerSec: 8 * MiB,
    });
  }, 60_000);
  afterAll(async () => a?.stop(), 30_000);

  type WithBattery = Awaited<ReturnType<typeof status>> & { battery: { charge: number } };
  const battery = async () => ((await status(a)) as WithBattery).battery.charge;

  it('holding up through a power failure drains the battery in proportion to the time', async () => {
    await writeSet(a, 0x70, 2);
    const pf = await cli(['fault', 'power-fail', 'spbattery', '--api', a.url, '--json']);
    expect(pf.code, pf.stderr).toBe(0);
    const held = (JSON.parse(pf.stdout) as { ms: number }).ms;
    const charge = await battery();
    expect(charge).toBeLessThan(100);
    // 100% holds up 5000 ms: the drain is the share of that the SPs used (they stop at the end).
    expect(100 - charge).toBeLessThanOrEqual((100 * held) / 5000 + 0.2);
    expect((await cli(['fault', 'power-restore', 'spbattery', '--api', a.url])).code).toBe(0);
  }, 120_000);

  it('a low battery forces write-through; recharging returns write-back only above high', async () => {
    await a.api.request('POST', '/v1/battery', { charge: 20 });
    const deadline = Date.now() + 20_000;
    let modes: string[] = [];
    let charge = 0;
    let sawBetween = false;
    while (Date.now() < deadline) {
      const s = (await status(a)) as WithBattery;
      modes = s.sps.map((x) => x.cache.mode);
      charge = s.battery.charge;
      // Between low and high the SPs keep write-through (hysteresis), though above low.
      if (charge < 60) expect(modes).toEqual(['write-through', 'write-through']);
      if (charge > 30 && charge < 60) sawBetween = true;
      if (modes.every((m) => m === 'write-back')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(sawBetween).toBe(true);
    expect(modes).toEqual(['write-back', 'write-back']);
    expect(charge).toBeGreaterThanOrEqual(60);
  }, 60_000);
});
