// Deterministic convergence of the source's bandwidth throttles (Figure 10) on a toy sender,
// evaluated every 10 s of simulated time. The driver-level test with real links is elsewhere.
import { describe, it, expect } from 'vitest';
import { FIGURE_10, simulate, type SimSample } from './throttle-sim.js';
import type { ThrottleSpec } from '../../../src/replication/group/types.js';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const between = (s: SimSample[], from: number, to: number) => s.filter((x) => x.t > from && x.t <= to);

describe('throttle convergence (toy sender)', () => {
  it('slows a saturated sender into a band around 200 KB/s, eases off to zero sleep when traffic falls, and converges again', () => {
    // 1000 KB/s link, 64 KB per transmission: 64 ms per chunk without sleep
    const { samples, state, logs } = simulate(
      FIGURE_10,
      [
        { seconds: 1800, offeredKBps: 400 }, // the host writes faster than 200 KB/s: backlog grows
        { seconds: 3600, offeredKBps: 50 }, // load falls: the backlog drains at ~200 KB/s, then 50
        { seconds: 1800, offeredKBps: 2000 }, // heavy again
      ],
      { capacityKBps: 1000, chunkKB: 64 },
    );
    // phase 1: from full speed down to the band within five minutes, and it stays there
    expect(samples[0]!.netkbps).toBe(400);
    const settled1 = between(samples, 300, 1800);
    for (const s of settled1) expect(s.netkbps).toBeGreaterThan(180), expect(s.netkbps).toBeLessThan(220);
    expect(Math.abs(mean(settled1.map((s) => s.netkbps)) - 200)).toBeLessThan(10);
    expect(Math.min(...settled1.map((s) => s.sleepMs))).toBeGreaterThan(200); // ~256 ms makes 200 KB/s here

    // phase 2: while the backlog drains the rate stays in the band; once drained, netkbps is the
    // offered 50 KB/s and the sleep is decremented every evaluation until it reaches zero
    const drained = samples.findIndex((s) => s.t > 1800 && s.backlogKB === 0);
    expect(drained).toBeGreaterThan(0);
    for (const s of between(samples, 1800, samples[drained - 1]!.t)) expect(s.netkbps).toBeGreaterThan(180), expect(s.netkbps).toBeLessThan(220);
    const zeroAt = samples.findIndex((s, i) => i > drained && s.sleepMs === 0);
    expect(zeroAt).toBeGreaterThan(drained);
    // 5 ms per 10 s from ~260 ms: about 52 evaluations
    expect(samples[zeroAt]!.t - samples[drained]!.t).toBeLessThanOrEqual(60 * 10);
    for (let i = drained + 1; i <= zeroAt; i++) expect(samples[i]!.sleepMs).toBe(samples[i - 1]!.sleepMs - 5 < 0 ? 0 : samples[i - 1]!.sleepMs - 5);
    for (const s of between(samples, samples[zeroAt]!.t, 5400)) expect(s.sleepMs).toBe(0), expect(s.netkbps).toBe(50);

    // phase 3: the first interval runs at full speed, then the band again
    const p3 = between(samples, 5400, 7200);
    expect(p3[0]!.netkbps).toBe(1000);
    for (const s of between(samples, 5400 + 300, 7200)) expect(s.netkbps).toBeGreaterThan(180), expect(s.netkbps).toBeLessThan(220);
    expect(state.senderSleepMs).toBeGreaterThan(200);

    // the transitional throttles reported each crossing once: no crossing of 300 at the start
    // (the first evaluation is the baseline), one fall below 100, one rise above 300
    expect(logs).toEqual(['event: network use fell to 50 KB/s', 'network use 1000 KB/s is above 300 KB/s']);
  });

  it('a fast link with small transmissions also settles around 200 KB/s (a wider band: each step is a larger share of the sleep)', () => {
    // 10 MB/s, 8 KB chunks: 0.8 ms per chunk, ~39 ms of sleep makes 200 KB/s
    const { samples } = simulate(FIGURE_10, [{ seconds: 3600, offeredKBps: 5000 }], { capacityKBps: 10_000, chunkKB: 8 });
    const settled = between(samples, 600, 3600);
    for (const s of settled) expect(s.netkbps).toBeGreaterThan(140), expect(s.netkbps).toBeLessThan(260);
    expect(Math.abs(mean(settled.map((s) => s.netkbps)) - 200)).toBeLessThan(25);
  });

  it('is deterministic', () => {
    const run = () => simulate(FIGURE_10, [{ seconds: 1200, offeredKBps: 700 }], { capacityKBps: 1000, chunkKB: 64 }).samples;
    expect(run()).toEqual(run());
  });

  it('business hours: the limit applies from 08:00:00 to 17:00:00 and is lifted after hours (a window across midnight)', () => {
    const day = (t: ThrottleSpec): ThrottleSpec => ({ ...t, from: '08:00:00', to: '17:00:00' });
    const specs: ThrottleSpec[] = [
      ...FIGURE_10.slice(0, 3).map(day),
      { from: '17:00:00', to: '08:00:00', measure: 'netkbps', op: 'ge', value: 0, actions: [{ do: 'sleep-set', ms: 0 }] },
    ];
    const afternoon = simulate(specs, [{ seconds: 3600, offeredKBps: 2000 }], { capacityKBps: 1000, chunkKB: 64, start: new Date(2024, 0, 15, 16, 0, 0) }).samples;
    for (const s of afternoon.filter((x) => x.t > 600 && x.t < 3600)) expect(s.netkbps).toBeGreaterThan(180), expect(s.netkbps).toBeLessThan(220);
    // the evaluation at 17:00:00 is after hours: sleep 0, full speed from the next interval on
    const at17 = afternoon.find((s) => s.clock === '17:00')!;
    expect(at17.sleepMs).toBe(0);
    // 07:30 to 08:30: unthrottled until the evaluation at 08:00:00 (from is included)
    const morning = simulate(specs, [{ seconds: 3600, offeredKBps: 2000 }], { capacityKBps: 1000, chunkKB: 64, start: new Date(2024, 0, 15, 7, 30, 0) }).samples;
    for (const s of morning.filter((x) => x.t < 1800)) expect(s.sleepMs).toBe(0), expect(s.netkbps).toBe(1000);
    for (const s of morning.filter((x) => x.t > 1800 + 600)) expect(s.netkbps).toBeGreaterThan(180), expect(s.netkbps).toBeLessThan(220);
  });
});
