// The consistency group state table (src/replication/group/state.ts) and the invariants of a
// group record (src/replication/group/invariants.ts), tested directly: every legal transition,
// every absent one refused, the table closed, and the pure transition function.
import { describe, expect, it } from 'vitest';
import {
  adoptOps,
  applyGroupOp,
  assertGroup,
  assertGroupRecord,
  canApplyGroupOp,
  DEFAULT_GROUP_ATTRIBUTES,
  GROUP_OP_REGION,
  GROUP_OPS,
  GROUP_REGION_STATES,
  GROUP_TRANSITIONS,
  GroupError,
  GroupInvariantError,
  groupPhase,
  IllegalGroupOpError,
  initialGroupState,
  newGroupRecord,
  writeRoute,
  type GroupOp,
  type GroupOpName,
  type GroupRegion,
  type GroupState,
} from '../../../src/replication/group/index.js';

// Written out by hand from the code's behaviour: region, from, op -> to. Anything else is illegal.
const EXPECTED: Record<string, string> = {
  'modeChange steady switch-start': 'switching',
  'modeChange switching switch-done': 'steady',
  'modeChange switching switch-abort': 'steady',

  'bypass off enter-bypass': 'entering',
  'bypass off promote': 'on',
  'bypass off adopt-bypass-on': 'on',
  'bypass off adopt-bypass-off': 'off',
  'bypass entering bypass-saved': 'resyncing',
  'bypass entering bypass-settled': 'on',
  'bypass entering adopt-bypass-on': 'entering',
  'bypass entering adopt-bypass-off': 'entering',
  'bypass resyncing bypass-settled': 'on',
  'bypass resyncing adopt-bypass-on': 'resyncing',
  'bypass resyncing adopt-bypass-off': 'resyncing',
  'bypass on leave-bypass': 'off',
  'bypass on promote': 'on',
  'bypass on adopt-bypass-on': 'on',
  'bypass on adopt-bypass-off': 'off',

  'copy idle refresh-start': 'refresh',
  'copy idle backfresh-start': 'backfresh-offline',
  'copy refresh refresh-done': 'idle',
  'copy refresh refresh-failed': 'idle',
  'copy backfresh-offline backfresh-done': 'idle',
  'copy backfresh-offline backfresh-abort': 'idle',

  'sender running pause': 'paused',
  'sender running resume': 'running',
  'sender running adopt-paused': 'paused',
  'sender running adopt-running': 'running',
  'sender paused pause': 'paused',
  'sender paused resume': 'running',
  'sender paused adopt-paused': 'paused',
  'sender paused adopt-running': 'running',
};

const REGIONS = Object.keys(GROUP_REGION_STATES) as GroupRegion[];
const BASE: GroupState = { modeChange: 'steady', bypass: 'off', copy: 'idle', sender: 'running' };

/** An op with plausible arguments. */
function opOf(name: GroupOpName): GroupOp {
  const args: Record<string, unknown> = { from: 'asynchronous', to: 'synchronous', reason: 'overflow', records: 3, why: 'test', name: 'g0', bytesTotal: 10, bytes: 10, error: 'boom' };
  if (name === 'backfresh-start' || name === 'backfresh-done') args.from = 'beta';
  return { op: name, ...args } as unknown as GroupOp;
}

function stateWith<R extends GroupRegion>(region: R, s: GroupState[R]): GroupState {
  return { ...BASE, [region]: s };
}

describe('group state table', () => {
  for (const region of REGIONS)
    for (const from of GROUP_REGION_STATES[region])
      for (const op of GROUP_OPS.filter((o) => GROUP_OP_REGION[o] === region)) {
        const key = `${region} ${from} ${op}`;
        const want = EXPECTED[key];
        it(`${key} -> ${want ?? 'illegal'}`, () => {
          const state = stateWith(region, from as never);
          if (want) {
            expect(canApplyGroupOp(state, op)).toBe(true);
            const r = applyGroupOp(state, opOf(op));
            expect(r.state).toEqual({ ...state, [region]: want });
          } else {
            expect(canApplyGroupOp(state, op)).toBe(false);
            expect(() => applyGroupOp(state, opOf(op))).toThrow(IllegalGroupOpError);
          }
        });
      }

  it('lists exactly the expected transitions', () => {
    const actual: Record<string, string> = {};
    for (const region of REGIONS)
      for (const [from, row] of Object.entries(GROUP_TRANSITIONS[region])) for (const [op, to] of Object.entries(row as Record<string, string>)) actual[`${region} ${from} ${op}`] = to;
    expect(actual).toEqual(EXPECTED);
  });

  it('is closed: a row for every state, targets among the states, ops only in their own region', () => {
    for (const region of REGIONS) {
      const states = GROUP_REGION_STATES[region] as readonly string[];
      const table = GROUP_TRANSITIONS[region] as Record<string, Record<string, string>>;
      expect(Object.keys(table).sort()).toEqual([...states].sort());
      for (const row of Object.values(table))
        for (const [op, to] of Object.entries(row)) {
          expect(states).toContain(to);
          expect(GROUP_OP_REGION[op as GroupOpName]).toBe(region);
        }
    }
    // every op belongs to a region and is legal somewhere
    for (const op of GROUP_OPS) {
      expect(REGIONS).toContain(GROUP_OP_REGION[op]);
      const rows = Object.values(GROUP_TRANSITIONS[GROUP_OP_REGION[op]] as Record<string, Record<string, string>>);
      expect(rows.some((row) => row[op] !== undefined)).toBe(true);
    }
    // every state is reachable from the initial ones
    for (const region of REGIONS) {
      const table = GROUP_TRANSITIONS[region] as Record<string, Record<string, string>>;
      const start = region === 'bypass' ? ['off', 'on'] : region === 'sender' ? ['running', 'paused'] : [GROUP_REGION_STATES[region][0]!];
      const seen = new Set<string>(start);
      for (let grew = true; grew; ) {
        grew = false;
        for (const s of [...seen]) for (const to of Object.values(table[s] ?? {})) if (!seen.has(to)) (seen.add(to), (grew = true));
      }
      expect([...seen].sort()).toEqual([...(GROUP_REGION_STATES[region] as readonly string[])].sort());
    }
  });

  it('a sample of illegal ops: refused with a clear GroupError, the state unchanged', () => {
    const samples: Array<[GroupState, GroupOpName, RegExp]> = [
      [BASE, 'switch-done', /illegal group op switch-done .*modeChange is steady/],
      [stateWith('modeChange', 'switching'), 'switch-start', /modeChange is switching/],
      [BASE, 'leave-bypass', /bypass is off/],
      [stateWith('bypass', 'on'), 'enter-bypass', /bypass is on/],
      [stateWith('bypass', 'entering'), 'leave-bypass', /bypass is entering/],
      [stateWith('bypass', 'resyncing'), 'promote', /bypass is resyncing/],
      [stateWith('copy', 'refresh'), 'backfresh-start', /copy is refresh/],
      [stateWith('copy', 'backfresh-offline'), 'refresh-start', /copy is backfresh-offline/],
      [BASE, 'refresh-done', /copy is idle/],
      // a refresh never starts during a mode change (both run in the group's exclusive section)
      [stateWith('modeChange', 'switching'), 'refresh-start', /needs modeChange steady, it is switching/],
    ];
    for (const [state, op, msg] of samples) {
      const before = structuredClone(state);
      let err: unknown;
      try {
        applyGroupOp(state, opOf(op));
      } catch (e) {
        err = e;
      }
      expect(err, op).toBeInstanceOf(IllegalGroupOpError);
      expect(err).toBeInstanceOf(GroupError);
      expect((err as GroupError).code).toBe('state');
      expect((err as Error).message).toMatch(msg);
      expect(state).toEqual(before);
    }
    expect(() => applyGroupOp(BASE, { op: 'no-such-op' } as unknown as GroupOp)).toThrow(/unknown op/);
  });

  it('is pure: the input is not changed; the events are what the op reports', () => {
    const s = structuredClone(BASE);
    const r = applyGroupOp(s, { op: 'switch-start' });
    expect(s).toEqual(BASE);
    expect(r.events).toEqual([]);
    expect(applyGroupOp(r.state, { op: 'switch-done', from: 'synchronous', to: 'asynchronous' }).events).toEqual([{ type: 'mode', details: { from: 'synchronous', to: 'asynchronous' } }]);
    expect(applyGroupOp(stateWith('bypass', 'entering'), { op: 'bypass-saved', reason: 'gap', records: 2 }).events).toEqual([{ type: 'bypass', details: { on: true, reason: 'gap', records: 2 } }]);
    expect(applyGroupOp(stateWith('bypass', 'on'), { op: 'leave-bypass', why: 'synchronous mode' }).events).toEqual([{ type: 'bypass', details: { on: false, why: 'synchronous mode' } }]);
    expect(applyGroupOp(BASE, { op: 'pause' }).events).toEqual([{ type: 'paused', details: {} }]);
    expect(applyGroupOp(BASE, { op: 'refresh-start', bytesTotal: 5 }).events).toEqual([{ type: 'refresh-started', details: { bytesTotal: 5 } }]);
    expect(applyGroupOp(BASE, { op: 'backfresh-start', from: 'beta' }).events).toEqual([{ type: 'backfresh-started', details: { from: 'beta' } }]);
    expect(applyGroupOp(BASE, { op: 'enter-bypass', reason: 'overflow' }).events).toEqual([]);
    expect(applyGroupOp(BASE, { op: 'adopt-paused' }).events).toEqual([]);
  });
});

describe('derived views of the state', () => {
  it('the route of a host write', () => {
    expect(writeRoute(BASE, 'synchronous')).toBe('direct');
    expect(writeRoute(BASE, 'asynchronous')).toBe('journal');
    expect(writeRoute(BASE, 'near-synchronous')).toBe('journal');
    for (const b of ['entering', 'resyncing', 'on'] as const) expect(writeRoute(stateWith('bypass', b), 'asynchronous')).toBe('bypass');
    expect(writeRoute({ ...BASE, modeChange: 'switching', bypass: 'on' }, 'asynchronous')).toBe('wait');
  });

  it('one phase name, the most constraining first', () => {
    expect(groupPhase(BASE, 'asynchronous')).toBe('journaling');
    expect(groupPhase(BASE, 'synchronous')).toBe('direct');
    expect(groupPhase(stateWith('sender', 'paused'), 'asynchronous')).toBe('paused');
    expect(groupPhase({ ...BASE, copy: 'refresh', sender: 'paused' }, 'asynchronous')).toBe('refresh');
    expect(groupPhase({ ...BASE, bypass: 'on', copy: 'refresh' }, 'asynchronous')).toBe('bypass');
    expect(groupPhase(stateWith('bypass', 'resyncing'), 'asynchronous')).toBe('entering-bypass');
    expect(groupPhase({ ...BASE, modeChange: 'switching', bypass: 'entering' }, 'asynchronous')).toBe('switching');
    expect(groupPhase({ ...BASE, copy: 'backfresh-offline', bypass: 'on' }, 'asynchronous')).toBe('backfresh-offline');
  });

  it('a record stands for its state; an adopted record moves the state to it', () => {
    const r = newGroupRecord('g0-1', 'g0', ['m1'], DEFAULT_GROUP_ATTRIBUTES);
    expect(initialGroupState(r)).toEqual(BASE);
    const on = { ...r, paused: true, bypass: { on: true, reason: 'overflow' as const, since: new Date().toISOString() } };
    expect(initialGroupState(on)).toEqual({ ...BASE, bypass: 'on', sender: 'paused' });
    let s = BASE;
    for (const op of adoptOps(on)) s = applyGroupOp(s, op).state;
    expect(s).toEqual({ ...BASE, bypass: 'on', sender: 'paused' });
    for (const op of adoptOps(r)) s = applyGroupOp(s, op).state;
    expect(s).toEqual(BASE);
    // while bypass is being entered here, the phase stays
    s = stateWith('bypass', 'entering');
    for (const op of adoptOps(r)) s = applyGroupOp(s, op).state;
    expect(s.bypass).toBe('entering');
  });
});

describe('group record invariants', () => {
  const rec = () => newGroupRecord('g0-1', 'g0', ['m1', 'm2'], DEFAULT_GROUP_ATTRIBUTES);

  it('hold for a new record and its state', () => {
    expect(() => assertGroup(rec(), BASE)).not.toThrow();
    const r = rec();
    r.bypass = { on: true, reason: 'operator', since: new Date().toISOString() };
    r.paused = true;
    expect(() => assertGroup(r, { ...BASE, bypass: 'resyncing', sender: 'paused' })).not.toThrow();
  });

  it('catch a broken record', () => {
    const bad: Array<[string, (r: ReturnType<typeof rec>) => void]> = [
      ['no member', (r) => (r.members = [])],
      ['listed twice', (r) => (r.members = ['m1', 'm1'])],
      ['generation', (r) => (r.generation = 0)],
      ['bypass on with reason', (r) => (r.bypass = { on: true, reason: null, since: new Date().toISOString() })],
      ['bypass on without since', (r) => (r.bypass = { on: true, reason: 'overflow', since: null })],
      ['bypass off with reason', (r) => (r.bypass = { on: false, reason: 'operator', since: null })],
      ['refresh 11 of 10', (r) => (r.refresh = { running: true, bytesDone: 11, bytesTotal: 10 })],
    ];
    for (const [msg, breakIt] of bad) {
      const r = rec();
      breakIt(r);
      expect(() => assertGroupRecord(r), msg).toThrow(GroupInvariantError);
      expect(() => assertGroupRecord(r)).toThrow(msg);
    }
  });

  it('paranoid: the record survives its round trip (attributes valid)', () => {
    const r = rec();
    r.perfEveryMs = 1; // attributeProblems refuses it; only the full check sees it
    expect(process.env.SANBOX_PARANOID).toBeTruthy();
    expect(() => assertGroupRecord(r)).toThrow(/perfEveryMs/);
  });

  it('catch a state that disagrees with its record', () => {
    expect(() => assertGroup(rec(), stateWith('bypass', 'on'))).toThrow(/bypass.on false/);
    expect(() => assertGroup(rec(), stateWith('sender', 'paused'))).toThrow(/paused false/);
    expect(() => assertGroup(rec(), stateWith('copy', 'refresh'))).toThrow(/refresh running without/);
    expect(() => assertGroup(rec(), { ...BASE, copy: 'bogus' } as unknown as GroupState)).toThrow(/copy state bogus/);
    const r = rec();
    r.refresh = { running: false, bytesDone: 3, bytesTotal: 10 }; // a failed refresh leaves its progress
    expect(() => assertGroup(r, BASE)).not.toThrow();
  });
});
