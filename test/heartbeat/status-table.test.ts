import { describe, expect, it } from 'vitest';
import {
  applyVerdict,
  DEVICE_SLOTS,
  DEVICE_TRANSITIONS,
  deviceTransition,
  emptyTable,
  IllegalHeartbeatTransitionError,
  installDevice,
  parseTable,
  PATH_TRANSITIONS,
  pathTransition,
  serializeTable,
  setMode,
  TableParseError,
  uninstallDevice,
  type DeviceEvent,
  type DeviceStatus,
  type HeartbeatStatusTable,
  type PathEnable,
  type PathEvent,
  type PathVerdict,
} from '../../src/heartbeat/index.js';

const OK: PathVerdict = { valid: true, fresh: true, reason: 'ok', detail: 'new serial' };
const WAIT: PathVerdict = { valid: true, fresh: false, reason: 'waiting', detail: 'nothing new' };
const BAD: PathVerdict = { valid: false, fresh: false, reason: 'serial-stale', detail: 'stale' };
const CFG = { recoverAfter: 3 };

function installed(...mirrors: string[]): HeartbeatStatusTable {
  let t = emptyTable();
  for (const m of mirrors) {
    const r = installDevice(t, { mirror: m, address: `alpha:${m}>bravo:${m}` });
    if (!r.ok) throw new Error(r.detail);
    t = r.table;
  }
  return t;
}
function apply(t: HeartbeatStatusTable, path: 'network' | { mirror: string }, ...vs: PathVerdict[]): HeartbeatStatusTable {
  for (const v of vs) t = applyVerdict(t, path, v, CFG).table;
  return t;
}
const dev = (t: HeartbeatStatusTable, m: string) => t.devices.find((d) => d.mirror === m)!;

const DEVICE_ROWS: Array<[DeviceStatus, DeviceEvent, DeviceStatus]> = [
  ['NULL', 'install', 'ENABLE'],
  ['ENABLE', 'disable', 'DISABLE'],
  ['ENABLE', 'fail', 'FAILED'],
  ['ENABLE', 'uninstall', 'NULL'],
  ['DISABLE', 'enable', 'ENABLE'],
  ['DISABLE', 'uninstall', 'NULL'],
  ['FAILED', 'recover', 'ENABLE'],
  ['FAILED', 'disable', 'DISABLE'],
  ['FAILED', 'uninstall', 'NULL'],
];
const PATH_ROWS: Array<[PathEnable, PathEvent, PathEnable]> = [
  ['ENABLE', 'disable', 'DISABLE'],
  ['ENABLE', 'fail', 'FAILED'],
  ['DISABLE', 'enable', 'ENABLE'],
  ['FAILED', 'recover', 'ENABLE'],
  ['FAILED', 'disable', 'DISABLE'],
];

describe('transition tables', () => {
  it.each(DEVICE_ROWS)('device %s --%s--> %s', (from, ev, to) => expect(deviceTransition(from, ev)).toBe(to));
  it.each(PATH_ROWS)('path %s --%s--> %s', (from, ev, to) => expect(pathTransition(from, ev)).toBe(to));

  it('the tables hold exactly those rows; everything else throws', () => {
    const events: DeviceEvent[] = ['install', 'uninstall', 'enable', 'disable', 'fail', 'recover'];
    let legal = 0;
    for (const from of Object.keys(DEVICE_TRANSITIONS) as DeviceStatus[]) {
      for (const ev of events) {
        const row = DEVICE_ROWS.find((r) => r[0] === from && r[1] === ev);
        if (row) legal++;
        else expect(() => deviceTransition(from, ev), `${from} ${ev}`).toThrow(IllegalHeartbeatTransitionError);
      }
    }
    expect(legal).toBe(DEVICE_ROWS.length);
    const pevents: PathEvent[] = ['enable', 'disable', 'fail', 'recover'];
    for (const from of Object.keys(PATH_TRANSITIONS) as PathEnable[]) {
      for (const ev of pevents) {
        if (!PATH_ROWS.some((r) => r[0] === from && r[1] === ev)) expect(() => pathTransition(from, ev)).toThrow(/illegal heartbeat path transition/);
      }
    }
    expect(() => deviceTransition('BOGUS' as DeviceStatus, 'install')).toThrow(/unknown/);
  });
});

describe('the table', () => {
  it('starts empty: 8 NULL entries, network ENABLE, groups UNKNOWN, 220 FAILED (no mirror, as the source)', () => {
    const t = emptyTable();
    expect(t.devices).toHaveLength(DEVICE_SLOTS);
    expect(t.devices.every((d) => d.status === 'NULL' && d.mirror === null && d.address === null)).toBe(true);
    expect(t).toMatchObject({ networkEnable: 'ENABLE', remoteGroupStatusByNetwork: 'UNKNOWN', remoteCopyEnable: 'FAILED', remoteGroupStatusByMirror: 'UNKNOWN', mirrorsMode: 'ENABLE' });
  });

  it('install fills the first NULL slot, refuses duplicates and a full table', () => {
    const t = installed('hb0', 'hb1');
    expect(dev(t, 'hb1')).toMatchObject({ slot: 1, status: 'ENABLE', address: 'alpha:hb1>bravo:hb1' });
    expect(t.remoteCopyEnable).toBe('ENABLE');
    expect(installDevice(t, { mirror: 'hb0', address: 'x' })).toMatchObject({ ok: false, reason: 'duplicate-mirror' });
    const full = installed(...Array.from({ length: 8 }, (_, i) => `hb${i}`));
    expect(installDevice(full, { mirror: 'hb9', address: 'x' })).toMatchObject({ ok: false, reason: 'table-full' });
    const u = uninstallDevice(t, 'hb0');
    if (!u.ok) throw new Error('uninstall');
    expect(u.changes[0]).toMatchObject({ field: 'device', slot: 0, mirror: 'hb0', from: 'ENABLE', to: 'NULL', reason: 'uninstalled' });
    const again = installDevice(u.table, { mirror: 'hb2', address: 'a' });
    expect(again).toMatchObject({ ok: true, slot: 0 });
    expect(uninstallDevice(t, 'nope')).toMatchObject({ ok: false, reason: 'not-installed' });
    expect(() => installDevice(t, { mirror: '', address: 'x' })).toThrow(TypeError);
  });

  it('the derived fields follow the source', () => {
    let t = installed('hb0', 'hb1');
    expect(t.remoteGroupStatusByMirror).toBe('UNKNOWN'); // before the first reading
    t = apply(t, { mirror: 'hb0' }, OK);
    expect(t.remoteGroupStatusByMirror).toBe('ALIVE');
    t = apply(t, { mirror: 'hb0' }, BAD);
    expect(dev(t, 'hb0').status).toBe('FAILED');
    expect(t.remoteGroupStatusByMirror).toBe('UNKNOWN'); // hb1 still awaiting
    const r = applyVerdict(t, { mirror: 'hb1' }, BAD, CFG);
    expect(r.table).toMatchObject({ remoteCopyEnable: 'FAILED', remoteGroupStatusByMirror: 'FAILED' });
    expect(r.changes).toEqual([
      { field: 'device', slot: 1, mirror: 'hb1', from: 'ENABLE', to: 'FAILED', reason: 'serial-stale', detail: 'stale' },
      { field: 'remoteCopyEnable', from: 'ENABLE', to: 'FAILED', reason: 'serial-stale', detail: 'stale' },
      { field: 'remoteGroupStatusByMirror', from: 'UNKNOWN', to: 'FAILED', reason: 'serial-stale', detail: 'stale' },
    ]);
    // every device DISABLE by the user: 220 DISABLE, not FAILED
    const d = setMode(setMode(installed('hb0', 'hb1'), { device: { mirror: 'hb0', enabled: false } }).table, { device: { mirror: 'hb1', enabled: false } }).table;
    expect(d.remoteCopyEnable).toBe('DISABLE');
    // one disabled, one failed: FAILED
    const mix = apply(setMode(installed('hb0', 'hb1'), { device: { mirror: 'hb0', enabled: false } }).table, { mirror: 'hb1' }, BAD);
    expect(mix.remoteCopyEnable).toBe('FAILED');
    expect(mix.remoteGroupStatusByMirror).toBe('FAILED');
  });

  it('network: 200 and 210', () => {
    let t = emptyTable();
    t = apply(t, 'network', WAIT);
    expect(t.remoteGroupStatusByNetwork).toBe('UNKNOWN');
    const r = applyVerdict(t, 'network', OK, CFG);
    expect(r.table.remoteGroupStatusByNetwork).toBe('ALIVE');
    expect(r.changes).toEqual([{ field: 'remoteGroupStatusByNetwork', from: 'UNKNOWN', to: 'ALIVE', reason: 'ok', detail: 'new serial' }]);
    const f = applyVerdict(r.table, 'network', { valid: false, fresh: false, reason: 'silent', detail: 'quiet' }, CFG);
    expect(f.table).toMatchObject({ networkEnable: 'FAILED', remoteGroupStatusByNetwork: 'FAILED', networkValidStreak: 0 });
    expect(f.changes.map((c) => `${c.field}:${c.from}>${c.to}:${c.reason}`)).toEqual(['networkEnable:ENABLE>FAILED:silent', 'remoteGroupStatusByNetwork:ALIVE>FAILED:silent']);
  });

  it('hysteresis: FAILED recovers after recoverAfter consecutive fresh valid heartbeats; an invalid one resets', () => {
    let t = apply(installed('hb0'), { mirror: 'hb0' }, OK, BAD);
    expect(dev(t, 'hb0').status).toBe('FAILED');
    t = apply(t, { mirror: 'hb0' }, OK, OK, WAIT, BAD, OK, OK, WAIT);
    expect(dev(t, 'hb0')).toMatchObject({ status: 'FAILED', validStreak: 2 });
    const r = applyVerdict(t, { mirror: 'hb0' }, OK, { recoverAfter: 3, nowMonoMs: 1234 });
    expect(dev(r.table, 'hb0')).toMatchObject({ status: 'ENABLE', validStreak: 3, lastValidMonoMs: 1234, reason: 'recovered' });
    expect(r.changes.map((c) => `${c.field}:${c.from}>${c.to}:${c.reason}`)).toEqual(['device:FAILED>ENABLE:recovered', 'remoteCopyEnable:FAILED>ENABLE:recovered', 'remoteGroupStatusByMirror:FAILED>ALIVE:recovered']);
    // the network likewise
    let n = apply(emptyTable(), 'network', BAD, OK, OK);
    expect(n.networkEnable).toBe('FAILED');
    n = apply(n, 'network', OK);
    expect(n).toMatchObject({ networkEnable: 'ENABLE', remoteGroupStatusByNetwork: 'ALIVE' });
    expect(() => applyVerdict(n, 'network', OK, { recoverAfter: 0 })).toThrow(RangeError);
  });

  it('setMode (Fig. 8): network, mirrors, one device', () => {
    let t = installed('hb0', 'hb1');
    let r = setMode(t, { network: false, mirrors: false });
    expect(r.table).toMatchObject({ networkEnable: 'DISABLE', mirrorsMode: 'DISABLE', remoteCopyEnable: 'DISABLE' });
    expect(r.changes.map((c) => c.field)).toEqual(['networkEnable', 'mirrorsMode', 'remoteCopyEnable']);
    expect(() => applyVerdict(r.table, 'network', OK, CFG)).toThrow(/DISABLE/);
    expect(() => applyVerdict(r.table, { mirror: 'hb0' }, OK, CFG)).toThrow(/not monitored/);
    r = setMode(r.table, { network: true, mirrors: true });
    expect(r.table).toMatchObject({ networkEnable: 'ENABLE', mirrorsMode: 'ENABLE', remoteCopyEnable: 'ENABLE' });
    expect(setMode(r.table, { network: true, mirrors: true }).changes).toEqual([]);
    // a FAILED network and device can be disabled, then enabled afresh
    t = apply(apply(r.table, 'network', BAD), { mirror: 'hb0' }, BAD);
    r = setMode(t, { network: false, device: { mirror: 'hb0', enabled: false } });
    expect(r.table.networkEnable).toBe('DISABLE');
    expect(dev(r.table, 'hb0').status).toBe('DISABLE');
    // enabling a FAILED device is a no-op (it is enabled, awaiting recovery)
    const f = apply(r.table, { mirror: 'hb1' }, BAD);
    expect(setMode(f, { device: { mirror: 'hb1', enabled: true } }).changes).toEqual([]);
    expect(() => setMode(f, { device: { mirror: 'zz', enabled: true } })).toThrow(/not installed/);
  });

  it('applyVerdict refuses unknown mirrors and does not touch its input', () => {
    const t = installed('hb0');
    const before = JSON.stringify(t);
    applyVerdict(t, { mirror: 'hb0' }, BAD, CFG);
    expect(JSON.stringify(t)).toBe(before);
    expect(() => applyVerdict(t, { mirror: 'hb7' }, OK, CFG)).toThrow(/not installed/);
  });
});

describe('serializeTable / parseTable', () => {
  it('round-trips', () => {
    const t = apply(apply(installed('hb0', 'hb1', 'hb2'), { mirror: 'hb1' }, OK, BAD), 'network', OK);
    expect(parseTable(serializeTable(t))).toEqual(t);
    expect(parseTable(serializeTable(emptyTable()))).toEqual(emptyTable());
  });

  it('refuses anything else', () => {
    const good = JSON.parse(serializeTable(installed('hb0'))) as { table: Record<string, unknown> & { devices: Array<Record<string, unknown>> } };
    const variants: Array<[string, (d: typeof good) => void]> = [
      ['format', (d) => Object.assign(d, { format: 'x' })],
      ['version', (d) => Object.assign(d, { version: 2 })],
      ['extra key', (d) => Object.assign(d.table, { extra: 1 })],
      ['derived mismatch', (d) => Object.assign(d.table, { remoteGroupStatusByMirror: 'ALIVE' })],
      ['bad status', (d) => Object.assign(d.table.devices[0]!, { status: 'ON' })],
      ['NULL with a mirror', (d) => Object.assign(d.table.devices[1]!, { mirror: 'hb9' })],
      ['duplicate mirror', (d) => Object.assign(d.table.devices[1]!, { mirror: 'hb0', address: 'a', status: 'ENABLE' })],
      ['slot', (d) => Object.assign(d.table.devices[2]!, { slot: 5 })],
      ['streak', (d) => Object.assign(d.table, { networkValidStreak: -1 })],
      ['seven devices', (d) => d.table.devices.pop()],
    ];
    for (const [name, edit] of variants) {
      const d = structuredClone(good);
      edit(d);
      expect(() => parseTable(JSON.stringify(d)), name).toThrow(TableParseError);
    }
    expect(() => parseTable('{')).toThrow(/not JSON/);
  });
});
