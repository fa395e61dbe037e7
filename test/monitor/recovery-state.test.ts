// The monitor's recovery lifecycle table: every legal transition as written in the brief, and
// every absent (phase, event) pair throws.
import { describe, expect, it } from 'vitest';
import { IllegalRecoveryTransitionError, RECOVERY_EVENTS, RECOVERY_PHASES, RECOVERY_TRANSITIONS, backoffMs, canRecoveryTransition, nextPhase, type RecoveryEvent } from '../../src/monitor/recovery-state.js';
import type { RecoveryPhase } from '../../src/monitor/types.js';

const LEGAL: Array<[RecoveryPhase, RecoveryEvent, RecoveryPhase]> = [
  ['watching', 'resync-started', 'resyncing'],
  ['watching', 'give-up', 'held'],
  ['watching', 'seen-connected', 'watching'],
  ['watching', 're-armed', 'watching'],
  ['resyncing', 'resync-done', 'watching'],
  ['resyncing', 'resync-failed', 'backoff'],
  ['resyncing', 'give-up', 'held'],
  ['resyncing', 'seen-connected', 'watching'],
  ['backoff', 'retry-due', 'watching'],
  ['backoff', 'resync-started', 'resyncing'],
  ['backoff', 'give-up', 'held'],
  ['backoff', 'seen-connected', 'watching'],
  ['backoff', 're-armed', 'watching'],
  ['held', 're-armed', 'watching'],
  ['held', 'seen-connected', 'held'],
];

describe('recovery phases', () => {
  it.each(LEGAL)('%s + %s -> %s', (phase, event, to) => {
    expect(nextPhase(phase, event)).toBe(to);
    expect(canRecoveryTransition(phase, event)).toBe(true);
  });

  it('the table holds exactly the legal transitions', () => {
    const rows = RECOVERY_PHASES.flatMap((p) => Object.entries(RECOVERY_TRANSITIONS[p]).map(([e, to]) => [p, e, to]));
    expect(rows).toHaveLength(LEGAL.length);
    expect(new Set(rows.map((r) => r.join(' ')))).toEqual(new Set(LEGAL.map((r) => r.join(' '))));
  });

  const absent = RECOVERY_PHASES.flatMap((p) => RECOVERY_EVENTS.map((e) => [p, e] as const)).filter(([p, e]) => !LEGAL.some(([lp, le]) => lp === p && le === e));
  it.each(absent)('%s + %s throws', (phase, event) => {
    expect(canRecoveryTransition(phase, event)).toBe(false);
    expect(() => nextPhase(phase, event)).toThrow(IllegalRecoveryTransitionError);
    expect(() => nextPhase(phase, event)).toThrow(`illegal recovery transition: ${event} in phase ${phase}`);
  });

  it('every phase and event is covered', () => {
    expect(LEGAL.length + absent.length).toBe(RECOVERY_PHASES.length * RECOVERY_EVENTS.length);
  });

  it('an unknown phase throws', () => {
    expect(() => nextPhase('nowhere' as RecoveryPhase, 'give-up')).toThrow(/unknown recovery phase/);
  });

  it('a held resource seen connected stays held until re-armed', () => {
    expect(nextPhase(nextPhase('held', 'seen-connected'), 're-armed')).toBe('watching');
  });
});

describe('backoffMs', () => {
  it('doubles from the base, capped', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, 1000, 10_000))).toEqual([1000, 2000, 4000, 8000, 10_000]);
  });
  it('fewer than one failure counts as one; huge counts stay finite', () => {
    expect(backoffMs(0, 1000, 10_000)).toBe(1000);
    expect(backoffMs(-3, 1000, 10_000)).toBe(1000);
    expect(backoffMs(10_000, 1000, 10_000)).toBe(10_000);
    expect(backoffMs(Infinity, 0, 10_000)).toBe(0);
  });
  it('refuses negative bounds', () => {
    expect(() => backoffMs(1, -1, 10)).toThrow(/must be >= 0/);
  });
});
