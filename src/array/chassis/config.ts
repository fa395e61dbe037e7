/** Configuration, options and errors of a chassis (see ./chassis.ts). */
import type { StorageArray } from '../storage-array.js';
import { DEFAULT_BATTERY_THRESHOLDS, type BatteryThresholds, type FailbackPolicy, type SpName } from '../sp/index.js';
import type { SpCacheConfig } from '../sp-process/protocol.js';
import type { IoOp, IoResult } from '../../block/index.js';

export interface SpsConfig {
  /** Write-cache memory per SP, bytes. */
  cacheBytes: number;
  cache: SpCacheConfig;
  /**
   * A full battery holds the SPs up for `holdUpMs`; a partial one for that share of it. Holding
   * up drains it in proportion; with power on it recharges by `rechargePerSec` percent a second.
   */
  battery: { charge: number; holdUpMs: number; thresholds: BatteryThresholds; failed: boolean; rechargePerSec: number };
  failback: FailbackPolicy;
  /** Emulated vault bandwidth (bytes/s) for dump and restore; 0 = as fast as the disk. */
  vaultBytesPerSec: number;
  /** Default owner by LUN name (others: even ids A, odd ids B). */
  owners: Record<string, SpName>;
}

export const DEFAULT_SPS: SpsConfig = {
  cacheBytes: 64 * 1024 * 1024,
  cache: { idleMs: 200, highWatermark: 0.75, lowWatermark: 0.5, writeThrough: false },
  battery: { charge: 100, holdUpMs: 5000, thresholds: DEFAULT_BATTERY_THRESHOLDS, failed: false, rechargePerSec: 1 },
  failback: 'automatic',
  vaultBytesPerSec: 0,
  owners: {},
};

export class ChassisError extends Error {
  constructor(
    readonly code: string,
    readonly httpStatus: number,
    message: string,
  ) {
    super(message);
    this.name = 'ChassisError';
  }
}

/**
 * The mirror driver running in the chassis process (src/control/service.ts wires a MirrorNode
 * in; the array layer knows nothing of replication).
 */
export interface ChassisMirrorHooks {
  /**
   * A host write/trim/zero/flush of a primary mirror image, received by an SP. `sender` aborts
   * when that SP's channel ends (it died): nobody waits for the request any more (see
   * OwnerLunDevice.run for what that changes).
   */
  hostIo(lun: number, op: IoOp, data: Buffer | undefined, sender: AbortSignal): Promise<IoResult>;
  /** The whole array is losing power: the driver must behave as if the array crashed. */
  powerLost(): Promise<void>;
  /** Power is back and both SPs serve (also when power returned in the middle of the dump). */
  powerBack(): Promise<void>;
}

export interface ChassisOptions {
  array: StorageArray;
  /** Command that runs `sanbox` (node + bin path). */
  spCommand: { exec: string; args: string[] };
  nbd: { bind: string; ports: [number, number] };
  sps: SpsConfig;
  readOnly: boolean;
  /** Lines of the SP processes' stderr. */
  log?: (line: string) => void;
  /** The array runs a mirror driver in this process. */
  mirror?: ChassisMirrorHooks;
}
