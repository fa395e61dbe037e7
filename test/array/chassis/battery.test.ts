import { describe, expect, it } from 'vitest';
import { Battery } from '../../../src/array/chassis/battery.js';

const thresholds = { low: 30, high: 60 };
const mk = (charge = 100, failed = false) => new Battery({ failed, charge, thresholds, holdUpMs: 5000 });

describe('chassis battery model', () => {
  it('holds the SPs up for its share of a full battery, nothing when failed', () => {
    expect(mk(100).holdUpNowMs()).toBe(5000);
    expect(mk(50).holdUpNowMs()).toBe(2500);
    expect(mk(100, true).holdUpNowMs()).toBe(0);
  });

  it('drains in proportion to the hold-up used, to one decimal, never below 0', () => {
    const b = mk(100);
    expect(b.drain(1000)).toBe(true);
    expect(b.charge).toBe(80);
    expect(b.drain(333)).toBe(true);
    expect(b.charge).toBe(73.3);
    expect(b.drain(60_000)).toBe(true);
    expect(b.charge).toBe(0);
    expect(b.drain(0)).toBe(false);
    expect(mk(100, true).drain(1000)).toBe(false);
  });

  it('recharges, and says so only when a policy threshold or full charge is crossed', () => {
    const b = mk(28);
    expect(b.recharge(1)).toBe(false);
    expect(b.charge).toBe(29);
    expect(b.recharge(1)).toBe(true); // reaches low
    expect(b.charge).toBe(30);
    b.charge = 99.5;
    expect(b.recharge(1)).toBe(true); // full
    expect(b.charge).toBe(100);
    expect(b.recharge(1)).toBe(false);
    expect(mk(50, true).recharge(1)).toBe(false);
    expect(mk(50).recharge(0)).toBe(false);
  });

  it('reports its state', () => {
    expect(mk(100).status()).toMatchObject({ state: 'ok', holdUpMs: 5000, configuredHoldUpMs: 5000 });
    expect(mk(10).status()).toMatchObject({ state: 'low' });
    const f = mk(100, true);
    expect(f.status()).toMatchObject({ state: 'failed', holdUpMs: 0 });
    f.detected = false;
    expect(f.status()).toMatchObject({ state: 'failed (not yet detected)' });
    expect(f.view()).toEqual({ failed: true, detected: false, charge: 100, thresholds });
  });
});
