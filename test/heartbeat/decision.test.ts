import { describe, expect, it } from 'vitest';
import {
  applyVerdict,
  assertFenceTiming,
  assertNoTwoWritable,
  emptyTable,
  failoverDecision,
  fenceDecision,
  installDevice,
  setMode,
  SplitBrainError,
  twoWritable,
  type FailoverWitness,
  type FenceInput,
  type HeartbeatStatusTable,
  type PathVerdict,
} from '../../src/heartbeat/index.js';

const OK: PathVerdict = { valid: true, fresh: true, reason: 'ok', detail: '' };
const BAD: PathVerdict = { valid: false, fresh: false, reason: 'silent', detail: '' };
const CFG = { recoverAfter: 2 };

/** A table with the network and two mirrors; `v` gives each path's verdict (undefined: none yet). */
function table(v: { net?: PathVerdict; hb0?: PathVerdict; hb1?: PathVerdict }): HeartbeatStatusTable {
  let t = emptyTable();
  for (const m of ['hb0', 'hb1']) {
    const r = installDevice(t, { mirror: m, address: `a:${m}>b:${m}` });
    if (!r.ok) throw new Error(r.detail);
    t = r.table;
  }
  if (v.net) t = applyVerdict(t, 'network', v.net, CFG).table;
  if (v.hb0) t = applyVerdict(t, { mirror: 'hb0' }, v.hb0, CFG).table;
  if (v.hb1) t = applyVerdict(t, { mirror: 'hb1' }, v.hb1, CFG).table;
  return t;
}
const allDead = () => table({ net: BAD, hb0: BAD, hb1: BAD });

describe('failoverDecision: the decision table row by row', () => {
  it('already-failed-over comes first', () => {
    expect(failoverDecision({ table: allDead(), witness: 'not-configured', failedOver: true })).toMatchObject({ action: 'none', reason: 'already-failed-over' });
  });

  it('monitoring-suspended: every path DISABLE (reported, never a failover)', () => {
    const t = setMode(allDead(), { network: false, mirrors: false }).table;
    expect(failoverDecision({ table: t, witness: 'peer-dead', failedOver: false })).toMatchObject({ action: 'none', reason: 'monitoring-suspended' });
    const t2 = setMode(setMode(setMode(allDead(), { network: false }).table, { device: { mirror: 'hb0', enabled: false } }).table, { device: { mirror: 'hb1', enabled: false } }).table;
    expect(failoverDecision({ table: t2, witness: 'not-configured', failedOver: false }).reason).toBe('monitoring-suspended');
  });

  it.each([
    ['network alive', { net: OK, hb0: BAD, hb1: BAD }],
    ['one mirror alive', { net: BAD, hb0: BAD, hb1: OK }],
    ['all alive', { net: OK, hb0: OK, hb1: OK }],
  ])('peer-alive: %s', (_, v) => {
    expect(failoverDecision({ table: table(v), witness: 'peer-dead', failedOver: false })).toMatchObject({ action: 'none', reason: 'peer-alive' });
  });

  it('awaiting-readings: a monitored path without a verdict yet blocks', () => {
    expect(failoverDecision({ table: table({ net: BAD, hb0: BAD }), witness: 'not-configured', failedOver: false })).toMatchObject({ action: 'none', reason: 'awaiting-readings', detail: expect.stringContaining('hb1') });
    expect(failoverDecision({ table: table({}), witness: 'not-configured', failedOver: false }).reason).toBe('awaiting-readings');
  });

  it('starting: an agent that has heard nothing since it started believes the silence only after two timeouts', () => {
    const d = (unheardSinceMs: number) => failoverDecision({ table: allDead(), witness: 'not-configured', failedOver: false, unheardSinceMs, timeoutMs: 1000 });
    expect(d(1999)).toMatchObject({ action: 'none', reason: 'starting' });
    expect(d(2000)).toMatchObject({ action: 'failover', reason: 'all-paths-failed' });
    // heard once (no unheardSinceMs): the regular rules
    expect(failoverDecision({ table: allDead(), witness: 'not-configured', failedOver: false }).action).toBe('failover');
  });

  it('path-recovering: a FAILED path that delivers valid heartbeats again is not dead', () => {
    const t = applyVerdict(allDead(), { mirror: 'hb1' }, OK, { recoverAfter: 3 }).table;
    expect(t.devices[1]).toMatchObject({ status: 'FAILED', validStreak: 1 });
    expect(failoverDecision({ table: t, witness: 'not-configured', failedOver: false })).toMatchObject({ action: 'none', reason: 'path-recovering', detail: expect.stringContaining('hb1') });
  });

  const witnessRows: Array<[FailoverWitness, 'none' | 'failover', string]> = [
    ['not-configured', 'failover', 'all-paths-failed'],
    ['peer-dead', 'failover', 'witness-confirms'],
    ['peer-alive', 'none', 'witness-sees-peer'],
    ['unreachable', 'none', 'witness-unreachable'],
  ];
  it.each(witnessRows)('every monitored path failed, witness %s -> %s (%s)', (witness, action, reason) => {
    expect(failoverDecision({ table: allDead(), witness, failedOver: false })).toMatchObject({ action, reason });
  });

  it('a disabled path does not count: the remaining failed ones decide', () => {
    const t = setMode(table({ net: OK, hb0: BAD, hb1: BAD }), { network: false }).table;
    expect(failoverDecision({ table: t, witness: 'not-configured', failedOver: false })).toMatchObject({ action: 'failover', reason: 'all-paths-failed' });
  });

  it('throws on an unknown witness state', () => {
    expect(() => failoverDecision({ table: allDead(), witness: 'maybe' as FailoverWitness, failedOver: false })).toThrow(/witness/);
  });
});

describe('fenceDecision: the decision table row by row', () => {
  const f = (over: Partial<FenceInput>) => fenceDecision({ lastPeerContactAgeMs: 500, witness: 'unreachable', fenceAfterMs: 3000, fenced: false, ...over });
  it.each([
    [{ lastPeerContactAgeMs: 2999 }, 'none', 'peer-reachable'],
    [{ lastPeerContactAgeMs: 3000, witness: 'not-configured' as const }, 'none', 'no-witness'],
    [{ lastPeerContactAgeMs: 3000, witness: 'reachable' as const }, 'none', 'witness-reachable'],
    [{ lastPeerContactAgeMs: 3000 }, 'fence', 'isolated'],
    [{ lastPeerContactAgeMs: null }, 'fence', 'isolated'],
    [{ fenced: true, lastPeerContactAgeMs: 100 }, 'unfence', 'peer-contact-restored'],
    [{ fenced: true, lastPeerContactAgeMs: 9000, witness: 'reachable' as const }, 'unfence', 'witness-contact-restored'],
    [{ fenced: true, lastPeerContactAgeMs: 9000 }, 'none', 'still-isolated'],
    [{ fenced: true, lastPeerContactAgeMs: null, witness: 'not-configured' as const }, 'none', 'still-isolated'],
  ])('%j -> %s (%s)', (over, action, reason) => {
    expect(f(over)).toMatchObject({ action, reason, detail: expect.any(String) });
  });

  it('throws on misuse', () => {
    expect(() => f({ fenceAfterMs: 0 })).toThrow(RangeError);
    expect(() => f({ lastPeerContactAgeMs: -1 })).toThrow(RangeError);
    expect(() => f({ witness: 'x' as 'reachable' })).toThrow(/witness/);
  });
});

describe('invariants', () => {
  it('two writable sides throw', () => {
    expect(twoWritable({ productionWritable: true, standbyWritable: true })).toBe(true);
    expect(() => assertNoTwoWritable({ productionWritable: true, standbyWritable: true })).toThrow(SplitBrainError);
    expect(() => assertNoTwoWritable({ productionWritable: false, standbyWritable: true })).not.toThrow();
    expect(() => assertNoTwoWritable({ productionWritable: true, standbyWritable: false })).not.toThrow();
  });
  it('fenceAfterMs must be strictly below the standby timeout', () => {
    expect(() => assertFenceTiming(3000, 5000)).not.toThrow();
    expect(() => assertFenceTiming(5000, 5000)).toThrow(RangeError);
  });
});
