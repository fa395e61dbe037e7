import { describe, expect, it } from 'vitest';
import { MAX_SERIAL, observe, type HeartbeatMessage, type HeartbeatRead, type PeerObservation, type ValidityConfig } from '../../src/heartbeat/index.js';

const CFG: ValidityConfig = { knownSenders: ['prod-1', 'prod-2'], instance: 3, timeoutMs: 5000 };
const m = (serial: number, over: Partial<HeartbeatMessage> = {}): HeartbeatRead => ({
  ok: true,
  message: { serial, timeMs: 1_000_000 + serial * 1000, senderId: 'prod-1', site: 'alpha', clusterName: 'c0', instance: 3, role: 'production', master: true, noticeSeq: 0, ...over },
});

/** Feeds (now, read) pairs and returns every verdict; the observation carries over. */
function run(steps: Array<[number, HeartbeatRead | null]>, cfg = CFG, start: PeerObservation | null = null) {
  let obs = start;
  return steps.map(([now, read]) => {
    const r = observe(obs, read, now, cfg);
    obs = r.observation;
    return { ...r.verdict, obs };
  });
}

describe('observe: the source rules', () => {
  it('first contact is valid and fresh; new serials are ok; a repeated one is waiting', () => {
    const v = run([[0, m(1)], [1000, m(2)], [1500, m(2)], [2000, m(4)]]);
    expect(v.map((x) => [x.valid, x.fresh, x.reason])).toEqual([[true, true, 'ok'], [true, true, 'ok'], [true, false, 'waiting'], [true, true, 'ok']]);
    expect(v[0]!.detail).toContain('first contact');
    expect(v[3]!.obs).toMatchObject({ serial: 4, serialChangedAtMonoMs: 2000, firstSeenMonoMs: 0 });
  });

  it('(1) an unknown sender is invalid and leaves the observation alone', () => {
    const v = run([[0, m(1)], [1000, m(2, { senderId: 'intruder' })]]);
    expect(v[1]).toMatchObject({ valid: false, reason: 'unknown-sender' });
    expect(v[1]!.obs).toEqual(v[0]!.obs);
    expect(run([[0, m(1, { senderId: 'x' })]])[0]).toMatchObject({ valid: false, reason: 'unknown-sender' });
  });

  it('(2) a serial unchanged for more than the timeout is stale (the receiver clock decides)', () => {
    const v = run([[0, m(5)], [5000, m(5)], [5001, m(5)]]);
    expect(v[1]).toMatchObject({ valid: true, reason: 'waiting' });
    expect(v[2]).toMatchObject({ valid: false, fresh: false, reason: 'serial-stale' });
    // a fractured mirror: the old block forever; it stays stale
    expect(run([[0, m(5)], [9000, m(5)], [20000, m(5)]]).slice(1).every((x) => x.reason === 'serial-stale')).toBe(true);
  });

  it('(3) a time field unchanged for more than the timeout is stale even when serials advance', () => {
    const v = run([[0, m(1, { timeMs: 77 })], [3000, m(2, { timeMs: 77 })], [5001, m(3, { timeMs: 77 })], [6000, m(4, { timeMs: 78 })]]);
    expect(v.map((x) => x.reason)).toEqual(['ok', 'ok', 'time-stale', 'ok']);
    expect(v[2]!.valid).toBe(false);
  });

  it('never compares the message time with the receiver clock: any value, even backwards, counts as changed', () => {
    const v = run([[0, m(1, { timeMs: 9e12 })], [1000, m(2, { timeMs: 5 })], [2000, m(3, { timeMs: 0 })]]);
    expect(v.every((x) => x.valid && x.reason === 'ok')).toBe(true);
  });

  it('(4) an expired instance is invalid, and so is a newer one (the receiver is behind)', () => {
    expect(run([[0, m(1)], [1000, m(2, { instance: 2 })]])[1]).toMatchObject({ valid: false, reason: 'instance-expired', detail: expect.stringContaining('expired instance') });
    expect(run([[0, m(1, { instance: 4 })]])[0]).toMatchObject({ valid: false, reason: 'instance-expired', detail: expect.stringContaining("receiver's instance") });
  });

  it('user rules run after the built-in ones and reject with their reason', () => {
    const cfg: ValidityConfig = { ...CFG, rules: [(msg) => (msg.clusterName === 'c0' ? null : { reason: 'wrong-cluster', detail: `cluster ${msg.clusterName}` }), (msg, obs) => (obs && msg.role !== 'production' ? { reason: 'role', detail: 'not production' } : null)] };
    const v = run([[0, m(1)], [1000, m(2, { clusterName: 'c9' })], [2000, m(3, { role: 'standby' })], [2500, m(4)]], cfg);
    expect(v.map((x) => x.reason)).toEqual(['ok', 'user-rule', 'user-rule', 'ok']);
    expect(v[1]!.detail).toBe('wrong-cluster: cluster c9');
  });
});

describe('observe: restarts, silence and unreadable blocks', () => {
  it('a serial that went backwards starts a new observation (sender restarted)', () => {
    const v = run([[0, m(100)], [1000, m(101)], [2000, m(1)]]);
    expect(v[2]).toMatchObject({ valid: true, fresh: true, reason: 'ok', detail: expect.stringContaining('went back') });
    expect(v[2]!.obs).toMatchObject({ serial: 1, firstSeenMonoMs: 2000 });
  });

  it('the wrap MAX_SERIAL -> 1 continues the observation', () => {
    const v = run([[0, m(MAX_SERIAL - 1)], [1000, m(MAX_SERIAL)], [2000, m(1)], [3000, m(2)]]);
    expect(v.every((x) => x.reason === 'ok')).toBe(true);
    expect(v[3]!.obs!.firstSeenMonoMs).toBe(0);
  });

  it('a different known sender (master takeover at the peer) starts a new observation', () => {
    const v = run([[0, m(50)], [1000, m(51)], [3000, m(7, { senderId: 'prod-2' })]]);
    expect(v[2]).toMatchObject({ valid: true, fresh: true, detail: expect.stringContaining('master takeover') });
    expect(v[2]!.obs).toMatchObject({ senderId: 'prod-2', serial: 7, firstSeenMonoMs: 3000 });
  });

  it('silence is waiting until the timeout has elapsed since the last change, then silent', () => {
    const v = run([[0, m(1)], [3000, null], [5000, null], [5001, null], [6000, m(2)]]);
    expect(v.map((x) => [x.valid, x.reason])).toEqual([[true, 'ok'], [true, 'waiting'], [true, 'waiting'], [false, 'silent'], [true, 'ok']]);
  });

  it('before any contact silence is measured from when listening began; a blank volume counts as silence', () => {
    const blank: HeartbeatRead = { ok: false, reason: 'blank', detail: 'all zero' };
    const v = run([[100, null], [2000, blank], [5100, null], [5101, blank], [6000, m(1)]]);
    expect(v.map((x) => x.reason)).toEqual(['waiting', 'waiting', 'waiting', 'silent', 'ok']);
    expect(v[0]!.obs).toMatchObject({ serial: 0, firstSeenMonoMs: 100 });
    expect(v[3]!.detail).toContain('nothing heard');
  });

  it('an unreadable block is invalid at once, without touching the observation', () => {
    const bad: HeartbeatRead = { ok: false, reason: 'bad-crc', detail: 'crc' };
    const v = run([[0, m(1)], [500, bad], [1000, m(2)]]);
    expect(v[1]).toMatchObject({ valid: false, reason: 'unreadable', detail: 'bad-crc: crc' });
    expect(v[1]!.obs).toEqual(v[0]!.obs);
    expect(v[2]!.reason).toBe('ok');
  });

  it('throws on misuse', () => {
    const obs = run([[1000, m(1)]])[0]!.obs;
    expect(() => observe(obs, m(2), 999, CFG)).toThrow(/backwards/);
    expect(() => observe(null, null, 0, { ...CFG, knownSenders: [] })).toThrow(/knownSenders/);
    expect(() => observe(null, null, 0, { ...CFG, timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => observe(null, null, Number.NaN, CFG)).toThrow(/finite/);
  });
});
