import { describe, it, expect, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  MAX_SLEEP_MS,
  ThrottleEngine,
  ThrottleState,
  expandPlaceholders,
  inWindow,
  parseThrottles,
  parseTimeOfDay,
  relationHolds,
  type ThrottleHooks,
} from '../../../src/replication/group/throttle.js';
import { ManualClock } from '../../support/clock.js';
import type { ThrottleAction, ThrottleSpec } from '../../../src/replication/group/types.js';

const W = 'group g0.throttles';
const ok = (v: unknown) => {
  const r = parseThrottles(v, W);
  expect(r.problems).toEqual([]);
  return r.throttles;
};
const problems = (v: unknown) => parseThrottles(v, W).problems;
const base = { measure: 'netkbps', op: 'gt', value: 200, actions: [{ do: 'sleep-incr', ms: 15 }] };

describe('parseThrottles', () => {
  it('takes the source example from a lab file (YAML)', () => {
    const yaml = `
throttles:
  - { from: "08:00:00", to: "17:00:00", measure: netkbps, op: gt, value: 200, actions: [{ do: sleep-incr, ms: 15 }] }
  - measure: netkbps
    op: gt
    value: 300
    actions:
      - { do: sleep-incr, ms: 5 }
      - { do: log, message: "over 300: %netkbps% KB/s" }
  - { measure: pctwl, op: rises-above, value: 80, actions: [{ do: extension-chain }, { do: event, message: writelog %pctwl%% full }] }
  - { measure: pctwl, op: falls-below, value: 20, actions: [{ do: extension-release }] }
  - { measure: pctcpu, op: ge, value: 150.5, actions: [{ do: delay-set, ms: 0.5 }, { do: command, command: "logger -t sanbox cpu" }] }
`;
    const t = ok(parseYaml(yaml).throttles);
    expect(t).toHaveLength(5);
    expect(t[0]).toEqual({ from: '08:00:00', to: '17:00:00', measure: 'netkbps', op: 'gt', value: 200, actions: [{ do: 'sleep-incr', ms: 15 }] });
    expect(t[1]!.actions).toEqual([{ do: 'sleep-incr', ms: 5 }, { do: 'log', message: 'over 300: %netkbps% KB/s' }]);
    expect(t[1]).not.toHaveProperty('from');
    expect(t[2]!.actions).toEqual([{ do: 'extension-chain' }, { do: 'event', message: 'writelog %pctwl%% full' }]);
    expect(t[4]!.actions[0]).toEqual({ do: 'delay-set', ms: 0.5 });
  });

  it('an absent list is empty; "--" in both from and to means no window; times are normalized', () => {
    expect(ok(undefined)).toEqual([]);
    expect(ok(null)).toEqual([]);
    expect(ok([])).toEqual([]);
    expect(ok([{ ...base, from: '--', to: '--' }])[0]).toEqual(base);
    expect(ok([{ ...base, from: '8:05:00', to: '23:59:59' }])[0]).toMatchObject({ from: '08:05:00', to: '23:59:59' });
    expect(ok([{ ...base, from: '22:00:00', to: '06:00:00' }])[0]).toMatchObject({ from: '22:00:00', to: '06:00:00' });
    expect(ok([{ ...base, value: 0 }])[0]!.value).toBe(0);
  });

  it('the returned specs do not share the input objects', () => {
    const input = [{ ...base, actions: [{ do: 'sleep-incr', ms: 15 }] }];
    const [t] = ok(input);
    input[0]!.actions[0]!.ms = 99;
    expect(t!.actions[0]).toEqual({ do: 'sleep-incr', ms: 15 });
  });

  it('not a list', () => {
    expect(problems({ measure: 'netkbps' })).toEqual([expect.stringMatching(/^group g0\.throttles must be a list of throttles/)]);
    expect(problems('gt 200')).toHaveLength(1);
  });

  it('lists every problem with its path, and leaves the bad throttles out', () => {
    const r = parseThrottles(
      [
        base,
        'sleep',
        { ...base, measure: 'pctmem', op: '>', value: -1, colour: 'red' },
        { ...base, from: '08:00:00' },
        { ...base, from: '25:00:00', to: '8am' },
        { ...base, from: '10:00:00', to: '10:00:00' },
        { ...base, actions: [] },
        { ...base, actions: Array.from({ length: 17 }, () => ({ do: 'sleep-incr', ms: 1 })) },
        {
          ...base,
          actions: [
            { do: 'sleep-incr' },
            { do: 'delay-decr', ms: MAX_SLEEP_MS + 1 },
            { do: 'sleep-set', ms: -1 },
            { do: 'log' },
            { do: 'event', message: '  ' },
            { do: 'command', command: 3 },
            { do: 'extension-chain', ms: 5 },
            { do: 'mail', message: 'x' },
            'sleep',
            { do: 'sleep-incr', ms: 1, message: 'x' },
          ],
        },
      ],
      W,
    );
    expect(r.throttles).toEqual([base]);
    expect(r.problems).toEqual([
      'group g0.throttles[1] must be a mapping (from, to, measure, op, value, actions)',
      'group g0.throttles[2]: unknown key "colour" (expected from, to, measure, op, value, actions)',
      'group g0.throttles[2].measure must be one of netkbps, pctcpu, pctwl, not "pctmem"',
      'group g0.throttles[2].op must be one of lt, le, eq, ne, ge, gt, rises-above, falls-below, not ">"',
      'group g0.throttles[2].value must be a number >= 0, not -1',
      'group g0.throttles[3]: give both from and to (a time window), or neither',
      'group g0.throttles[4].from must be a local time HH:MM:SS (00:00:00-23:59:59), or "--", not "25:00:00"',
      'group g0.throttles[4].to must be a local time HH:MM:SS (00:00:00-23:59:59), or "--", not "8am"',
      'group g0.throttles[5]: from and to are the same time; leave both out for a throttle that is always active',
      'group g0.throttles[6].actions must be a list of 1 to 16 actions like [{ do: sleep-incr, ms: 15 }] (has 0)',
      'group g0.throttles[7].actions must be a list of 1 to 16 actions like [{ do: sleep-incr, ms: 15 }] (has 17)',
      'group g0.throttles[8].actions[0].ms must be a number of milliseconds 0-10000, not undefined',
      'group g0.throttles[8].actions[1].ms must be a number of milliseconds 0-10000, not 10001',
      'group g0.throttles[8].actions[2].ms must be a number of milliseconds 0-10000, not -1',
      'group g0.throttles[8].actions[3].message must be a non-empty string, not undefined',
      'group g0.throttles[8].actions[4].message must be a non-empty string, not "  "',
      'group g0.throttles[8].actions[5].command must be a non-empty string, not 3',
      'group g0.throttles[8].actions[6]: unknown key "ms" for extension-chain (expected do)',
      'group g0.throttles[8].actions[7].do must be one of sleep-set, sleep-incr, sleep-decr, delay-set, delay-incr, delay-decr, extension-chain, extension-release, log, event, command, not "mail"',
      expect.stringMatching(/^group g0\.throttles\[8\]\.actions\[8\] must be a mapping like \{ do: sleep-incr, ms: 15 \}/),
      'group g0.throttles[8].actions[9]: unknown key "message" for sleep-incr (expected do, ms)',
    ]);
  });

  it('values: finite numbers >= 0; pctwl at most 100; eq and ne need integers', () => {
    for (const value of ['200', NaN, Infinity, null, undefined]) expect(problems([{ ...base, value }])).toEqual([expect.stringContaining('.value must be a number >= 0')]);
    expect(problems([{ ...base, measure: 'pctwl', value: 101 }])).toEqual(['group g0.throttles[0].value: pctwl is a percentage (0-100), not 101']);
    expect(problems([{ ...base, measure: 'pctwl', value: 100 }])).toEqual([]);
    expect(problems([{ ...base, measure: 'pctcpu', value: 250 }])).toEqual([]); // more than one core
    expect(problems([{ ...base, op: 'eq', value: 2.5 }])).toEqual(['group g0.throttles[0].value: eq compares whole numbers; give an integer, not 2.5']);
    expect(problems([{ ...base, op: 'ne', value: 3 }])).toEqual([]);
    expect(problems([{ ...base, op: 'lt', value: 2.5 }])).toEqual([]);
  });

  it('from and to must be strings', () => {
    expect(problems([{ ...base, from: 800, to: 1700 }])).toEqual([
      'group g0.throttles[0].from must be a local time HH:MM:SS (00:00:00-23:59:59), or "--", not 800',
      'group g0.throttles[0].to must be a local time HH:MM:SS (00:00:00-23:59:59), or "--", not 1700',
    ]);
    expect(problems([{ ...base, from: '--', to: '17:00:00' }])).toEqual(['group g0.throttles[0]: give both from and to (a time window), or neither']);
  });
});

describe('time windows', () => {
  const at = (h: number, m: number, s = 0) => new Date(2024, 5, 1, h, m, s);
  it('parseTimeOfDay', () => {
    expect(parseTimeOfDay('00:00:00')).toBe(0);
    expect(parseTimeOfDay('23:59:59')).toBe(86399);
    expect(parseTimeOfDay('7:05:09')).toBe(7 * 3600 + 5 * 60 + 9);
    for (const bad of ['24:00:00', '12:60:00', '12:00:60', '12:00', '12:00:00.5', ' 12:00:00', '123:00:00']) expect(parseTimeOfDay(bad)).toBeUndefined();
  });
  it('from is included, to is excluded', () => {
    const w = { from: '08:00:00', to: '17:00:00' };
    expect(inWindow(w, at(7, 59, 59))).toBe(false);
    expect(inWindow(w, at(8, 0, 0))).toBe(true);
    expect(inWindow(w, at(12, 0))).toBe(true);
    expect(inWindow(w, at(16, 59, 59))).toBe(true);
    expect(inWindow(w, at(17, 0, 0))).toBe(false);
    expect(inWindow({}, at(3, 0))).toBe(true);
  });
  it('a window may wrap midnight', () => {
    const w = { from: '22:00:00', to: '06:00:00' };
    expect(inWindow(w, at(21, 59, 59))).toBe(false);
    expect(inWindow(w, at(22, 0))).toBe(true);
    expect(inWindow(w, at(23, 59, 59))).toBe(true);
    expect(inWindow(w, at(0, 0))).toBe(true);
    expect(inWindow(w, at(5, 59, 59))).toBe(true);
    expect(inWindow(w, at(6, 0))).toBe(false);
    expect(inWindow(w, at(12, 0))).toBe(false);
  });
});

describe('ThrottleEngine', () => {
  const m = (netkbps: number, pctwl = 0, pctcpu = 0) => ({ netkbps, pctcpu, pctwl });
  const spec = (op: ThrottleSpec['op'], value: number, extra: Partial<ThrottleSpec> = {}): ThrottleSpec => ({ measure: 'netkbps', op, value, actions: [{ do: 'log', message: op }], ...extra });

  it('relational operators compare the current value (eq and ne rounded to a whole number)', () => {
    const table: Array<[ThrottleSpec['op'], number, boolean[]]> = [
      // current:   199    200    200.4  201
      ['lt', 200, [true, false, false, false]],
      ['le', 200, [true, true, false, false]],
      ['eq', 200, [false, true, true, false]],
      ['ne', 200, [true, false, false, true]],
      ['ge', 200, [false, true, true, true]],
      ['gt', 200, [false, false, true, true]],
    ];
    for (const [op, value, expected] of table) expect([199, 200, 200.4, 201].map((c) => relationHolds(op, c, value))).toEqual(expected);
    expect(relationHolds('rises-above', 300, 200)).toBe(false);
  });

  it('a relational throttle fires at every evaluation it holds, from the first', () => {
    const e = new ThrottleEngine([spec('gt', 200)]);
    expect(e.evaluate(m(250))).toEqual([{ throttle: 0, action: { do: 'log', message: 'gt' } }]);
    expect(e.evaluate(m(250))).toHaveLength(1);
    expect(e.evaluate(m(150))).toEqual([]);
    expect(e.fired).toEqual([2]);
  });

  it('rises-above fires once per crossing: previous <= value < current; the first evaluation is a baseline', () => {
    const e = new ThrottleEngine([spec('rises-above', 200)]);
    const seq = [300, 300, 150, 200, 200, 201, 250, 200, 199, 250, 100];
    expect(seq.map((v) => e.evaluate(m(v)).length)).toEqual([0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0]);
  });

  it('falls-below fires once per crossing: previous >= value > current', () => {
    const e = new ThrottleEngine([spec('falls-below', 200)]);
    const seq = [100, 300, 200, 199, 150, 200, 201, 100, 0];
    expect(seq.map((v) => e.evaluate(m(v)).length)).toEqual([0, 0, 0, 1, 0, 0, 0, 1, 0]);
  });

  it('each measure keeps its own previous value; reset() starts a new baseline', () => {
    const e = new ThrottleEngine([
      { measure: 'pctwl', op: 'rises-above', value: 80, actions: [{ do: 'extension-chain' }] },
      { measure: 'pctcpu', op: 'falls-below', value: 50, actions: [{ do: 'log', message: 'cpu ok' }] },
    ]);
    expect(e.evaluate(m(0, 50, 90))).toEqual([]);
    expect(e.evaluate(m(0, 90, 40))).toEqual([
      { throttle: 0, action: { do: 'extension-chain' } },
      { throttle: 1, action: { do: 'log', message: 'cpu ok' } },
    ]);
    e.evaluate(m(0, 50, 90));
    e.reset();
    expect(e.evaluate(m(0, 90, 40))).toEqual([]); // baseline again
  });

  it('a measurement that is not a finite number matches nothing and breaks the chain of previous values', () => {
    const e = new ThrottleEngine([spec('rises-above', 200), spec('lt', 200), spec('ne', 5)]);
    e.evaluate(m(100));
    expect(e.evaluate(m(NaN))).toEqual([]);
    expect(e.evaluate(m(300)).map((f) => f.throttle)).toEqual([2]); // no previous: not a crossing
    expect(e.evaluate(m(Infinity))).toEqual([]);
  });

  it('throttles fire only inside their window; a crossing outside it is not remembered', () => {
    const clock = new ManualClock(new Date(2024, 5, 1, 16, 59, 50));
    const e = new ThrottleEngine([spec('rises-above', 200, { from: '08:00:00', to: '17:00:00' }), spec('gt', 200, { from: '17:00:00', to: '08:00:00' })], { now: clock.date });
    expect(e.evaluate(m(100))).toEqual([]);
    clock.set(new Date(2024, 5, 1, 17, 0, 0));
    expect(e.evaluate(m(300)).map((f) => f.throttle)).toEqual([1]); // crossed, but after hours
    clock.set(new Date(2024, 5, 2, 8, 0, 0));
    expect(e.evaluate(m(300)).map((f) => f.throttle)).toEqual([]); // still above: no new crossing
    e.evaluate(m(100));
    expect(e.evaluate(m(300)).map((f) => f.throttle)).toEqual([0]);
  });

  it('actions come out in throttle order, then action order', () => {
    const a: ThrottleAction[] = [{ do: 'sleep-incr', ms: 1 }, { do: 'sleep-incr', ms: 2 }];
    const e = new ThrottleEngine([spec('gt', 0, { actions: a }), spec('lt', 0), spec('ge', 0, { actions: [{ do: 'delay-set', ms: 3 }] })]);
    expect(e.evaluate(m(1))).toEqual([
      { throttle: 0, action: a[0] },
      { throttle: 0, action: a[1] },
      { throttle: 2, action: { do: 'delay-set', ms: 3 } },
    ]);
  });

  it('keeps its own copy of the specs', () => {
    const specs = [spec('gt', 100)];
    const e = new ThrottleEngine(specs);
    specs[0]!.value = 1000;
    specs.push(spec('lt', 1000));
    expect(e.evaluate(m(200))).toHaveLength(1);
    expect(e.throttles).toHaveLength(1);
  });
});

describe('ThrottleState', () => {
  const hooks = (over: Partial<ThrottleHooks> = {}) => {
    const calls: string[] = [];
    const h: ThrottleHooks = {
      chainExtension: vi.fn(() => (calls.push('chain'), true)),
      releaseExtension: vi.fn(() => (calls.push('release'), true)),
      log: vi.fn((msg: string) => void calls.push(`log ${msg}`)),
      event: vi.fn((msg: string) => void calls.push(`event ${msg}`)),
      command: vi.fn((cmd: string) => void calls.push(`command ${cmd}`)),
      ...over,
    };
    return { h, calls };
  };

  it('sleep and delay: set, increment, decrement, in order, clamped to [0, 10000] ms', () => {
    const s = new ThrottleState();
    const { h } = hooks();
    expect([s.senderSleepMs, s.ackDelayMs]).toEqual([0, 0]);
    s.apply([{ do: 'sleep-set', ms: 100 }, { do: 'sleep-incr', ms: 15 }, { do: 'sleep-decr', ms: 5 }, { do: 'delay-set', ms: 2 }, { do: 'delay-incr', ms: 0.5 }], h);
    expect([s.senderSleepMs, s.ackDelayMs]).toEqual([110, 2.5]);
    s.apply([{ do: 'sleep-decr', ms: 500 }, { do: 'delay-decr', ms: 3 }], h);
    expect([s.senderSleepMs, s.ackDelayMs]).toEqual([0, 0]);
    s.apply([{ do: 'sleep-set', ms: 9990 }, { do: 'sleep-incr', ms: 20 }, { do: 'delay-incr', ms: 20_000 }], h);
    expect([s.senderSleepMs, s.ackDelayMs]).toEqual([MAX_SLEEP_MS, MAX_SLEEP_MS]);
    s.apply([{ do: 'sleep-decr', ms: 10 }, { do: 'sleep-set', ms: 50 }, { do: 'sleep-incr', ms: 1 }], h);
    expect(s.senderSleepMs).toBe(51);
    expect(new ThrottleState({ senderSleepMs: -3, ackDelayMs: 1e9 })).toMatchObject({ senderSleepMs: 0, ackDelayMs: MAX_SLEEP_MS });
  });

  it('runs the hooks in order with placeholders expanded, and takes the engine output', () => {
    const s = new ThrottleState();
    const { h, calls } = hooks();
    const e = new ThrottleEngine([
      {
        measure: 'pctwl',
        op: 'ge',
        value: 80,
        actions: [
          { do: 'log', message: 'writelog %pctwl%% full, net %netkbps% KB/s, cpu %pctcpu%%' },
          { do: 'extension-chain' },
          { do: 'event', message: 'chained at %pctwl%%' },
          { do: 'command', command: 'echo %pctwl% %unknown% >> /tmp/x' },
          { do: 'extension-release' },
        ],
      },
    ]);
    const m = { netkbps: 1234.56, pctcpu: 2.345, pctwl: 85 };
    const r = s.apply(e.evaluate(m), h, m);
    expect(calls).toEqual(['log writelog 85% full, net 1235 KB/s, cpu 2.3%', 'chain', 'event chained at 85%', 'command echo 85 %unknown% >> /tmp/x', 'release']);
    expect(h.event).toHaveBeenCalledWith('chained at 85%', { throttle: 0, measurements: m });
    expect(r.every((x) => x.ok && x.throttle === 0)).toBe(true);
    expect(r.map((x) => x.action.do)).toEqual(['log', 'extension-chain', 'event', 'command', 'extension-release']);
  });

  it('without measurements the placeholders stay', () => {
    const { h, calls } = hooks();
    new ThrottleState().apply([{ do: 'log', message: 'at %netkbps%' }], h);
    expect(calls).toEqual(['log at %netkbps%']);
    expect(h.event).not.toHaveBeenCalled();
    new ThrottleState().apply([{ do: 'event', message: 'e' }], h);
    expect(h.event).toHaveBeenCalledWith('e', { throttle: null, measurements: null });
  });

  it('a refusing or throwing hook is reported, not thrown, and the next actions still run', () => {
    const { h, calls } = hooks({
      chainExtension: () => false,
      releaseExtension: () => false,
      log: () => {
        throw new Error('syslog gone');
      },
      command: () => {
        throw 'spawn failed';
      },
    });
    const s = new ThrottleState();
    const r = s.apply([{ do: 'extension-chain' }, { do: 'log', message: 'x' }, { do: 'command', command: 'x' }, { do: 'extension-release' }, { do: 'sleep-incr', ms: 7 }, { do: 'event', message: 'y' }], h);
    expect(r.map((x) => [x.ok, x.error])).toEqual([
      [false, 'no writelog extension could be chained in'],
      [false, 'syslog gone'],
      [false, 'spawn failed'],
      [false, 'no writelog extension could be released'],
      [true, undefined],
      [true, undefined],
    ]);
    expect(s.senderSleepMs).toBe(7);
    expect(calls).toEqual(['event y']);
  });

  it('an unknown action (a record from a newer version) is reported', () => {
    const { h } = hooks();
    const r = new ThrottleState().apply([{ do: 'mail', message: 'x' } as unknown as ThrottleAction], h);
    expect(r[0]).toMatchObject({ ok: false, error: 'unknown action "mail"' });
  });

  it('expandPlaceholders formats whole numbers, one decimal below 10', () => {
    expect(expandPlaceholders('%netkbps%/%pctcpu%/%pctwl%', { netkbps: 199.6, pctcpu: 0.04, pctwl: 100 })).toBe('200/0.0/100');
    expect(expandPlaceholders('%pctwl%', { netkbps: 0, pctcpu: 0, pctwl: NaN })).toBe('%pctwl%');
    expect(expandPlaceholders('%NETKBPS% %netkbps', { netkbps: 1, pctcpu: 0, pctwl: 0 })).toBe('%NETKBPS% %netkbps');
  });
});
