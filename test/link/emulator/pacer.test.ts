// The due times of one direction of one connection (src/link/emulator/pacer.ts), without sockets:
// serialization at the cap then propagation, jitter and losses that never reorder, head-of-line
// blocking behind a loss.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Pacer, pieceBytes } from '../../../src/link/emulator/pacer.js';
import { DEFAULT_SETTINGS, type DirectionSettings } from '../../../src/link/emulator/types.js';

const settings = (s: Partial<DirectionSettings>): DirectionSettings => ({ ...DEFAULT_SETTINGS, ...s });
/** A random source that returns the given values in turn. */
const draws = (...xs: number[]) => {
  let i = 0;
  return () => xs[i++ % xs.length]!;
};

describe('Pacer', () => {
  it('latency only: due = arrival + latency', () => {
    const p = new Pacer();
    expect(p.next(100, 10, settings({ latencyMs: 5 }), Math.random)).toBe(15);
    expect(p.next(100, 12.25, settings({ latencyMs: 5 }), Math.random)).toBe(17.25);
    expect(p.lost).toBe(false);
  });

  it('a cap serializes after the bytes ahead, then the latency applies', () => {
    const p = new Pacer();
    const s = settings({ latencyMs: 2, bandwidth: 1_000_000 }); // 1 byte per us
    expect(p.next(1000, 0, s, Math.random)).toBeCloseTo(1 + 2); // 1 ms to send, 2 ms to fly
    expect(p.next(1000, 0, s, Math.random)).toBeCloseTo(2 + 2); // behind the first on the wire
    expect(p.next(500, 10, s, Math.random)).toBeCloseTo(10.5 + 2); // the link was idle again
  });

  it('jitter never lets a chunk overtake the one ahead of it', () => {
    const p = new Pacer();
    const s = settings({ latencyMs: 1, jitterMs: 10 });
    const first = p.next(10, 0, s, draws(0.9, 0.5)); // 1 + 9 = 10
    const second = p.next(10, 0.1, s, draws(0.0, 0.5)); // would be 1.1: held to 10
    expect(first).toBeCloseTo(10);
    expect(second).toBeCloseTo(10);
  });

  it('a loss costs one RTO and holds back what follows (head-of-line)', () => {
    const p = new Pacer();
    const s = settings({ latencyMs: 1, lossPercent: 50, rtoMs: 200 });
    const lost = p.next(10, 0, s, draws(0.1)); // 0.1 * 100 < 50: lost
    expect(p.lost).toBe(true);
    expect(lost).toBeCloseTo(201);
    const behind = p.next(10, 5, s, draws(0.9)); // not lost, but behind
    expect(p.lost).toBe(false);
    expect(behind).toBeCloseTo(201);
    expect(p.next(10, 300, s, draws(0.9))).toBeCloseTo(301);
  });

  it('lossPercent 0 never loses, 100 always does', () => {
    const p = new Pacer();
    for (let i = 0; i < 100; i++) {
      p.next(10, i, settings({ lossPercent: 0 }), Math.random);
      expect(p.lost).toBe(false);
    }
    for (let i = 0; i < 100; i++) {
      p.next(10, 1000 + i, settings({ lossPercent: 100, rtoMs: 1 }), Math.random);
      expect(p.lost).toBe(true);
    }
  });

  it('due times never decrease, whatever the settings do in between (fast-check)', () => {
    const arb = fc.record({
      latencyMs: fc.double({ min: 0, max: 50, noNaN: true }),
      jitterMs: fc.double({ min: 0, max: 50, noNaN: true }),
      bandwidth: fc.constantFrom(0, 1000, 1_000_000, 100_000_000),
      lossPercent: fc.constantFrom(0, 1, 50, 100),
      rtoMs: fc.constantFrom(0, 10, 200),
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 65536 }), fc.double({ min: 0, max: 5, noNaN: true }), arb), { minLength: 1, maxLength: 60 }), (steps) => {
        const p = new Pacer();
        let now = 0;
        let last = -Infinity;
        for (const [bytes, gapMs, s] of steps) {
          now += gapMs;
          const due = p.next(bytes, now, s, Math.random);
          if (due < last || due < now + s.latencyMs) return false;
          last = due;
        }
        return true;
      }),
    );
  });

  it('pieces: about 1 ms of the cap, 1460 bytes to 16 KiB', () => {
    expect(pieceBytes(1000)).toBe(1460);
    expect(pieceBytes(5_000_000)).toBe(5000);
    expect(pieceBytes(1_000_000_000)).toBe(16384);
  });
});
