/** The records of clones, as persisted and as the API shows them, and the clone verbs' errors. */

export const CLONE_FORMAT = 'sanbox-clones/1';
/** The background copy's rate unless the operator sets one. */
export const DEFAULT_CLONE_RATE_BYTES_PER_SEC = 64 * 1024 * 1024;
/** One bit of the copied map covers this much of the clone; a first write to a region copies it whole. */
export const DEFAULT_CLONE_REGION_SIZE = 256 * 1024;
/** A copy reports progress (event `clone.progress`) at most this often. */
export const CLONE_PROGRESS_MS = 1000;
/** A clone is named like a LUN, 6 characters shorter: a live LUN's source snapshot is `clone-NAME`. */
export const CLONE_NAME_MAX = 58;
/** The prefix of the snapshot a clone of a live LUN copies from. */
export const CLONE_SOURCE_PREFIX = 'clone-';

/**
 * creating: the record is persisted, its source snapshot and LUN are being made (finished at the
 * next open after a crash). copying: the clone LUN serves I/O and the background copy runs.
 * completed: every region is the clone's own; the clone no longer depends on its source.
 */
export type CloneRecordState = 'creating' | 'copying' | 'completed';

export interface CloneSource {
  lun: number;
  lunName: string;
  /** The snapshot the clone copies from. */
  snapshot: string;
  /** Taken by `clone create` of a live LUN (`clone-NAME`), deleted when the copy completes. */
  internal: boolean;
}

export interface CloneRecord {
  /** The clone's name: the name of its LUN. */
  name: string;
  /** The clone LUN's id (absent while creating, until the LUN exists). */
  lun?: number;
  source: CloneSource;
  size: number;
  blockSize: number;
  regionSize: number;
  rateBytesPerSec: number;
  state: CloneRecordState;
  /** ISO 8601. */
  created: string;
  completed?: string;
  /** How long the copy took, creation to completion (restarts included). */
  copyMs?: number;
  /** Why the background copy stopped (it resumes at the next start or `clone resume`). */
  error?: string;
}

export interface CloneMetadata {
  format: typeof CLONE_FORMAT;
  clones: CloneRecord[];
}

/**
 * What status shows: failed is a copying clone whose background copy stopped on an error;
 * paused a copying clone of a read-only array (nothing may be written, so nothing is copied).
 */
export type CloneState = 'creating' | 'copying' | 'failed' | 'paused' | 'completed';

export interface CloneView {
  name: string;
  lun?: number;
  state: CloneState;
  source: CloneSource & { export: string };
  totalBytes: number;
  /** Bytes of regions the clone holds itself (copied, or written by a host first). */
  copiedBytes: number;
  percent: number;
  regionSize: number;
  rateBytesPerSec: number;
  /** What the copy moved over the last progress interval. */
  measuredBytesPerSec?: number;
  etaSec?: number;
  created: string;
  completed?: string;
  copyMs?: number;
  error?: string;
}

export type CloneErrorCode = 'invalid-argument' | 'not-found' | 'exists' | 'busy' | 'read-only' | 'unsupported' | 'io';
const HTTP_STATUS: Record<CloneErrorCode, number> = { 'invalid-argument': 400, 'not-found': 404, exists: 409, busy: 409, 'read-only': 409, unsupported: 501, io: 500 };

export class CloneError extends Error {
  constructor(
    readonly code: CloneErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CloneError';
  }
  /** The API answers with this status. */
  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }
}

/** `LUN@SNAP`: the export name of the snapshot a clone copies from. */
export function sourceExport(s: CloneSource): string {
  return `${s.lunName}@${s.snapshot}`;
}
