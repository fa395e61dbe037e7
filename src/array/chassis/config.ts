/** Configuration, options and errors of a chassis (see ./chassis.ts). */
import type { StorageArray } from '../storage-array.js';
import { DEFAULT_BATTERY_THRESHOLDS, type BatteryThresholds, type FailbackPolicy, type SpName } from '../sp/index.js';
import type { LunRoute, SpCacheConfig } from '../sp-process/protocol.js';
import type { IoOp, IoResult } from '../../block/index.js';
import type { NbdTlsConfig } from '../../nbd/index.js';

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

/** A host request's answer from the chassis: `savedSeq` as in LunRoute.saved. */
export type ChassisIoResult = IoResult & { savedSeq?: number };

/**
 * The chassis's data path: the layers of a LUN that run in the chassis process (the mirror
 * driver, snapshots, clones; src/control wires them in: the array layer knows none of them).
 * The SPs send it what each LUN's route says (see HostRoutes).
 */
export interface ChassisDataPath {
  /**
   * A host request an SP received and the LUN's route sends here. `sender` aborts when that
   * SP's channel ends (it died): nobody waits for the request any more (see OwnerLunDevice.run
   * for what that changes).
   */
  hostIo(lun: number, op: IoOp, data: Buffer | undefined, sender: AbortSignal): Promise<ChassisIoResult>;
  /** A read or block status of a snapshot export served on an SP's port. */
  snapshotIo(exportName: string, op: IoOp): Promise<IoResult>;
  /** The route of a LUN being added (so that its first host request already follows it). */
  routeOf(lun: number): LunRoute | undefined;
  /** The whole array is losing power: the mirror driver must behave as if the array crashed. */
  powerLost(): Promise<void>;
  /** Power is back and both SPs serve (also when power returned in the middle of the dump). */
  powerBack(): Promise<void>;
}

export interface ChassisOptions {
  array: StorageArray;
  /** Command that runs `sanbox` (node + bin path). */
  spCommand: { exec: string; args: string[] };
  /** `tls`: the SPs' NBD ports offer or require TLS (each SP loads the credentials). */
  /** `memory`: each SP's NBD memory budget in bytes (its own process; default 256 MiB). */
  nbd: { bind: string; ports: [number, number]; tls?: NbdTlsConfig; memory?: number };
  sps: SpsConfig;
  readOnly: boolean;
  /** Lines of the SP processes' stderr. */
  log?: (line: string) => void;
  dataPath: ChassisDataPath;
}
