import type { BlockDevice } from '../../block/index.js';
import type { SnapshotPort } from '../group/index.js';
import type { ProtectionView } from './protection-state.js';
import type { GateView } from './resync-gate.js';
import type { WindowView } from './resync-window.js';
import type { MirrorAttributes, MirrorDbRecord, MirrorImage, RecoveryPolicy } from '../state/index.js';

/** A LUN as the mirror driver sees it (the array's LUN table supplies these). */
export interface MirrorLun {
  id: number;
  name: string;
  size: number;
  blockSize: number;
  /** The device below the replication layer (write cache or backing store). */
  device: BlockDevice;
}

export interface LunProvider {
  lun(ref: number | string): MirrorLun | undefined;
}

/** Another array this one replicates with: where its remote-link port is reached, and the shared secret. */
export interface PeerConfig {
  array: string;
  host: string;
  port: number;
  secret: string;
}

export interface MirrorNodeOptions {
  /** This array's name. */
  array: string;
  /** Array directory; the node keeps `mirrors/` (database records, bitmaps) under it. */
  dir: string;
  luns: LunProvider;
  /** The remote-link port this array listens on (undefined: none; it can still dial peers). */
  listen?: { bind: string; port: number };
  peers: PeerConfig[];
  /** Every state change (type without the `mirror.` prefix is never used: types are `mirror.*`). */
  event: (type: string, details: Record<string, unknown>) => void;
  /** fsync metadata and bitmaps (default true; tests may turn it off). */
  sync?: boolean;
  timers?: Partial<MirrorTimers>;
  /** The array's snapshots: resync protection and group snapshots use them. */
  snapshots?: SnapshotPort;
}

export interface MirrorTimers {
  /** Lazy clear of write-intent regions whose writes completed everywhere. */
  wilClearMs: number;
  /** No write for this long turns CONSISTENT secondaries SYNCHRONIZED again. */
  quiesceMs: number;
  /** A remote write that takes longer fractures the secondary. */
  remoteWriteTimeoutMs: number;
  /** How often a running resync publishes progress. */
  progressMs: number;
  /** Reconnect backoff for a lost secondary. */
  reconnectInitialMs: number;
  reconnectMaxMs: number;
}

export const DEFAULT_TIMERS: MirrorTimers = {
  wilClearMs: 5000,
  quiesceMs: 2000,
  remoteWriteTimeoutMs: 5000,
  progressMs: 1000,
  reconnectInitialMs: 200,
  reconnectMaxMs: 5000,
};

export interface CreateMirrorParams {
  /** LUN id or name on this array: the primary image. */
  lun: number | string;
  /** Default: the LUN's name. Unique on this array. */
  name?: string;
  /** Region size of the write-intent and fracture logs (power of two, 4 KiB..64 MiB). */
  regionSize?: number;
  attributes?: Partial<Omit<MirrorAttributes, 'name'>>;
}

export interface AddSecondaryParams {
  array: string;
  lun: number | string;
  /** Declare the secondary identical already (no initial copy). Default false: full synchronization. */
  synchronized?: boolean;
  recoveryPolicy?: RecoveryPolicy;
  syncRate?: number | null;
}

export interface ChangeAttributesParams extends Partial<Omit<MirrorAttributes, 'name'>> {
  name?: string;
  /** Image to change recoveryPolicy / syncRate of (image id or array name). */
  image?: string;
  recoveryPolicy?: RecoveryPolicy;
  imageSyncRate?: number | null;
  /** The image's checksum-resync setting (null: the mirror's). */
  imageResyncChecksums?: 'auto' | 'always' | 'never' | null;
}

export interface ResyncView {
  full: boolean;
  /** Why a full synchronization, or which bitmap drives a partial one. */
  reason: string;
  /** bytes covered: copied as data, or zeroed (holes and zero runs go without payload) */
  bytesDone: number;
  bytesTotal: number;
  /** bytes sent over the link as data (absent from an older array) */
  bytesSent?: number;
  /** checksum comparison of this run: auto (maybe-dirty regions), always, never (absent from an older array) */
  checksums?: 'auto' | 'always' | 'never';
  /** bytes whose checksums were compared with the secondary's, and pieces found identical (not sent) */
  bytesCompared?: number;
  chunksSkipped?: number;
  /** how the run paces itself (the mirror's syncController; absent from an older array) */
  controller?: 'fixed' | 'adaptive';
  /** the adaptive controller's window now: bytes on the wire it allows, piece size, base RTT, queueing delay and its target */
  window?: (WindowView & GateView) | null;
  /** bytes sent as data per second over the last progress interval: what the sync rate caps */
  rate: number;
  /** bytes covered per second over the last progress interval, holes included (absent from an older array) */
  coveredRate?: number;
  /** seconds (at the covered rate), null while unknown */
  eta: number | null;
  startedAt: string;
}

export interface ImageView extends MirrorImage {
  /** This array's connection to the image (primary side only). */
  link: 'local' | 'connected' | 'connecting' | 'down' | 'refused';
  linkError?: string;
  /** Regions of the fracture log (primary side). */
  fractureLog: { regions: number; bytes: number } | null;
  resync: ResyncView | null;
  /**
   * The generation of the mirror record this member holds, as it last confirmed it (primary side;
   * null: not confirmed since this array started). Equal to `record.generation` everywhere: all agree.
   */
  recordGeneration: number | null;
  /** Set when both sides took writes: the divergent regions of each side. */
  splitBrain?: { local: { regions: number; bytes: number; ranges: Array<[number, number]> }; remote: { regions: number; bytes: number; ranges: Array<[number, number]> } };
}

export interface MirrorView {
  /** This array's view of the database record. */
  record: MirrorDbRecord;
  /** This array's image of the mirror. */
  local: { imageId: string; role: 'primary' | 'secondary'; lun: number; lunName: string };
  images: ImageView[];
  writeIntentLog: { regions: number; bytes: number; inFlight: number } | null;
  splitBrain: boolean;
  /** This array's image and its resync protection: the consistent point it can fall back to (./protection.ts). */
  protection: ProtectionView;
}

/**
 * What a verify concluded:
 * - `identical`: every region was compared and is equal, and the image was not SYNCHRONIZING;
 * - `different`: regions outside the fracture log differ (`mismatched`);
 * - `incomplete`: nothing found to differ, but the comparison does not cover the image: regions
 *   were skipped (marked in the fracture log) or the image was SYNCHRONIZING (`incompleteReason`).
 */
export type VerifyResult = 'identical' | 'different' | 'incomplete';

export interface VerifyReport {
  mirrorId: string;
  imageId: string;
  regionSize: number;
  regionsCompared: number;
  bytesCompared: number;
  mismatched: Array<{ region: number; offset: number; length: number }>;
  /** True only when `result` is 'identical'. */
  identical: boolean;
  result: VerifyResult;
  /**
   * Set when the comparison did not cover the image (always with 'incomplete', also with
   * 'different' when regions were skipped too): the skipped count of all regions and why, e.g.
   * "368 of 656 regions skipped (marked in the fracture log: not copied to the image yet; image
   * SYNCHRONIZING, resync 23 MiB of 41 MiB done)".
   */
  incompleteReason?: string;
  /** Regions skipped because the fracture log marks them (not copied to the image yet): not compared. */
  skipped: number;
}

export type MirrorErrorCode = 'not-found' | 'exists' | 'invalid' | 'state' | 'unreachable' | 'split-brain' | 'size-mismatch' | 'not-secondary' | 'has-secondaries' | 'not-primary' | 'refused' | 'inconsistent' | 'heartbeat-installed' | 'heartbeat-refused';

/** An administrative request that failed; nothing changed. */
export class MirrorError extends Error {
  constructor(
    readonly code: MirrorErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MirrorError';
  }
  get httpStatus(): number {
    switch (this.code) {
      case 'not-found':
        return 404;
      case 'invalid':
        return 400;
      case 'unreachable':
        return 503;
      default:
        return 409;
    }
  }
}

/** What the management API and CLI call (MirrorNode implements it). */
/**
 * Where a mirror's logs are dirty, for a heatmap (primary side): the LUN cut into equal buckets,
 * each the share (0..1) of its regions marked. The write-intent log is the primary's; each
 * secondary has its own fracture log (null while its link has not been set up).
 */
export interface MirrorRegionMap {
  mirror: string;
  lunSize: number;
  /** Every log is cut at the same offsets: a multiple of each one's region size. */
  bucketBytes: number;
  writeIntentLog: RegionLogMap;
  images: Array<{ imageId: string; array: string; fractureLog: RegionLogMap | null }>;
}

export interface RegionLogMap {
  regionSize: number;
  /** Per bucket, dirty regions / regions in the bucket. */
  shares: number[];
}

export interface MirrorControl {
  list(): MirrorView[];
  /** Throws MirrorError 'not-primary' on a secondary (only the primary holds the logs). */
  regionMap(ref: string, buckets: number): MirrorRegionMap;
  /** By mirror id or name. Throws MirrorError 'not-found'. */
  get(ref: string): MirrorView;
  create(p: CreateMirrorParams): Promise<MirrorView>;
  addSecondary(ref: string, p: AddSecondaryParams): Promise<MirrorView>;
  /** `image`: image id ("bravo:0") or array name. */
  removeSecondary(ref: string, image: string, p?: { force?: boolean }): Promise<MirrorView>;
  /**
   * Run on the array that holds the secondary to promote. An image that is not a point in time
   * (SYNCHRONIZING, UNSYNCHRONIZED) is refused ('inconsistent', naming its fallback snapshot)
   * unless `force` (promote it as it is) or `fromSnapshot` (roll it back to its resync-protection
   * snapshot first).
   */
  promote(ref: string, p?: { force?: boolean; fromSnapshot?: boolean }): Promise<MirrorView>;
  /** Every fractured/unsynchronized secondary when `image` is omitted. */
  synchronize(ref: string, image?: string, p?: { force?: boolean; checksum?: boolean; full?: boolean }): Promise<MirrorView>;
  /** Every secondary when `image` is omitted. */
  fracture(ref: string, image?: string): Promise<MirrorView>;
  activate(ref: string): Promise<MirrorView>;
  deactivate(ref: string, p?: { force?: boolean }): Promise<MirrorView>;
  destroy(ref: string): Promise<void>;
  setAttributes(ref: string, p: ChangeAttributesParams): Promise<MirrorView>;
  verify(ref: string, image?: string, p?: { onProgress?: (done: number, total: number) => void }): Promise<VerifyReport>;
  /** After split brain: `survivor` is the array whose data is kept; the other becomes a resyncing secondary. */
  resolveSplitBrain(ref: string, p: { survivor: string }): Promise<MirrorView>;
  /** Installs or uninstalls a heartbeat mirror, on its primary (MirrorNode: ./heartbeat.ts). */
  heartbeat?(ref: string, p: HeartbeatParams): Promise<MirrorView>;
}

/** POST /v1/mirrors/REF/heartbeat: `by` is the heartbeat agent's id. */
export interface HeartbeatParams {
  installed: boolean;
  by: string;
}
