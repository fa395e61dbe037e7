/**
 * The latency window behind `--progress-json` (src/check/latency-window.ts): the ledger report's
 * quantile rule, rounding to 3 decimals, and take() returning the samples since the last take.
 */
import { describe, expect, it } from 'vitest';
import { LatencyWindow, latencyQuantiles } from '../../src/check/latency-window.js';

describe('latency window', () => {
  it('quantiles of 1..100 by the lower nearest rank, whatever the order of the samples', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(latencyQuantiles(samples)).toEqual({ p50: 51, p99: 100, max: 100 });
    expect(latencyQuantiles([7])).toEqual({ p50: 7, p99: 7, max: 7 });
    expect(latencyQuantiles([])).toEqual({ p50: null, p99: null, max: null });
  });

  it('take() summarizes the samples since the previous take() and starts an empty window', () => {
    const w = new LatencyWindow();
    expect(w.take()).toEqual({ acks: 0, p50Ms: null, p99Ms: null, maxMs: null });
    for (const ms of [3, 1, 2, 4]) w.add(ms);
    expect(w.take()).toEqual({ acks: 4, p50Ms: 3, p99Ms: 4, maxMs: 4 });
    expect(w.take()).toEqual({ acks: 0, p50Ms: null, p99Ms: null, maxMs: null });
    w.add(10);
    expect(w.take()).toEqual({ acks: 1, p50Ms: 10, p99Ms: 10, maxMs: 10 });
  });

  it('rounds to 3 decimals', () => {
    const w = new LatencyWindow();
    w.add(0.12345);
    w.add(1.98765);
    expect(w.take()).toEqual({ acks: 2, p50Ms: 1.988, p99Ms: 1.988, maxMs: 1.988 });
    w.add(0.0004);
    expect(w.take().p50Ms).toBe(0);
  });

  it('p99 of 1000 samples is the 991st smallest, max the largest', () => {
    const w = new LatencyWindow();
    for (let i = 1000; i >= 1; i--) w.add(i / 10);
    expect(w.take()).toEqual({ acks: 1000, p50Ms: 50.1, p99Ms: 99.1, maxMs: 100 });
  });
});
