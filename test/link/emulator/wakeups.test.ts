// The delay queue's clock (src/link/emulator/wakeups.ts): never early, on time to a fraction of a
// millisecond where Node's timers alone are up to ~1.3 ms off, no polling while nothing is due
// soon, one wake-up per waiter, stop() cancels everything.
import { describe, it, expect, afterEach } from 'vitest';
import { POLL_MS, Wakeups } from '../../../src/link/emulator/wakeups.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const live: Wakeups[] = [];
afterEach(() => {
  while (live.length) live.pop()!.stop();
});

/** Asks `w` for a wake-up `inMs` from now; resolves with how late it came (ms). */
function lateness(w: Wakeups, inMs: number): Promise<number> {
  return new Promise((resolve) => {
    const at = performance.now() + inMs;
    w.at({ wake: () => resolve(performance.now() - at) }, at);
  });
}

describe('Wakeups', () => {
  it('wakes never early and, in the median, within 0.25 ms (0.1 to 5 ms waits; timers alone: ~0.5 ms)', async () => {
    const w = new Wakeups(POLL_MS);
    live.push(w);
    const late: number[] = [];
    for (let i = 0; i < 60; i++) late.push(await lateness(w, 0.1 + ((i * 7) % 50) / 10));
    late.sort((a, b) => a - b);
    const p50 = late[30]!;
    console.log(`[wakeups] lateness: min ${(late[0]! * 1000).toFixed(0)} us, p50 ${(p50 * 1000).toFixed(0)} us, max ${(late[59]! * 1000).toFixed(0)} us; ${JSON.stringify(w.stats)}`);
    expect(late[0]).toBeGreaterThanOrEqual(0);
    expect(p50).toBeLessThan(0.25); // a few us on an idle machine; slack for a loaded CI one
    expect(w.stats.wakeups).toBe(60);
  });

  it('many waiters at interleaved times: each woken once, at or after its time', async () => {
    const w = new Wakeups(POLL_MS);
    live.push(w);
    const results: { at: number; woke: number }[] = [];
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      for (let i = 0; i < 40; i++) {
        const at = t0 + 0.2 + ((i * 13) % 40) * 0.25;
        w.at({ wake: () => (results.push({ at, woke: performance.now() }), results.length === 40 && resolve()) }, at);
      }
    });
    expect(results).toHaveLength(40);
    for (const r of results) expect(r.woke).toBeGreaterThanOrEqual(r.at);
  });

  it('asking again replaces the earlier wake-up; cancel and stop forget it', async () => {
    const w = new Wakeups(POLL_MS);
    live.push(w);
    let n = 0;
    const waiter = { wake: () => n++ };
    w.at(waiter, performance.now() + 1);
    w.at(waiter, performance.now() + 3);
    await sleep(10);
    expect(n).toBe(1);
    w.at(waiter, performance.now() + 2);
    w.cancel(waiter);
    await sleep(8);
    expect(n).toBe(1);
    w.at(waiter, performance.now() + 2);
    w.stop();
    await sleep(8);
    expect(n).toBe(1);
  });

  it('does not poll while nothing is due within its window', async () => {
    const w = new Wakeups(POLL_MS);
    live.push(w);
    const done = lateness(w, 30);
    await sleep(20);
    expect(w.stats.pollMs).toBe(0); // 20 ms in: only the timer is armed
    expect(await done).toBeGreaterThanOrEqual(0);
    expect(w.stats.pollMs).toBeLessThan(5); // the last ~1.5 ms at most, with slack for a busy machine
    expect(w.stats.timers).toBeGreaterThanOrEqual(1);
  });

  it('pollMs 0: timers only, never early, no polling time', async () => {
    const w = new Wakeups(0);
    live.push(w);
    for (const inMs of [0.3, 1.5, 4]) expect(await lateness(w, inMs)).toBeGreaterThanOrEqual(0);
    expect(w.stats.pollMs).toBe(0);
  });
});
