import { describe, it, expect } from 'vitest';
import {
  cacheModePolicy,
  transition,
  canTransition,
  SpLifecycle,
  inPowerFailure,
  IllegalTransitionError,
  SP_STATES,
  SP_EVENTS,
  SP_TRANSITIONS,
  OwnershipTable,
  OwnershipError,
  type CacheModeInput,
  type CacheModeReason,
  type SpState,
  type SpEvent,
  type OwnershipEvent,
} from '../../../src/array/sp/index.js';
import type { CacheMode } from '../../../src/array/cache/index.js';
import { lcg31, seededRandom } from '../../support/random.js';

describe('cacheModePolicy', () => {
  const ok: CacheModeInput = { previous: 'write-back', peerUp: true, batteryFailed: false, batteryCharge: 100, vaultUsable: true };
  // [case, input overrides, expected mode, expected reason]
  const table: [string, Partial<CacheModeInput>, CacheMode, CacheModeReason][] = [
    ['all protected', {}, 'write-back', 'protected'],
    ['all protected, from write-through, full charge', { previous: 'write-through' }, 'write-back', 'protected'],
    ['configured write-through wins over everything', { writeThroughConfigured: true }, 'write-through', 'configured write-through'],
    ['peer SP down', { peerUp: false }, 'write-through', 'peer SP down'],
    ['peer down outranks battery failure', { peerUp: false, batteryFailed: true }, 'write-through', 'peer SP down'],
    ['battery failed', { batteryFailed: true }, 'write-through', 'battery failed'],
    ['battery failed outranks vault', { batteryFailed: true, vaultUsable: false }, 'write-through', 'battery failed'],
    ['vault unusable', { vaultUsable: false }, 'write-through', 'vault unusable'],
    ['vault unusable outranks low charge', { vaultUsable: false, batteryCharge: 5 }, 'write-through', 'vault unusable'],
    ['charge below low, from write-back', { batteryCharge: 29 }, 'write-through', 'battery low'],
    ['charge below low, from write-through', { previous: 'write-through', batteryCharge: 10 }, 'write-through', 'battery low'],
    ['charge exactly low stays write-back', { batteryCharge: 30 }, 'write-back', 'protected'],
    ['charge between thresholds keeps write-back', { batteryCharge: 45 }, 'write-back', 'protected'],
    ['charge between thresholds keeps write-through', { previous: 'write-through', batteryCharge: 45 }, 'write-through', 'battery recharging'],
    ['charge exactly high keeps write-through', { previous: 'write-through', batteryCharge: 60 }, 'write-through', 'battery recharging'],
    ['charge just above high resumes write-back', { previous: 'write-through', batteryCharge: 60.5 }, 'write-back', 'protected'],
    ['custom thresholds', { batteryCharge: 15, thresholds: { low: 10, high: 20 } }, 'write-back', 'protected'],
    ['custom thresholds, recharging', { previous: 'write-through', batteryCharge: 15, thresholds: { low: 10, high: 20 } }, 'write-through', 'battery recharging'],
    ['zero charge', { batteryCharge: 0 }, 'write-through', 'battery low'],
  ];
  for (const [name, over, mode, reason] of table) {
    it(name, () => {
      const d = cacheModePolicy({ ...ok, ...over });
      expect(d.mode).toBe(mode);
      expect(d.reason).toBe(reason);
      expect(d.detail.length).toBeGreaterThan(0);
    });
  }

  it('hysteresis over a discharge and recharge cycle', () => {
    let mode: CacheMode = 'write-back';
    const seen: [number, CacheMode][] = [];
    for (const charge of [100, 70, 50, 31, 30, 29, 20, 35, 50, 60, 61, 45, 31, 29]) {
      mode = cacheModePolicy({ ...ok, previous: mode, batteryCharge: charge }).mode;
      seen.push([charge, mode]);
    }
    const wb = 'write-back';
    const wt = 'write-through';
    expect(seen.map(([, m]) => m)).toEqual([wb, wb, wb, wb, wb, wt, wt, wt, wt, wt, wb, wb, wb, wt]);
  });

  it('rejects nonsense input', () => {
    expect(() => cacheModePolicy({ ...ok, batteryCharge: 101 })).toThrow();
    expect(() => cacheModePolicy({ ...ok, batteryCharge: Number.NaN })).toThrow();
    expect(() => cacheModePolicy({ ...ok, thresholds: { low: 70, high: 50 } })).toThrow();
  });
});

describe('SP state machine', () => {
  const legal: [SpState, SpEvent, SpState][] = [
    ['off', 'power-restore', 'booting'],
    ['down', 'boot', 'booting'],
    ['down', 'power-fail', 'off'],
    ['down', 'power-cut', 'off'],
    ['booting', 'booted', 'up'],
    ['booting', 'vault-found', 'restoring'],
    ['booting', 'crash', 'down'],
    ['booting', 'power-fail', 'off'],
    ['booting', 'power-cut', 'off'],
    ['restoring', 'restore-done', 'up'],
    ['restoring', 'restore-failed', 'up'],
    ['restoring', 'crash', 'down'],
    ['restoring', 'power-fail', 'off'],
    ['restoring', 'power-cut', 'off'],
    ['up', 'crash', 'down'],
    ['up', 'shutdown', 'down'],
    ['up', 'power-fail', 'dumping'],
    ['up', 'power-cut', 'off'],
    ['dumping', 'dump-done', 'off'],
    ['dumping', 'hold-up-expired', 'off'],
    ['dumping', 'crash', 'off'],
    ['dumping', 'power-cut', 'off'],
    ['dumping', 'power-restore', 'up'],
    ['dumping', 'power-back', 'resuming'],
    ['resuming', 'dump-abandoned', 'up'],
    ['resuming', 'crash', 'down'],
    ['resuming', 'power-cut', 'off'],
  ];

  it('every legal transition, and every other (state, event) pair throws', () => {
    const legalSet = new Set(legal.map(([s, e]) => `${s}/${e}`));
    for (const [s, e, to] of legal) expect(transition(s, e)).toBe(to);
    let illegal = 0;
    for (const s of SP_STATES) {
      for (const e of SP_EVENTS) {
        if (legalSet.has(`${s}/${e}`)) continue;
        illegal++;
        expect(canTransition(s, e)).toBe(false);
        expect(() => transition(s, e), `${s}/${e}`).toThrow(IllegalTransitionError);
      }
    }
    // The table has exactly the legal rows listed here.
    const tableRows = Object.values(SP_TRANSITIONS).reduce((n, row) => n + Object.keys(row).length, 0);
    expect(tableRows).toBe(legal.length);
    expect(illegal).toBe(SP_STATES.length * SP_EVENTS.length - legal.length);
  });

  const drive = (start: SpState, events: SpEvent[]): SpState[] => {
    const l = new SpLifecycle('A', start, () => 0);
    return events.map((e) => l.apply(e));
  };

  it('power failure with a good battery: dump, off, restore, up', () => {
    expect(drive('up', ['power-fail', 'dump-done', 'power-restore', 'vault-found', 'restore-done'])).toEqual(['dumping', 'off', 'booting', 'restoring', 'up']);
  });

  it('power restored in the middle of a dump: the SP resumes service', () => {
    expect(drive('up', ['power-fail', 'power-restore'])).toEqual(['dumping', 'up']);
  });

  it('the SP process abandons a dump through resuming, still holding I/O until it serves', () => {
    expect(drive('up', ['power-fail', 'power-back', 'dump-abandoned'])).toEqual(['dumping', 'resuming', 'up']);
    const held = (['up', 'dumping', 'resuming', 'up'] as SpState[]).map(inPowerFailure);
    expect(held).toEqual([false, true, true, false]);
  });

  it('power failure is read from the state alone', () => {
    const failing = SP_STATES.filter(inPowerFailure).sort();
    expect(failing).toEqual(['dumping', 'off', 'resuming']);
    for (const s of ['down', 'booting', 'restoring', 'up'] as SpState[]) expect(inPowerFailure(s), s).toBe(false);
  });

  it('power-back and dump-abandoned are only legal around a dump', () => {
    for (const s of SP_STATES) {
      expect(canTransition(s, 'power-back'), s).toBe(s === 'dumping');
      expect(canTransition(s, 'dump-abandoned'), s).toBe(s === 'resuming');
    }
    expect(() => transition('resuming', 'power-restore')).toThrow(IllegalTransitionError);
    expect(() => transition('resuming', 'power-fail')).toThrow(IllegalTransitionError);
  });

  it('hold-up expires mid-dump: off, then a boot that finds no usable image', () => {
    expect(drive('up', ['power-fail', 'hold-up-expired', 'power-restore', 'vault-found', 'restore-failed'])).toEqual(['dumping', 'off', 'booting', 'restoring', 'up']);
  });

  it('a second power failure during restore: off, and the next boot restores again', () => {
    expect(drive('up', ['power-fail', 'dump-done', 'power-restore', 'vault-found', 'power-fail', 'power-restore', 'vault-found', 'restore-done'])).toEqual([
      'dumping',
      'off',
      'booting',
      'restoring',
      'off',
      'booting',
      'restoring',
      'up',
    ]);
  });

  it('battery failed: the power failure cuts the SP without a dump', () => {
    expect(drive('up', ['power-cut', 'power-restore', 'booted'])).toEqual(['off', 'booting', 'up']);
  });

  it('crash and restart', () => {
    expect(drive('up', ['crash', 'boot', 'booted'])).toEqual(['down', 'booting', 'up']);
  });

  it('an illegal event leaves the state unchanged and records nothing', () => {
    const l = new SpLifecycle('B', 'off');
    const seen: unknown[] = [];
    l.on('transition', (r) => seen.push(r));
    expect(() => l.apply('boot')).toThrow(/illegal SP transition: boot in state off/);
    expect(() => l.apply('power-fail')).toThrow(IllegalTransitionError);
    expect(l.state).toBe('off');
    l.apply('power-restore');
    expect(l.state).toBe('booting');
    expect(seen).toHaveLength(1);
    expect(l.history[0]).toMatchObject({ sp: 'B', from: 'off', event: 'power-restore', to: 'booting' });
    // A dumping SP cannot take a second power-fail or be booted.
    const d = new SpLifecycle('A', 'dumping');
    expect(() => d.apply('power-fail')).toThrow(IllegalTransitionError);
    expect(() => d.apply('boot')).toThrow(IllegalTransitionError);
  });
});

describe('LUN ownership', () => {
  function table(): { t: OwnershipTable; events: OwnershipEvent[] } {
    const t = new OwnershipTable();
    const events: OwnershipEvent[] = [];
    t.on('change', (e: OwnershipEvent) => events.push(e));
    t.addLun(0, 'A');
    t.addLun(1, 'B');
    t.addLun(2, 'A');
    t.addLun(3, 'B');
    return { t, events };
  }

  it('assigns default owners and emits an event per change', () => {
    const { t, events } = table();
    expect(t.lunsOwnedBy('A')).toEqual([0, 2]);
    expect(t.lunsOwnedBy('B')).toEqual([1, 3]);
    expect(events).toHaveLength(4);
    expect(events[0]).toEqual({ lun: 0, from: null, to: 'A', reason: 'assign' });
  });

  it('trespass moves one LUN and refuses a down SP', () => {
    const { t, events } = table();
    expect(t.trespass(0, 'B')).toEqual([{ lun: 0, from: 'A', to: 'B', reason: 'trespass' }]);
    expect(t.owner(0)).toBe('B');
    expect(t.trespass(0, 'B')).toEqual([]);
    expect(events.at(-1)).toEqual({ lun: 0, from: 'A', to: 'B', reason: 'trespass' });
    t.takeOver('A');
    expect(() => t.trespass(1, 'A')).toThrow(OwnershipError);
    expect(() => t.trespass(99, 'B')).toThrow(/no LUN 99/);
  });

  it('takeover moves every LUN of the dead SP, failback returns them (automatic)', () => {
    const { t } = table();
    t.trespass(3, 'A'); // A now owns 0, 2, 3
    const moved = t.takeOver('A');
    expect(moved.map((e) => [e.lun, e.to, e.reason])).toEqual([
      [0, 'B', 'takeover'],
      [2, 'B', 'takeover'],
      [3, 'B', 'takeover'],
    ]);
    expect(t.lunsOwnedBy('B')).toEqual([0, 1, 2, 3]);
    expect(t.spUp('A')).toEqual([]); // comes back owning nothing
    expect(t.failbackPending()).toEqual([0, 2]);
    expect(t.failback('manual')).toEqual([]);
    expect(t.owner(0)).toBe('B');
    const back = t.failback('automatic');
    expect(back.map((e) => [e.lun, e.from, e.to, e.reason])).toEqual([
      [0, 'B', 'A', 'failback'],
      [2, 'B', 'A', 'failback'],
    ]);
    // LUN 3's default owner is B, so it stays on B.
    expect(t.snapshot()).toEqual([
      { lun: 0, defaultOwner: 'A', currentOwner: 'A' },
      { lun: 1, defaultOwner: 'B', currentOwner: 'B' },
      { lun: 2, defaultOwner: 'A', currentOwner: 'A' },
      { lun: 3, defaultOwner: 'B', currentOwner: 'B' },
    ]);
  });

  it('failbackLun returns one pending LUN at a time (the chassis moves them one by one) and refuses the others', () => {
    const { t } = table();
    t.takeOver('A');
    t.spUp('A');
    expect(t.failbackPending()).toEqual([0, 2]);
    expect(t.failbackLun(0).map((e) => [e.lun, e.from, e.to, e.reason])).toEqual([[0, 'B', 'A', 'failback']]);
    expect(t.owner(2)).toBe('B'); // still on B until its own move
    expect(t.failbackPending()).toEqual([2]);
    expect(() => t.failbackLun(0)).toThrow(/LUN 0 is not waiting for failback \(owner A, default A, SP A up\)/);
    expect(() => t.failbackLun(1)).toThrow(OwnershipError);
    expect(t.failbackLun(2).map((e) => [e.lun, e.from, e.to])).toEqual([[2, 'B', 'A']]);
    expect(t.failbackPending()).toEqual([]);
  });

  it('both SPs down: LUNs are orphaned, the first SP up takes them', () => {
    const { t } = table();
    t.takeOver('A');
    const orphaned = t.takeOver('B');
    expect(orphaned.every((e) => e.to === null && e.reason === 'orphaned')).toBe(true);
    expect(t.snapshot().every((r) => r.currentOwner === null)).toBe(true);
    const taken = t.spUp('B');
    expect(taken).toHaveLength(4);
    expect(t.lunsOwnedBy('B')).toEqual([0, 1, 2, 3]);
    t.spUp('A');
    t.failback('automatic');
    expect(t.lunsOwnedBy('A')).toEqual([0, 2]);
  });

  it('at most one owner per LUN through a random sequence of operations', () => {
    const { t } = table();
    const r = seededRandom(12345, lcg31);
    for (let i = 0; i < 2000; i++) {
      const sp = r() < 0.5 ? 'A' : 'B';
      const op = Math.floor(r() * 5);
      try {
        if (op === 0) t.trespass(Math.floor(r() * 4), sp);
        else if (op === 1) t.takeOver(sp);
        else if (op === 2) t.spUp(sp);
        else t.failback(r() < 0.5 ? 'automatic' : 'manual');
      } catch (e) {
        expect(e).toBeInstanceOf(OwnershipError); // refused, never inconsistent
      }
      t.assertInvariant();
      for (const rec of t.snapshot()) if (rec.currentOwner) expect(t.isUp(rec.currentOwner)).toBe(true);
    }
  });

  it('adding a LUN whose default owner is down assigns the peer; removing emits', () => {
    const t = new OwnershipTable(['B']);
    expect(t.addLun(5, 'A')).toEqual([{ lun: 5, from: null, to: 'B', reason: 'assign' }]);
    expect(() => t.addLun(5, 'A')).toThrow(/already exists/);
    expect(t.removeLun(5)).toEqual([{ lun: 5, from: 'B', to: null, reason: 'remove' }]);
    expect(t.snapshot()).toEqual([]);
  });
});
