/**
 * The chassis battery model: charge, failure (detected or not), hold-up while power is lost,
 * draining in proportion to the hold-up used and recharging while power is on. Pure state; the
 * chassis publishes its events and tells the SPs (../sp/policy.ts decides the cache mode).
 */
import type { BatteryThresholds } from '../sp/index.js';
import type { BatteryView } from '../sp-process/protocol.js';

/** Charge is a percentage kept to one decimal. */
const roundCharge = (c: number): number => Math.round(c * 10) / 10;

export class Battery {
  failed: boolean;
  detected = true;
  charge: number;
  readonly thresholds: BatteryThresholds;
  /** What a full battery holds the SPs up for. */
  readonly holdUpMs: number;

  constructor(cfg: { failed: boolean; charge: number; thresholds: BatteryThresholds; holdUpMs: number }) {
    this.failed = cfg.failed;
    this.charge = cfg.charge;
    this.thresholds = cfg.thresholds;
    this.holdUpMs = cfg.holdUpMs;
  }

  /** What the SPs are told. */
  view(): BatteryView {
    return { failed: this.failed, detected: this.detected, charge: this.charge, thresholds: this.thresholds };
  }

  /** How long the battery holds the SPs up now: a share of a full one's, nothing when failed. */
  holdUpNowMs(): number {
    return this.failed ? 0 : Math.floor((this.holdUpMs * this.charge) / 100);
  }

  /** Holding the SPs up for `ms` used that share of a full battery's hold-up. False: no change. */
  drain(ms: number): boolean {
    if (this.failed || this.holdUpMs <= 0 || ms <= 0) return false;
    this.charge = Math.max(0, roundCharge(this.charge - (100 * ms) / this.holdUpMs));
    return true;
  }

  /**
   * One recharge step of `percent`. True when the charge crossed a threshold of the cache-mode
   * policy or became full (the SPs must hear of it).
   */
  recharge(percent: number): boolean {
    if (this.failed || this.charge >= 100 || percent <= 0) return false;
    const before = this.charge;
    this.charge = Math.min(100, roundCharge(this.charge + percent));
    return [this.thresholds.low, this.thresholds.high, 100].some((t) => before < t && this.charge >= t);
  }

  status(): Record<string, unknown> {
    return {
      state: this.failed ? (this.detected ? 'failed' : 'failed (not yet detected)') : this.charge < this.thresholds.low ? 'low' : 'ok',
      failed: this.failed,
      detected: this.detected,
      charge: this.charge,
      holdUpMs: this.failed ? 0 : this.holdUpMs,
      configuredHoldUpMs: this.holdUpMs,
      thresholds: this.thresholds,
    };
  }
}
