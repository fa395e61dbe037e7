import type { CacheMode } from '../cache/index.js';

export interface BatteryThresholds {
  /** Below this charge (percent) write-back stops. */
  low: number;
  /** Write-back resumes only above this charge (percent): hysteresis. */
  high: number;
}

export const DEFAULT_BATTERY_THRESHOLDS: BatteryThresholds = { low: 30, high: 60 };

export interface CacheModeInput {
  /** The mode in force now (hysteresis depends on it). */
  previous: CacheMode;
  /** Peer SP up and its cache mirror attached. */
  peerUp: boolean;
  batteryFailed: boolean;
  /** Battery charge, percent 0..100. */
  batteryCharge: number;
  /** The vault can take a dump (directory present and writable, within its size). */
  vaultUsable: boolean;
  /** Administrator asked for write-through (cache disabled). Default false. */
  writeThroughConfigured?: boolean;
  thresholds?: BatteryThresholds;
}

export type CacheModeReason =
  | 'configured write-through'
  | 'peer SP down'
  | 'battery failed'
  | 'vault unusable'
  | 'battery low'
  | 'battery recharging'
  | 'protected';

export interface CacheModeDecision {
  mode: CacheMode;
  /** Stable keyword, for status and tests. */
  reason: CacheModeReason;
  /** Human sentence with the numbers. */
  detail: string;
}

/**
 * Chooses write-back or write-through for an SP. Write-back only when an acknowledged write in
 * cache is protected: the peer holds a mirror copy and the battery can dump it to a usable
 * vault. Battery charge has hysteresis: write-back stops below `low` and, once stopped, resumes
 * only above `high`; in between the previous mode stays. Missing protection is checked in this
 * order: configuration, peer, battery failure, vault, charge. Pure function.
 */
export function cacheModePolicy(input: CacheModeInput): CacheModeDecision {
  const t = input.thresholds ?? DEFAULT_BATTERY_THRESHOLDS;
  if (!(t.low >= 0 && t.low <= t.high && t.high <= 100)) throw new Error(`battery thresholds must satisfy 0 <= low (${t.low}) <= high (${t.high}) <= 100`);
  const charge = input.batteryCharge;
  if (!Number.isFinite(charge) || charge < 0 || charge > 100) throw new Error(`battery charge ${charge} must be 0..100`);
  const wt = (reason: CacheModeReason, detail: string): CacheModeDecision => ({ mode: 'write-through', reason, detail });
  if (input.writeThroughConfigured) return wt('configured write-through', 'write cache disabled by configuration');
  if (!input.peerUp) return wt('peer SP down', 'peer SP down: no mirror copy of cached writes');
  if (input.batteryFailed) return wt('battery failed', 'battery failed: no hold-up to dump the cache');
  if (!input.vaultUsable) return wt('vault unusable', 'vault unusable: nowhere to dump the cache');
  if (charge < t.low) return wt('battery low', `battery charge ${charge}% below ${t.low}%`);
  if (input.previous === 'write-through' && charge <= t.high) {
    return wt('battery recharging', `battery charge ${charge}% not yet above ${t.high}% (write-back resumes above it)`);
  }
  return { mode: 'write-back', reason: 'protected', detail: `peer mirror up, battery ${charge}%, vault usable` };
}
