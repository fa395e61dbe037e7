import { describe, expect, it } from 'vitest';
import {
  canPowerTransition,
  dumpOutcome,
  IllegalPowerTransitionError,
  POWER_EVENTS,
  POWER_STATES,
  POWER_TRANSITIONS,
  powerTransition,
  type PowerEvent,
  type PowerState,
} from '../../../src/array/chassis/index.js';

describe('chassis power table', () => {
  const legal: [PowerState, PowerEvent, PowerState][] = [
    ['off', 'power-restore', 'restoring'],
    ['restoring', 'restore-done', 'on'],
    ['restoring', 'restore-interrupted', 'off'],
    ['on', 'power-fail', 'failing'],
    ['failing', 'dump-done', 'off'],
    ['failing', 'dump-torn', 'off'],
    ['failing', 'no-hold-up', 'off'],
    ['failing', 'power-restore', 'on'],
  ];

  it('every legal transition', () => {
    for (const [s, e, to] of legal) {
      expect(canPowerTransition(s, e)).toBe(true);
      expect(powerTransition(s, e), `${s}/${e}`).toBe(to);
    }
  });

  it('every other (state, event) pair throws and leaves nothing changed', () => {
    const legalSet = new Set(legal.map(([s, e]) => `${s}/${e}`));
    let illegal = 0;
    for (const s of POWER_STATES) {
      for (const e of POWER_EVENTS) {
        if (legalSet.has(`${s}/${e}`)) continue;
        illegal++;
        expect(canPowerTransition(s, e)).toBe(false);
        expect(() => powerTransition(s, e), `${s}/${e}`).toThrow(IllegalPowerTransitionError);
      }
    }
    const tableRows = Object.values(POWER_TRANSITIONS).reduce((n, row) => n + Object.keys(row).length, 0);
    expect(tableRows).toBe(legal.length);
    expect(illegal).toBe(POWER_STATES.length * POWER_EVENTS.length - legal.length);
  });

  it('sample illegal transitions name the state and the event', () => {
    const samples: [PowerState, PowerEvent][] = [
      ['on', 'power-restore'], // already on
      ['off', 'power-fail'], // nothing to lose
      ['restoring', 'power-fail'], // shows as restore-interrupted once the SPs are cut
      ['failing', 'power-fail'], // a second failure while failing
      ['on', 'dump-done'],
      ['off', 'restore-done'],
    ];
    for (const [s, e] of samples) {
      try {
        powerTransition(s, e);
        expect.fail(`${s}/${e} should be illegal`);
      } catch (err) {
        expect(err).toBeInstanceOf(IllegalPowerTransitionError);
        expect((err as IllegalPowerTransitionError).state).toBe(s);
        expect((err as IllegalPowerTransitionError).event).toBe(e);
        expect((err as Error).message).toContain(s);
        expect((err as Error).message).toContain(e);
      }
    }
  });

  it('is closed: every target is a state, every row and event is known, every state is reachable from off', () => {
    const states = new Set<string>(POWER_STATES);
    const events = new Set<string>(POWER_EVENTS);
    expect(Object.keys(POWER_TRANSITIONS).sort()).toEqual([...POWER_STATES].sort());
    for (const row of Object.values(POWER_TRANSITIONS)) {
      for (const [e, to] of Object.entries(row)) {
        expect(events.has(e), e).toBe(true);
        expect(states.has(to!), to).toBe(true);
      }
    }
    const seen = new Set<PowerState>(['off']);
    const todo: PowerState[] = ['off'];
    while (todo.length) {
      const s = todo.pop()!;
      for (const to of Object.values(POWER_TRANSITIONS[s])) {
        if (!seen.has(to!)) {
          seen.add(to!);
          todo.push(to!);
        }
      }
    }
    expect([...seen].sort()).toEqual([...POWER_STATES].sort());
    // Every event is used somewhere, and every state can be left.
    const used = new Set(Object.values(POWER_TRANSITIONS).flatMap((row) => Object.keys(row)));
    expect([...used].sort()).toEqual([...POWER_EVENTS].sort());
    for (const s of POWER_STATES) expect(Object.keys(POWER_TRANSITIONS[s]).length, s).toBeGreaterThan(0);
  });

  it('rejects an unknown state', () => {
    expect(() => powerTransition('dimmed' as PowerState, 'power-fail')).toThrow(/unknown chassis power state/);
  });

  const drive = (start: PowerState, events: PowerEvent[]): PowerState[] => {
    let s = start;
    return events.map((e) => (s = powerTransition(s, e)));
  };

  it('drives the scenarios of the chassis', () => {
    expect(drive('off', ['power-restore', 'restore-done'])).toEqual(['restoring', 'on']); // start
    expect(drive('on', ['power-fail', 'dump-done', 'power-restore', 'restore-done'])).toEqual(['failing', 'off', 'restoring', 'on']);
    expect(drive('on', ['power-fail', 'power-restore'])).toEqual(['failing', 'on']); // back mid-dump
    expect(drive('on', ['power-fail', 'dump-torn'])).toEqual(['failing', 'off']); // hold-up ran out
    expect(drive('on', ['power-fail', 'no-hold-up'])).toEqual(['failing', 'off']); // battery failed
    expect(drive('off', ['power-restore', 'restore-interrupted', 'power-restore', 'restore-done'])).toEqual(['restoring', 'off', 'restoring', 'on']); // second failure during restore
  });
});

describe('dumpOutcome', () => {
  it('no hold-up: the SPs stopped without dumping', () => {
    expect(dumpOutcome(0, [{ dumped: false, reason: 'no battery hold-up' }])).toBe('no-hold-up');
    expect(dumpOutcome(0, [])).toBe('no-hold-up');
  });

  it('complete dumps, SPs that were not running or not serving', () => {
    expect(dumpOutcome(5000, [{ dumped: true }, { dumped: true }])).toBe('dump-done');
    expect(dumpOutcome(5000, [{ dumped: true }, { state: 'not running' }])).toBe('dump-done');
    expect(dumpOutcome(5000, [{ dumped: true }, { dumped: false, reason: 'SP was booting' }])).toBe('dump-done');
  });

  it('a dump cut short or an SP failing mid-dump tears it', () => {
    expect(dumpOutcome(5000, [{ dumped: true }, { dumped: false }])).toBe('dump-torn');
    expect(dumpOutcome(5000, [{ dumped: true }, { error: 'SP B exited' }])).toBe('dump-torn');
  });
});
