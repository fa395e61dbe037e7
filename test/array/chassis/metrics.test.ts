// GET /metrics of a two-SP array (`sanbox array serve --config` with sps: a chassis and two SP
// processes): each SP counts its own host I/O, and the chassis collects both over the
// chassis↔SP IPC at scrape time, label `sp`. qemu-io writes through each SP's port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NbdClient } from '../../../src/check/nbd-client/index.js';
import { qemuIo, startSpArray, type SpArray } from '../../support/sp-array.js';
import { requireBuild } from '../../support/paths.js';
import { sampleValue, samplesOf, scrape, type Family } from '../../support/prom-text.js';

requireBuild('control/api/metrics.js');

let a: SpArray;
beforeAll(async () => {
  a = await startSpArray('gamma');
}, 60_000);
afterAll(async () => a?.stop());

const io = (f: Map<string, Family>, metric: string, sp: string, lun: string, op: string) => sampleValue(f, metric, { array: 'gamma', sp, lun, op });

describe('GET /metrics of a two-SP array', () => {
  it('has each SP\'s state, cache, sessions and the battery', async () => {
    const f = await scrape(`${a.url}/metrics`);
    for (const sp of ['A', 'B']) {
      expect(sampleValue(f, 'sanbox_sp_state', { array: 'gamma', sp, state: 'up' })).toBe(1);
      expect(sampleValue(f, 'sanbox_sp_state', { array: 'gamma', sp, state: 'down' })).toBe(0);
      expect(sampleValue(f, 'sanbox_sp_io_stats_up', { array: 'gamma', sp })).toBe(1);
      expect(sampleValue(f, 'sanbox_sp_cache_size_bytes', { array: 'gamma', sp })).toBe(16 * 1024 * 1024);
      const mode = samplesOf(f, 'sanbox_sp_cache_mode', { array: 'gamma', sp });
      expect(mode).toHaveLength(1);
      expect(mode[0]!.labels.mode).toBe('write-back');
      expect(mode[0]!.value).toBe(1);
      expect(sampleValue(f, 'sanbox_nbd_sessions', { array: 'gamma', sp })).toBe(0);
    }
    expect(sampleValue(f, 'sanbox_power_state', { array: 'gamma', state: 'on' })).toBe(1);
    expect(sampleValue(f, 'sanbox_battery_charge_ratio', { array: 'gamma' })).toBeGreaterThan(0);
    expect(sampleValue(f, 'sanbox_battery_failed', { array: 'gamma' })).toBe(0);
  });

  it('counts host I/O on the SP that received it, whichever SP owns the LUN', async () => {
    const before = await scrape(`${a.url}/metrics`);
    await qemuIo(a.ports.A, 'd0', ['write -P 0xab 0 1M', 'read -P 0xab 0 64k']);
    await qemuIo(a.ports.B, 'd0', ['write -P 0xcd 1M 256k']);
    const after = await scrape(`${a.url}/metrics`);
    const d = (metric: string, sp: string, op: string) => io(after, metric, sp, 'd0', op) - io(before, metric, sp, 'd0', op);
    expect(d('sanbox_lun_bytes_total', 'A', 'write')).toBe(1 << 20);
    expect(d('sanbox_lun_bytes_total', 'A', 'read')).toBe(64 << 10);
    expect(d('sanbox_lun_bytes_total', 'B', 'write')).toBe(256 << 10);
    expect(d('sanbox_lun_bytes_total', 'B', 'read')).toBe(0);
    expect(d('sanbox_lun_ops_total', 'A', 'write')).toBeGreaterThanOrEqual(1);
    expect(d('sanbox_lun_latency_seconds_count', 'B', 'write')).toBe(d('sanbox_lun_ops_total', 'B', 'write'));
    expect(d('sanbox_lun_errors_total', 'A', 'write')).toBe(0);
    // d1 untouched on both SPs.
    for (const sp of ['A', 'B']) expect(io(after, 'sanbox_lun_ops_total', sp, 'd1', 'write')).toBe(io(before, 'sanbox_lun_ops_total', sp, 'd1', 'write'));
    // Write-back: the dirty cache shows until destaged (idleMs 0 destages soon; it is a gauge >= 0).
    expect(sampleValue(after, 'sanbox_sp_cache_dirty_bytes', { array: 'gamma', sp: 'A' })).toBeGreaterThanOrEqual(0);
  });

  it("counts a LUN's NBD sessions over both SPs", async () => {
    const before = await scrape(`${a.url}/metrics`);
    expect(sampleValue(before, 'sanbox_lun_nbd_sessions', { array: 'gamma', lun: 'd0' })).toBe(0);
    const clients = [await NbdClient.connect(`nbd://127.0.0.1:${a.ports.A}/d0`), await NbdClient.connect(`nbd://127.0.0.1:${a.ports.B}/d0`)];
    try {
      const deadline = Date.now() + 5000;
      let f = await scrape(`${a.url}/metrics`);
      while (sampleValue(f, 'sanbox_lun_nbd_sessions', { array: 'gamma', lun: 'd0' }) !== 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        f = await scrape(`${a.url}/metrics`);
      }
      expect(sampleValue(f, 'sanbox_lun_nbd_sessions', { array: 'gamma', lun: 'd0' })).toBe(2);
      for (const sp of ['A', 'B']) expect(sampleValue(f, 'sanbox_nbd_sessions', { array: 'gamma', sp })).toBe(1);
    } finally {
      for (const c of clients) await c.close();
    }
  });

  it('an SP that crashed reports no counters and its state; the other still counts', async () => {
    const r = await fetch(`${a.url}/v1/faults/sp-crash`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ sp: 'A' }) });
    expect(r.status, await r.text()).toBe(200);
    const f = await scrape(`${a.url}/metrics`);
    expect(sampleValue(f, 'sanbox_sp_io_stats_up', { array: 'gamma', sp: 'A' })).toBe(0);
    expect(sampleValue(f, 'sanbox_sp_state', { array: 'gamma', sp: 'A', state: 'up' })).toBe(0);
    expect(samplesOf(f, 'sanbox_lun_ops_total', { sp: 'A' })).toEqual([]);
    expect(sampleValue(f, 'sanbox_sp_io_stats_up', { array: 'gamma', sp: 'B' })).toBe(1);
    const modeB = samplesOf(f, 'sanbox_sp_cache_mode', { array: 'gamma', sp: 'B' });
    expect(modeB.map((s) => s.labels.mode)).toEqual(['write-through']);
    expect(modeB[0]!.labels.reason).not.toBe('');
  });
});
