import type { ActivationPolicy, ImageState, MirrorState } from './tables.js';

/**
 * The mirror database record: one per mirror, kept by every member array (through the metadata
 * store, src/metadata: two copies with generation and CRC) and propagated by the primary on every
 * change (remote-link `mirror-db`). JSON-serializable; `format`/`version` identify the layout.
 *
 * Mirror-wide information [0077]: name, state, region (extent) size and fracture-log size,
 * minimum images required, maximum missing images, write policy, write backlog, synchronization
 * priority; plus what sanbox adds: activation policy, secondary reads, epoch, generation.
 * Image-specific information [0085]: array/LUN (the "LU array set"), role, state, sync rate and
 * progress, recovery policy; plus reachability, fracture and epoch.
 */
export const MIRROR_DB_FORMAT = 'sanbox.mirror-db';
export const MIRROR_DB_VERSION = 1;

export type WritePolicy = 'synchronous' | 'asynchronous' | 'near-synchronous';
export type SyncPriority = 'low' | 'medium' | 'high';
/** auto: resynchronize when the image comes back; manual: wait for the operator [0093]. */
export type RecoveryPolicy = 'auto' | 'manual';
export type Reachability = 'REACHABLE' | 'UNREACHABLE';
/**
 * Why a secondary is fractured: the operator, a failed write/propagation, a promote, or the armed
 * freeze of its consistency group (another member stopped replicating to the same array).
 */
export type FractureReason = 'admin' | 'link' | 'promote' | 'freeze';
export const FRACTURE_REASONS: readonly FractureReason[] = ['admin', 'link', 'promote', 'freeze'];

/** A fracture that ends by itself once the image is reachable again (recovery policy auto): a lost link or a freeze. */
export function resumesItself(reason: FractureReason | null): boolean {
  return reason === 'link' || reason === 'freeze';
}

export interface MirrorImage {
  /** unique within the mirror, e.g. "bravo:0" */
  imageId: string;
  array: string;
  lun: number;
  /** bytes */
  size: number;
  role: 'primary' | 'secondary';
  /** secondary image state; null for the primary */
  state: ImageState | null;
  /**
   * Generation number: the mirror epoch under which this image was last made primary (0: never).
   * The primary's epoch is the mirror's and higher than every other image's, so an old primary
   * that comes back (with a lower epoch) can never act as primary again.
   */
  epoch: number;
  reachability: Reachability;
  fractured: boolean;
  fractureReason: FractureReason | null;
  recoveryPolicy: RecoveryPolicy;
  /** bytes per second for this image's synchronization (null: the mirror's) */
  syncRate: number | null;
  /** this image's checksum-resync setting (absent or null: the mirror's) */
  resyncChecksums?: ResyncChecksums | null;
  /** kept across an interruption so a returning image resumes [0092] */
  syncProgress: { bytesDone: number; bytesTotal: number } | null;
}

export interface MirrorAttributes {
  name: string;
  activationPolicy: ActivationPolicy;
  /** minimum number of images (primary included) available to be active; -1 disables [0082] */
  minImagesRequired: number;
  /** maximum number of secondaries missing (UNREACHABLE) to stay active; -1 disables [0081] */
  maxMissingImages: number;
  writePolicy: WritePolicy;
  /** bytes queued for the secondaries in the asynchronous modes [0084] */
  writeBacklogSize: number;
  syncPriority: SyncPriority;
  /** bytes per second */
  syncRate: number;
  allowSecondaryReads: boolean;
  /**
   * Before a resync rewrites a secondary, its array keeps the image's last consistent point in a
   * snapshot (dropped when the resync is done); a mirror in a consistency group follows the
   * group's attribute instead. Records from before it was added read as true.
   */
  protectResync: boolean;
  /**
   * Checksum-based resync (src/replication/mirror/resync-csum.ts): `auto` (absent) compares
   * checksums for regions that may differ (the write-intent log after an unclean stop) and copies
   * the known-dirty ones (fracture log); `always` compares for every resync; `never` copies.
   */
  resyncChecksums?: ResyncChecksums;
  /**
   * How a resync paces itself under syncRate (src/replication/mirror/resync-window.ts): `adaptive`
   * (absent) keeps the link's queue short so host writes are not held behind resync data, and
   * uses what the host leaves of the link; `fixed` sends at syncRate with a fixed window.
   */
  syncController?: SyncController;
}

export type SyncController = 'fixed' | 'adaptive';
export const SYNC_CONTROLLERS: readonly SyncController[] = ['fixed', 'adaptive'];

export type ResyncChecksums = 'auto' | 'always' | 'never';
export const RESYNC_CHECKSUMS: readonly ResyncChecksums[] = ['auto', 'always', 'never'];

export interface MirrorDbRecord extends MirrorAttributes {
  format: typeof MIRROR_DB_FORMAT;
  version: typeof MIRROR_DB_VERSION;
  mirrorId: string;
  /** incremented on every change; the higher generation wins when members compare records */
  generation: number;
  state: MirrorState;
  /** the primary's epoch */
  epoch: number;
  /** region (extent) size of the write-intent and fracture logs, bytes; not changeable [0080] */
  regionSize: number;
  images: MirrorImage[];
  /** A heartbeat mirror, installed (./heartbeat.ts): absent when not installed. */
  heartbeat?: MirrorHeartbeat;
}

/** A heartbeat agent's installation of a mirror (POST /v1/mirrors/REF/heartbeat). */
export interface MirrorHeartbeat {
  installed: true;
  /** the agent's id */
  by: string;
  /** ms since the epoch */
  sinceMs: number;
}

export const DEFAULT_ATTRIBUTES: Omit<MirrorAttributes, 'name'> = {
  activationPolicy: 'automatic',
  minImagesRequired: -1,
  maxMissingImages: -1,
  writePolicy: 'synchronous',
  writeBacklogSize: 0,
  syncPriority: 'medium',
  syncRate: 64 * 1024 * 1024,
  allowSecondaryReads: false,
  protectResync: true,
};
export const DEFAULT_REGION_SIZE = 64 * 1024;

export function primaryOf(db: MirrorDbRecord): MirrorImage {
  const p = db.images.find((i) => i.role === 'primary');
  if (!p) throw new Error(`mirror ${db.mirrorId} has no primary image`);
  return p;
}

export function secondariesOf(db: MirrorDbRecord): MirrorImage[] {
  return db.images.filter((i) => i.role === 'secondary');
}

/**
 * A secondary is missing when it is UNREACHABLE (not present). A reachable fractured image is
 * present: it is being (or waits to be) resynchronized; the fracture alone does not change the
 * mirror state.
 */
export function isMissing(i: MirrorImage): boolean {
  return i.role === 'secondary' && i.reachability === 'UNREACHABLE';
}

export interface Requirements {
  met: boolean;
  available: number;
  missing: number;
  total: number;
  reasons: string[];
}

/** The minimum conditions for normal operation [0081, 0082]. */
export function requirements(db: Pick<MirrorDbRecord, 'images' | 'minImagesRequired' | 'maxMissingImages'>): Requirements {
  const total = db.images.length;
  const missing = db.images.filter(isMissing).length;
  const available = total - missing;
  const reasons: string[] = [];
  if (db.minImagesRequired >= 0 && available < db.minImagesRequired) reasons.push(`${available} of ${total} images available, ${db.minImagesRequired} required`);
  if (db.maxMissingImages >= 0 && missing > db.maxMissingImages) reasons.push(`${missing} secondary images missing, at most ${db.maxMissingImages} allowed`);
  return { met: reasons.length === 0, available, missing, total, reasons };
}

/** True when the image may act as primary: it is the record's primary with the record's epoch. */
export function mayActAsPrimary(db: MirrorDbRecord, imageId: string, epoch: number): boolean {
  const p = db.images.find((i) => i.role === 'primary');
  return p !== undefined && p.imageId === imageId && p.epoch === epoch && epoch === db.epoch;
}

/**
 * Which of two records of the same mirror is authoritative: the higher epoch, then the higher
 * generation. Returns 0 when they tie (same epoch and generation).
 */
export function compareRecords(a: MirrorDbRecord, b: MirrorDbRecord): -1 | 0 | 1 {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch ? 1 : -1;
  if (a.generation !== b.generation) return a.generation > b.generation ? 1 : -1;
  return 0;
}

export class MirrorDbFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MirrorDbFormatError';
  }
}

const IMAGE_STATE_SET = new Set(['UNSYNCHRONIZED', 'SYNCHRONIZING', 'CONSISTENT', 'SYNCHRONIZED']);

/** Validates a record read from disk or received over the link (throws MirrorDbFormatError). */
export function parseMirrorDb(v: unknown): MirrorDbRecord {
  const bad = (why: string): never => {
    throw new MirrorDbFormatError(`invalid mirror database record: ${why}`);
  };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('not an object');
  const r = v as Record<string, unknown>;
  if (r.format !== MIRROR_DB_FORMAT) bad(`format ${JSON.stringify(r.format)}`);
  if (r.version !== MIRROR_DB_VERSION) bad(`version ${JSON.stringify(r.version)} (this build reads ${MIRROR_DB_VERSION})`);
  const int = (x: unknown, min: number) => typeof x === 'number' && Number.isSafeInteger(x) && x >= min;
  if (typeof r.mirrorId !== 'string' || !r.mirrorId) bad('mirrorId');
  if (typeof r.name !== 'string') bad('name');
  if (!int(r.generation, 0) || !int(r.epoch, 1) || !int(r.regionSize, 1)) bad('generation/epoch/regionSize');
  if (r.state !== 'ACTIVE' && r.state !== 'INACTIVE' && r.state !== 'ATTENTION') bad(`state ${JSON.stringify(r.state)}`);
  if (r.activationPolicy !== 'automatic' && r.activationPolicy !== 'manual') bad('activationPolicy');
  if (!int(r.minImagesRequired, -1) || !int(r.maxMissingImages, -1) || !int(r.writeBacklogSize, 0) || !int(r.syncRate, 1)) bad('numeric attributes');
  if (!['synchronous', 'asynchronous', 'near-synchronous'].includes(r.writePolicy as string)) bad('writePolicy');
  if (!['low', 'medium', 'high'].includes(r.syncPriority as string)) bad('syncPriority');
  if (typeof r.allowSecondaryReads !== 'boolean') bad('allowSecondaryReads');
  if (r.protectResync === undefined) r.protectResync = true; // a record from before the attribute
  else if (typeof r.protectResync !== 'boolean') bad('protectResync');
  if (r.resyncChecksums !== undefined && !RESYNC_CHECKSUMS.includes(r.resyncChecksums as ResyncChecksums)) bad('resyncChecksums');
  if (r.syncController !== undefined && !SYNC_CONTROLLERS.includes(r.syncController as SyncController)) bad('syncController');
  if (r.heartbeat !== undefined) {
    const h = r.heartbeat as Record<string, unknown> | null;
    if (typeof h !== 'object' || h === null || h.installed !== true || typeof h.by !== 'string' || !int(h.sinceMs, 0)) bad('heartbeat');
  }
  if (!Array.isArray(r.images) || r.images.length === 0) bad('images');
  let primaries = 0;
  for (const x of r.images as unknown[]) {
    if (typeof x !== 'object' || x === null) bad('image entry');
    const i = x as Record<string, unknown>;
    if (typeof i.imageId !== 'string' || typeof i.array !== 'string' || !int(i.lun, 0) || !int(i.size, 0) || !int(i.epoch, 0)) bad(`image ${JSON.stringify(i.imageId)}`);
    if (i.role === 'primary') {
      primaries++;
      if (i.state !== null) bad('the primary has no secondary state');
    } else if (i.role === 'secondary') {
      if (!IMAGE_STATE_SET.has(i.state as string)) bad(`image ${String(i.imageId)} state ${JSON.stringify(i.state)}`);
    } else bad(`image ${String(i.imageId)} role`);
    if (i.reachability !== 'REACHABLE' && i.reachability !== 'UNREACHABLE') bad('reachability');
    if (typeof i.fractured !== 'boolean') bad('fractured');
    if (!(i.fractureReason === null || FRACTURE_REASONS.includes(i.fractureReason as FractureReason))) bad('fractureReason');
    if (i.recoveryPolicy !== 'auto' && i.recoveryPolicy !== 'manual') bad('recoveryPolicy');
    if (!(i.syncRate === null || int(i.syncRate, 1))) bad('syncRate');
    if (!(i.resyncChecksums === undefined || i.resyncChecksums === null || RESYNC_CHECKSUMS.includes(i.resyncChecksums as ResyncChecksums))) bad('resyncChecksums');
    if (i.syncProgress !== null && (typeof i.syncProgress !== 'object' || !int((i.syncProgress as Record<string, unknown>)?.bytesDone, 0))) bad('syncProgress');
  }
  if (primaries !== 1) bad(`${primaries} primary images`);
  return v as MirrorDbRecord;
}
