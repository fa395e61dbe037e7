// The recovery decision: every reason reachable, the order of the checks for a suspended pair,
// and, over seeded random inputs, the safety rules: when the monitor must never resynchronize.
import { describe, expect, it } from 'vitest';
import { DECISION_REASONS, REASON_ACTIONS, decideRecovery, type Decision, type DecisionInput, type DecisionReason } from '../../src/monitor/decision.js';
import { PAIR_STATES, type PairReading } from '../../src/monitor/types.js';
import { seededRandom, type Random } from '../support/random.js';

const NOW = new Date('2024-06-01T12:00:00.000Z');
const LATER = '2024-06-01T12:05:00.000Z';
const EARLIER = '2024-06-01T11:55:00.000Z';

function reading(over: Partial<PairReading> = {}): PairReading {
  return { kind: 'mirror', pair: 'suspended', reason: 'fractured-link', detail: 'ACTIVE; bravo:0 CONSISTENT fractured (link)', role: 'primary', epoch: 1, primaryArray: 'alpha', pvol: '', svol: '', linkUp: true, byOperator: false, ...over };
}

type Entry = DecisionInput['entry'];
function entry(over: Partial<Entry> = {}): Entry {
  return { autorecover: true, resyncAdminFractures: false, phase: 'watching', direction: { primaryArray: 'alpha', epoch: 1 }, failures: [], retryAt: null, ...over };
}

const decide = (r: Partial<PairReading> = {}, e: Partial<Entry> = {}, maxFailures = 3): Decision => decideRecovery({ entry: entry(e), reading: reading(r), now: NOW, maxFailures });

describe('decideRecovery', () => {
  const cases: Array<[DecisionReason, Decision]> = [
    ['connected', decide({ pair: 'connected', reason: 'in-sync' })],
    ['in-progress', decide({ pair: 'resync', reason: 'synchronizing' })],
    ['unknown', decide({ pair: 'unknown' })],
    ['error-suspended', decide({ pair: 'error-suspended', reason: 'split-brain' })],
    ['deleted', decide({ pair: 'deleted', role: null })],
    ['autorecover-off', decide({}, { autorecover: false })],
    ['operator-suspension', decide({ byOperator: true })],
    ['held', decide({}, { phase: 'held' })],
    ['not-primary', decide({ role: 'secondary', linkUp: false })],
    ['direction-changed', decide({ primaryArray: 'bravo', epoch: 2 })],
    ['too-many-failures', decide({}, { failures: [EARLIER, EARLIER, EARLIER] })],
    ['link-down', decide({ linkUp: false })],
    ['backoff', decide({}, { phase: 'backoff', retryAt: LATER })],
    ['resync', decide()],
  ];
  it.each(cases)('%s is reachable', (reason, d) => {
    expect(d.reason).toBe(reason);
    expect(d.action).toBe(REASON_ACTIONS[reason]);
    expect(d.detail.length).toBeGreaterThan(0);
  });

  it('every reason of the list is covered above, and each has an action', () => {
    expect(new Set(cases.map(([r]) => r))).toEqual(new Set(DECISION_REASONS));
    for (const r of DECISION_REASONS) expect(REASON_ACTIONS[r]).toBeDefined();
  });

  it('the actions: resync only for resync, hold for a changed direction and too many failures', () => {
    expect(decide().action).toBe('resync');
    expect(decide({ primaryArray: 'bravo' }).action).toBe('hold');
    expect(decide({}, { failures: ['a', 'b', 'c'] }).action).toBe('hold');
    expect(decide({ linkUp: false }).action).toBe('wait');
    expect(decide({ pair: 'error-suspended' }).action).toBe('record');
  });

  it('an operator suspension is resynchronized with resyncAdminFractures', () => {
    expect(decide({ byOperator: true }, { resyncAdminFractures: true }).reason).toBe('resync');
  });

  it('a changed epoch alone is a changed direction; no direction recorded yet is none', () => {
    expect(decide({ epoch: 2 }).reason).toBe('direction-changed');
    expect(decide({ primaryArray: 'bravo', epoch: 2 }, { direction: null }).reason).toBe('resync');
  });

  it('a retryAt in the past, now, or unparsable does not wait', () => {
    expect(decide({}, { retryAt: EARLIER }).reason).toBe('resync');
    expect(decide({}, { retryAt: NOW.toISOString() }).reason).toBe('resync');
    expect(decide({}, { retryAt: 'garbage' }).reason).toBe('resync');
  });

  it('order: autorecover off > operator > held > not-primary > direction > failures > link > backoff', () => {
    const all: [Partial<PairReading>, Partial<Entry>] = [
      { byOperator: true, role: 'secondary', primaryArray: 'bravo', linkUp: false },
      { autorecover: false, phase: 'held', failures: ['a', 'b', 'c'], retryAt: LATER },
    ];
    const order: DecisionReason[] = ['autorecover-off', 'operator-suspension', 'held', 'not-primary', 'direction-changed', 'too-many-failures', 'link-down', 'backoff', 'resync'];
    // Remove the cause of each reason in turn: the next one in the order answers.
    const fixes: Array<[Partial<PairReading>, Partial<Entry>]> = [
      [{}, { autorecover: true }],
      [{ byOperator: false }, {}],
      [{}, { phase: 'backoff' }],
      [{ role: 'primary' }, {}],
      [{ primaryArray: 'alpha' }, {}],
      [{}, { failures: [] }],
      [{ linkUp: true }, {}],
      [{}, { retryAt: null }],
    ];
    let [r, e] = all;
    expect(decide(r, e).reason).toBe(order[0]);
    fixes.forEach(([fr, fe], i) => {
      r = { ...r, ...fr };
      e = { ...e, ...fe };
      expect(decide(r, e).reason).toBe(order[i + 1]);
    });
  });

  it('error-suspended and deleted are recorded even with everything else set for a resync', () => {
    for (const pair of ['error-suspended', 'deleted', 'connected', 'resync'] as const) expect(decide({ pair }).action).not.toBe('resync');
  });
});

const pick = <T>(rnd: Random, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const coin = (rnd: Random): boolean => rnd() < 0.5;

function randomInput(rnd: Random): DecisionInput {
  const failures = Array.from({ length: Math.floor(rnd() * 5) }, () => EARLIER);
  return {
    entry: {
      autorecover: coin(rnd),
      resyncAdminFractures: coin(rnd),
      phase: pick(rnd, ['watching', 'resyncing', 'backoff', 'held'] as const),
      direction: coin(rnd) ? null : { primaryArray: pick(rnd, ['alpha', 'bravo']), epoch: pick(rnd, [1, 2]) },
      failures,
      retryAt: pick(rnd, [null, EARLIER, LATER]),
    },
    reading: reading({
      pair: pick(rnd, [...PAIR_STATES, 'suspended', 'suspended', 'suspended']),
      role: pick(rnd, ['primary', 'primary', 'secondary', null] as const),
      epoch: pick(rnd, [1, 2, null]),
      primaryArray: pick(rnd, ['alpha', 'alpha', 'bravo', null]),
      linkUp: rnd() < 0.7,
      byOperator: rnd() < 0.3,
    }),
    now: NOW,
    maxFailures: 1 + Math.floor(rnd() * 4),
  };
}

describe('decideRecovery safety over random inputs', () => {
  it('never resynchronizes when a rule forbids it', () => {
    const rnd = seededRandom(0x5eed0);
    const seen = new Set<DecisionReason>();
    for (let n = 0; n < 20_000; n++) {
      const input = randomInput(rnd);
      const { entry: e, reading: r } = input;
      const d = decideRecovery(input);
      seen.add(d.reason);
      expect(d.action).toBe(REASON_ACTIONS[d.reason]);
      if (d.action !== 'resync') continue;
      const ctx = JSON.stringify(input);
      expect(e.autorecover, ctx).toBe(true);
      expect(r.pair, ctx).toBe('suspended');
      expect(!r.byOperator || e.resyncAdminFractures, ctx).toBe(true);
      expect(r.linkUp, ctx).toBe(true);
      expect(r.role, ctx).toBe('primary');
      expect(e.phase, ctx).not.toBe('held');
      expect(e.failures.length < input.maxFailures, ctx).toBe(true);
      if (e.direction) expect([r.primaryArray, r.epoch], ctx).toEqual([e.direction.primaryArray, e.direction.epoch]);
    }
    // the generator reaches every reason, so the rules above were exercised
    expect(seen).toEqual(new Set(DECISION_REASONS));
  });
});
