/** The records and settings of snapshots, as persisted and as the API shows them, and what the manager is given. */
import type { BlockDevice } from '../block/index.js';

export const SNAPSHOT_FORMAT = 'sanbox-snapshots/1';
/** Region a copy-on-write saves at once (the slot size of the snapshot store). */
export const DEFAULT_SNAPSHOT_REGION_SIZE = 64 * 1024;
/** The snapshot store's default size per LUN: this fraction of the LUN (one full overwrite; the store file is sparse) and at least 64 MiB. */
export const DEFAULT_STORE_FRACTION = 1;
export const MIN_DEFAULT_STORE_BYTES = 64 * 1024 * 1024;
/** Snapshots a LUN may hold at once. */
export const MAX_SNAPSHOTS_PER_LUN = 64;

/** What happens when a first overwrite finds the snapshot store full. */
export type OverflowPolicy = 'invalidate-oldest' | 'refuse-writes';
export const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ['invalidate-oldest', 'refuse-writes'];

/** Why a snapshot exists: an operator's, one cut of a group snapshot, a resync's fallback, a clone's source. */
export type SnapshotKind = 'user' | 'group' | 'resync-protection' | 'clone-source';

export interface SnapshotRecord {
  /** Creation order over the whole array; never reused. */
  seq: number;
  name: string;
  lun: number;
  kind: SnapshotKind;
  /** ISO 8601. */
  created: string;
  /** The LUN's size when it was taken (a LUN with snapshots cannot grow). */
  size: number;
  /** invalid: dropped by an overflowing store; it can only be deleted. */
  state: 'valid' | 'invalid';
  invalidReason?: string;
  /** A group snapshot's group name, and for a secondary's the last applied sequence number. */
  group?: string;
  groupSeq?: number;
  /** Free text: what took it and why (the mirror a resync protection belongs to...). */
  note?: string;
}

/** A LUN's snapshot settings (defaults from the array's). */
export interface StoreSettings {
  /** Bytes of saved regions the LUN's store may hold. */
  storeBytes: number;
  regionSize: number;
  policy: OverflowPolicy;
}

export interface LunSnapshots {
  settings: StoreSettings;
  snapshots: SnapshotRecord[];
  /** A rollback to this snapshot seq is under way (finished at the next open after a crash). */
  rollingBack?: number;
}

export interface SnapshotMetadata {
  format: typeof SNAPSHOT_FORMAT;
  nextSeq: number;
  luns: Record<string, LunSnapshots>;
}

/** A snapshot as status shows it. */
export interface SnapshotView extends SnapshotRecord {
  /** The export name: LUN@SNAP. */
  export: string;
  lunName: string;
  /** Bytes of saved regions this snapshot reads (shared ones counted in each snapshot). */
  usedBytes: number;
}

export type SnapshotErrorCode = 'invalid-argument' | 'not-found' | 'exists' | 'busy' | 'unsupported' | 'io';
const HTTP_STATUS: Record<SnapshotErrorCode, number> = { 'invalid-argument': 400, 'not-found': 404, exists: 409, busy: 409, unsupported: 501, io: 500 };

export class SnapshotError extends Error {
  constructor(
    readonly code: SnapshotErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SnapshotError';
  }
  /** The API answers with this status. */
  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }
}

/** `LUN@SNAP`: the export name of a snapshot. */
export function snapshotExportName(lunName: string, snapName: string): string {
  return `${lunName}@${snapName}`;
}

/** A LUN as the manager needs it. */
export interface SnapshotLun {
  id: number;
  name: string;
  size: number;
  blockSize: number;
}

/** What the array around the manager provides. */
export interface SnapshotHost {
  lun(ref: number | string): SnapshotLun | undefined;
  /** The LUN's data below every host layer (its image behind the disk fault layer). */
  base(lunId: number): BlockDevice | undefined;
  /** Why the LUN may not be rolled back now (a mirror image...), or undefined. */
  rollbackGuard(lunId: number): string | undefined;
  sessionCount(exportName: string): number;
  disconnect(exportName: string): Promise<void>;
  event(type: string, details: Record<string, unknown>): void;
  /**
   * Two-SP arrays, where hosts reach a LUN through SPs that serve it without this manager: makes
   * the SPs' routes follow the snapshots (a LUN with snapshots sends its host changes through
   * this manager's layer in the chassis, a LUN being rolled back is offline, every snapshot is an
   * export) and resolves once they do. `cutting`: LUNs about to be snapshotted; their changes
   * must cross the layer before the cut. Absent on single-process arrays (one stack per LUN).
   */
  syncRoutes?(cutting?: number[]): Promise<void>;
}

export interface SnapshotDefaults {
  storeBytes?: number;
  policy?: OverflowPolicy;
  regionSize?: number;
}

export interface CreateSnapshotOptions {
  kind?: SnapshotKind;
  note?: string;
  group?: string;
  /** Runs while every LUN's gate is held, right before the cut (a receiver's sequence number). */
  atBoundary?: () => number | undefined;
}

export interface CreatedSnapshots {
  snapshots: SnapshotView[];
  /** How long new writes waited (gates held), in milliseconds. */
  pauseMs: number;
}

