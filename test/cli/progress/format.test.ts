// The progress formatter (src/cli/progress/format.ts) as pure functions: the bar, percent, ETA,
// durations, rates, the terminal line fitted to its width and the log's sentence.
import { describe, expect, it } from 'vitest';
import { amountText, assertState, barText, BYTES, durationText, etaSeconds, fitText, percent, plainLine, rateText, ttyLine, type ProgressState } from '../../../src/cli/progress/format.js';

const MiB = 2 ** 20;
const state = (over: Partial<ProgressState> = {}): ProgressState => ({ label: 'clone c1', unit: BYTES, done: 12.5 * MiB, total: 64 * MiB, rate: 30.1 * MiB, elapsedMs: 3000, ...over });

describe('progress format: pieces', () => {
  it('bar: filled in proportion, rounded down, always `cells` wide', () => {
    expect(barText(0, 10)).toBe('[..........]');
    expect(barText(0.45, 10)).toBe('[####......]');
    expect(barText(0.999, 10)).toBe('[#########.]');
    expect(barText(1, 10)).toBe('[##########]');
    for (const f of [0, 0.1, 0.33, 0.5, 0.99, 1]) expect(barText(f, 17)).toHaveLength(19);
    expect(() => barText(1.01, 10)).toThrow(RangeError);
    expect(() => barText(-0.1, 10)).toThrow(RangeError);
    expect(() => barText(Number.NaN, 10)).toThrow(RangeError);
    expect(() => barText(0.5, 0)).toThrow(RangeError);
  });

  it('percent: rounded down, 100 only when all is done, an empty total is done', () => {
    expect(percent(0, 8)).toBe(0);
    expect(percent(4, 8)).toBe(50);
    expect(percent(999, 1000)).toBe(99);
    expect(percent(8, 8)).toBe(100);
    expect(percent(0, 0)).toBe(100);
  });

  it('ETA: from the rate; unknown (undefined) when the rate is 0 or unknown, or the total is', () => {
    expect(etaSeconds(16, 64, 8)).toBe(6);
    expect(etaSeconds(64, 64, undefined)).toBe(0);
    expect(etaSeconds(16, 64, 0)).toBeUndefined();
    expect(etaSeconds(16, 64, undefined)).toBeUndefined();
    expect(etaSeconds(16, undefined, 8)).toBeUndefined();
  });

  it('durations: seconds, minutes, hours; `?` when unknown; tenths for a finished job', () => {
    expect(durationText(undefined)).toBe('?');
    expect(durationText(0)).toBe('0s');
    expect(durationText(1.2)).toBe('2s'); // an ETA is rounded up: "1s" left would be a promise broken
    expect(durationText(59)).toBe('59s');
    expect(durationText(65)).toBe('1m05s');
    expect(durationText(3599)).toBe('59m59s');
    expect(durationText(7380)).toBe('2h03m');
    expect(durationText(4.06, true)).toBe('4.1s');
    expect(durationText(Number.POSITIVE_INFINITY)).toBe('?');
  });

  it('amounts and rates: binary units for bytes, a noun for items, `?/s` while unknown', () => {
    expect(amountText(12.5 * MiB, BYTES)).toBe('12.5 MiB');
    expect(amountText(64 * MiB, BYTES)).toBe('64 MiB');
    expect(rateText(30.1 * MiB, BYTES)).toBe('30.1 MiB/s');
    expect(rateText(0, BYTES)).toBe('0 B/s');
    expect(rateText(undefined, BYTES)).toBe('?/s');
    expect(rateText(0.5, { kind: 'items', noun: 'actions' })).toBe('0.5 actions/s');
    expect(rateText(12.4, { kind: 'items', noun: 'actions' })).toBe('12 actions/s');
  });

  it('the invariants: done >= 0, finite, and <= total when the total is known', () => {
    expect(() => assertState({ label: 'x', done: 5, total: 4 })).toThrow(/done 5 exceeds total 4/);
    expect(() => assertState({ label: 'x', done: -1, total: undefined })).toThrow(/done must be/);
    expect(() => assertState({ label: 'x', done: Number.NaN, total: 4 })).toThrow(/done must be/);
    expect(() => assertState({ label: 'x', done: 0, total: -4 })).toThrow(/total must be/);
    expect(() => assertState({ label: 'x', done: 4, total: 4 })).not.toThrow();
    expect(() => assertState({ label: 'x', done: 1e12, total: undefined })).not.toThrow();
  });

  it('fitText cuts with an ellipsis, never wider than asked', () => {
    expect(fitText('abcdef', 10)).toBe('abcdef');
    expect(fitText('abcdef', 4)).toBe('abc…');
    expect(fitText('abcdef', 1)).toBe('a');
  });
});

describe('progress format: the terminal line', () => {
  it('reads label, bar, percent, amounts, rate and ETA', () => {
    const line = ttyLine(state(), 120);
    expect(line).toMatch(/^clone c1 \[#+\.+\] 19% 12\.5 MiB\/64 MiB 30\.1 MiB\/s ETA 2s$/);
    expect(line.length).toBeLessThanOrEqual(119);
  });

  it('ETA ? while the rate is unknown or 0', () => {
    expect(ttyLine(state({ rate: undefined }), 120)).toMatch(/ \?\/s ETA \?$/);
    expect(ttyLine(state({ rate: 0 }), 120)).toMatch(/ 0 B\/s ETA \?$/);
  });

  it('fits any width: the bar shrinks, then goes, then the label is cut, then the line; never the last column', () => {
    const long = state({ label: 'refreshing group a-rather-long-group-name-for-a-narrow-terminal', note: 'waiting: sender sleeping 15 ms per transmission (set by a throttle)' });
    for (let columns = 20; columns <= 200; columns++) {
      const line = ttyLine(long, columns);
      expect(line.length, `columns ${columns}: ${line}`).toBeLessThanOrEqual(Math.max(20, columns - 1));
    }
    expect(ttyLine(long, 200)).toContain('[##');
    expect(ttyLine(long, 200)).toContain('; waiting: sender sleeping 15 ms');
    const narrow = ttyLine(long, 60);
    expect(narrow).not.toContain('[');
    expect(narrow).toMatch(/^refreshing…? ?.*19% 12\.5 MiB\/64 MiB 30\.1 MiB\/s ETA 2s/);
  });

  it('the bar is at most 30 cells, at least 8, and full at the end', () => {
    expect(ttyLine(state({ done: 64 * MiB }), 300)).toContain(`[${'#'.repeat(30)}]`);
    const tight = ttyLine(state(), 'clone c1 '.length + ' 19% 12.5 MiB/64 MiB 30.1 MiB/s ETA 2s'.length + 11);
    expect(tight).toMatch(/\[[#.]{8}\]/);
  });

  it('an unknown total: amount, rate and elapsed time, no bar', () => {
    expect(ttyLine(state({ total: undefined, elapsedMs: 12_000 }), 100)).toBe('clone c1 12.5 MiB 30.1 MiB/s 12s');
  });

  it('items count with their noun', () => {
    expect(ttyLine({ label: 'scenario s', unit: { kind: 'items', noun: 'actions' }, done: 4, total: 10, rate: 0.5, elapsedMs: 8000 }, 100)).toMatch(/^scenario s \[#+\.+\] 40% 4\/10 actions 0\.5 actions\/s ETA 12s$/);
  });

  it('the final line: the outcome and the time it took instead of the ETA', () => {
    expect(ttyLine(state({ done: 64 * MiB, rate: 16 * MiB, elapsedMs: 4000 }), 100, 'done')).toMatch(/ 100% 64 MiB\/64 MiB 16 MiB\/s done in 4\.0s$/);
    expect(ttyLine(state({ rate: undefined }), 100, 'failed')).toMatch(/ 19% 12\.5 MiB\/64 MiB \?\/s failed in 3\.0s$/);
  });
});

describe('progress format: the log sentence', () => {
  it('running: amounts of the total, percent, time so far, rate, ETA, note', () => {
    expect(plainLine(state())).toBe('clone c1: 12.5 MiB of 64 MiB (19%) after 3s, 30.1 MiB/s, ETA 2s');
    expect(plainLine(state({ label: 'refreshing group g0', done: 0, total: 8 * MiB, rate: undefined, elapsedMs: 0, note: 'waiting: the group is paused' }))).toBe(
      'refreshing group g0: 0 B of 8 MiB (0%) after 0s, ?/s, ETA ?; waiting: the group is paused',
    );
  });

  it('an unknown total: so far', () => {
    expect(plainLine(state({ total: undefined }))).toBe('clone c1: 12.5 MiB so far after 3s, 30.1 MiB/s');
  });

  it('final: the outcome, the amounts, the time it took and the average rate', () => {
    expect(plainLine(state({ done: 64 * MiB, rate: 16 * MiB, elapsedMs: 4000 }), 'done')).toBe('clone c1: done, 64 MiB of 64 MiB (100%) in 4.0s, 16 MiB/s on average');
    expect(plainLine(state({ rate: undefined }), 'stopped')).toBe('clone c1: stopped, 12.5 MiB of 64 MiB (19%) in 3.0s');
  });

  it('refuses a state that breaks the invariants', () => {
    expect(() => plainLine(state({ done: 65 * MiB }))).toThrow(RangeError);
    expect(() => ttyLine(state({ done: -1 }), 80)).toThrow(RangeError);
  });
});
