import { describe, expect, it } from 'vitest';
import { drawInt, drawSchedule } from '../../../src/scenario/schedule/index.js';
import type { NemesisSpec } from '../../../src/scenario/spec/types.js';
import { mulberry32 } from '../../../src/random/index.js';

const flaps: NemesisSpec = {
  name: 'flaps',
  fromMs: 1000,
  untilMs: 20_000,
  everyMs: { min: 300, max: 1500 },
  faults: [
    { kind: 'link-cut', link: 'alpha-bravo', directions: ['both', 'a-to-b', 'b-to-a'], forMs: { min: 200, max: 1500 }, weight: 3 },
    { kind: 'link-latency', link: 'alpha-bravo', latencyMs: { min: 5, max: 30 }, forMs: { min: 500, max: 2000 }, weight: 1 },
  ],
};
const sps: NemesisSpec = {
  name: 'sps',
  fromMs: 0,
  untilMs: 15_000,
  everyMs: { min: 1000, max: 2000 },
  faults: [{ kind: 'sp-crash', array: 'alpha', sps: ['A', 'B'], forMs: { min: 1000, max: 2500 }, weight: 1 }],
};

describe('drawSchedule', () => {
  it('gives the same trace for the same seed, and another for another seed', () => {
    const a = drawSchedule({ nemesis: [flaps, sps] }, 7);
    expect(drawSchedule({ nemesis: [flaps, sps] }, 7)).toEqual(a);
    expect(drawSchedule({ nemesis: [flaps, sps] }, 8)).not.toEqual(a);
    expect(a.length).toBeGreaterThan(5);
  });

  it('keeps each nemesis inside its window, its faults apart, and every drawn value in range', () => {
    for (let seed = 0; seed < 200; seed++) {
      const trace = drawSchedule({ nemesis: [flaps, sps] }, seed);
      trace.forEach((f, i) => expect(f.index).toBe(i));
      for (let i = 1; i < trace.length; i++) expect(trace[i].atMs).toBeGreaterThanOrEqual(trace[i - 1].atMs);
      for (const n of [flaps, sps]) {
        const own = trace.filter((f) => f.nemesis === n.name);
        let freeAt = n.fromMs;
        for (const f of own) {
          expect(f.atMs - freeAt).toBeGreaterThanOrEqual(n.everyMs.min);
          expect(f.atMs - freeAt).toBeLessThanOrEqual(n.everyMs.max);
          expect(f.atMs).toBeLessThan(n.untilMs);
          freeAt = f.atMs + f.durationMs;
        }
      }
      for (const f of trace) {
        if (f.inject.kind === 'link-cut') {
          expect(f.durationMs).toBeGreaterThanOrEqual(200);
          expect(f.durationMs).toBeLessThanOrEqual(1500);
          expect(f.undo).toEqual({ kind: 'link-restore', link: 'alpha-bravo' });
        } else if (f.inject.kind === 'link-set') {
          expect(f.inject.latencyMs).toBeGreaterThanOrEqual(5);
          expect(f.inject.latencyMs).toBeLessThanOrEqual(30);
          expect(f.undo).toEqual({ kind: 'link-settings-restore', link: 'alpha-bravo' });
        } else if (f.inject.kind === 'sp-crash') {
          expect(['A', 'B']).toContain(f.inject.sp);
          expect(f.undo).toEqual({ kind: 'sp-restart', array: 'alpha', sp: f.inject.sp });
        } else throw new Error(`unexpected fault ${f.inject.kind}`);
      }
    }
  });

  it('picks faults by weight and every choice of a list', () => {
    const kinds = { cut: 0, latency: 0 };
    const dirs = new Set<string>();
    for (let seed = 0; seed < 300; seed++) {
      for (const f of drawSchedule({ nemesis: [flaps] }, seed)) {
        if (f.inject.kind === 'link-cut') {
          kinds.cut++;
          dirs.add(f.inject.direction);
        } else kinds.latency++;
      }
    }
    const share = kinds.cut / (kinds.cut + kinds.latency);
    expect(share).toBeGreaterThan(0.7);
    expect(share).toBeLessThan(0.8);
    expect([...dirs].sort()).toEqual(['a-to-b', 'b-to-a', 'both']);
  });

  it('draws nothing when the window is shorter than the first pause, and every nemesis apart', () => {
    expect(drawSchedule({ nemesis: [{ ...flaps, untilMs: 1200 }] }, 1)).toEqual([]);
    // one nemesis's draws do not depend on another's: adding sps leaves flaps' faults as they were
    const alone = drawSchedule({ nemesis: [flaps] }, 3).map(({ index: _i, ...f }) => f);
    const both = drawSchedule({ nemesis: [flaps, sps] }, 3).filter((f) => f.nemesis === 'flaps').map(({ index: _i, ...f }) => f);
    expect(both).toEqual(alone);
  });
});

describe('drawInt', () => {
  it('draws both ends of a range and nothing outside', () => {
    const r = mulberry32(1);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(drawInt(r, { min: 3, max: 6 }));
    expect([...seen].sort()).toEqual([3, 4, 5, 6]);
    expect(drawInt(r, { min: 9, max: 9 })).toBe(9);
    expect(() => drawInt(r, { min: 2, max: 1 })).toThrow(/bad range/);
  });
});
