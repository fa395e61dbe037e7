// The event-sum check (src/scenario/runner/checks.ts eventSum) on a run's events and steps, without
// a lab: the field summed over the events of the type and source, only from the start of the
// `after` step on, the bounds, and what the outcome says and carries.
import { describe, expect, it } from 'vitest';
import { checkLabel, eventSum } from '../../../src/scenario/runner/checks.js';
import type { EventRecord, StepRecord } from '../../../src/scenario/report/types.js';
import type { CheckSpec } from '../../../src/scenario/spec/types.js';

type EventSum = Extract<CheckSpec, { kind: 'event-sum' }>;
const check = (over: Partial<EventSum> = {}): EventSum => ({ kind: 'event-sum', type: 'mirror.resync-done', field: 'bytesSent', source: null, after: null, min: 0, max: null, ...over });

const resync = (tMs: number, source: string, bytesSent: unknown): EventRecord => ({ tMs, source, type: 'mirror.resync-done', data: { seq: tMs, type: 'mirror.resync-done', bytesSent } });
const EVENTS: EventRecord[] = [
  resync(1_000, 'alpha', 33_554_432), // the first full copy, before the failback
  { tMs: 5_000, source: 'alpha', type: 'mirror.resync-started', data: { bytesSent: 999 } },
  resync(12_000, 'alpha', 1_048_576),
  resync(13_000, 'bravo', 3_145_728),
  resync(14_000, 'bravo', undefined),
];
const step = (name: string, startMs: number): StepRecord => ({ source: 'step', index: 0, name, kind: 'site-restore', label: name, command: '', plannedMs: null, startMs, endMs: startMs + 100, ok: true });
const STEPS = [step('disaster', 2_000), step('return', 10_000)];

describe('check event-sum', () => {
  it('sums the field of every event of the type over the run, or only from the start of the after step on', () => {
    expect(eventSum(check(), EVENTS, STEPS)).toEqual({
      ok: true,
      skipped: false,
      summary: '37748736 bytes in 3 events (1 more without a numeric bytesSent)',
      details: { sum: 37_748_736, events: 3, withoutField: 1 },
    });
    const after = eventSum(check({ after: 'return', max: 16 << 20 }), EVENTS, STEPS);
    expect(after).toEqual({ ok: true, skipped: false, summary: '4194304 bytes in 2 events (1 more without a numeric bytesSent)', details: { sum: 4_194_304, events: 2, withoutField: 1 } });
    // an event at the very start of the step counts
    expect(eventSum(check({ after: 'return' }), [resync(10_000, 'alpha', 4096)], STEPS).details).toEqual({ sum: 4096, events: 1 });
    expect(eventSum(check({ source: 'alpha', after: 'return' }), EVENTS, STEPS).summary).toBe('1048576 bytes in 1 event');
  });

  it('fails outside min..max, when the after step did not run, and says the sum', () => {
    expect(eventSum(check({ max: 16 << 20 }), EVENTS, STEPS)).toMatchObject({ ok: false, summary: '37748736 bytes in 3 events (1 more without a numeric bytesSent): over max 16777216', details: { sum: 37_748_736, events: 3 } });
    expect(eventSum(check({ min: 1, source: 'charlie' }), EVENTS, STEPS)).toMatchObject({ ok: false, summary: '0 bytes in 0 events: under min 1', details: { sum: 0, events: 0 } });
    expect(eventSum(check({ after: 'failback' }), EVENTS, STEPS)).toMatchObject({ ok: false, summary: 'step failback did not run' });
    expect(eventSum(check({ field: 'seconds', type: 'mirror.resync-started' }), EVENTS, STEPS).summary).toBe('0 seconds in 0 events (1 more without a numeric seconds)');
  });

  it('is labelled with what it sums and its bounds', () => {
    expect(checkLabel(check({ source: 'alpha', after: 'return', max: 16 << 20 }))).toBe('sum of bytesSent of mirror.resync-done from alpha from step return on in 0..16777216');
  });
});
