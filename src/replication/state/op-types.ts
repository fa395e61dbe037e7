/**
 * The vocabulary of `applyOp` (./ops.ts): the operations it takes, the events it returns and the
 * error it throws. Kept apart from the transitions so the shapes read on their own; ./ops.ts
 * re-exports all of it, so importers see no difference.
 */
import type { MirrorAttributes, MirrorDbRecord, MirrorHeartbeat, RecoveryPolicy, ResyncChecksums } from './db.js';
import type { ImageEvent, ImageState, MirrorEvent, MirrorState } from './tables.js';

/** Identity of a LUN playing an image. */
export interface ImageSpec {
  imageId: string;
  array: string;
  lun: number;
  size: number;
}

export type ChangeableAttributes = Partial<Omit<MirrorAttributes, never>>;

/**
 * Administrative operations [0097-0108] and operational events (what the driver observes), all
 * applied by `applyOp`. Administrative operations go to the primary, which propagates the new
 * record; operational ones are what the primary's driver reports (a write, a lost secondary, a
 * finished sync).
 */
export type MirrorOp =
  // administrative
  | { op: 'create'; mirrorId: string; name: string; primary: ImageSpec; attributes?: ChangeableAttributes; regionSize?: number }
  | { op: 'add-secondary'; image: ImageSpec; initialState: 'SYNCHRONIZED' | 'UNSYNCHRONIZED'; recoveryPolicy?: RecoveryPolicy }
  | { op: 'remove-secondary'; imageId: string; mode: 'graceful' | 'forced' }
  | { op: 'promote'; imageId: string; force?: boolean }
  | { op: 'synchronize'; imageId: string; force?: boolean }
  | { op: 'fracture'; imageId: string }
  | { op: 'activate' }
  | { op: 'deactivate'; force?: boolean }
  | { op: 'destroy' }
  | { op: 'change-attributes'; attributes?: ChangeableAttributes; image?: { imageId: string; recoveryPolicy?: RecoveryPolicy; syncRate?: number | null; resyncChecksums?: ResyncChecksums | null } }
  | { op: 'heartbeat'; heartbeat: MirrorHeartbeat | null; by: string }
  // operational
  | { op: 'image-unreachable'; imageId: string; reason?: 'link' | 'freeze' } // freeze: an armed group's member (src/replication/mirror/freeze.ts)
  | { op: 'image-reachable'; imageId: string }
  | { op: 'primary-write' }
  | { op: 'quiesced'; imageId: string }
  | { op: 'sync-progress'; imageId: string; bytesDone: number; bytesTotal: number }
  | { op: 'sync-done'; imageId: string }
  | { op: 'sync-failed'; imageId: string }
  | { op: 'updates-lost'; imageId: string }
  | { op: 'history-lost'; imageId: string };

export type MirrorOpName = MirrorOp['op'];
export const ADMIN_OPS: readonly MirrorOpName[] = ['create', 'add-secondary', 'remove-secondary', 'promote', 'synchronize', 'fracture', 'activate', 'deactivate', 'destroy', 'change-attributes', 'heartbeat'];
export const OPERATIONAL_OPS: readonly MirrorOpName[] = ['image-unreachable', 'image-reachable', 'primary-write', 'quiesced', 'sync-progress', 'sync-done', 'sync-failed', 'updates-lost', 'history-lost'];

export type MirrorDbEvent =
  | { type: 'mirror-created'; mirrorId: string }
  | { type: 'mirror-destroyed'; mirrorId: string }
  | { type: 'mirror-state'; mirrorId: string; from: MirrorState; to: MirrorState; event: MirrorEvent; reasons: string[] }
  | { type: 'image-state'; mirrorId: string; imageId: string; from: ImageState; to: ImageState; event: ImageEvent }
  | { type: 'image-added'; mirrorId: string; imageId: string; state: ImageState }
  | { type: 'image-removed'; mirrorId: string; imageId: string; mode: 'graceful' | 'forced' }
  | { type: 'image-fractured'; mirrorId: string; imageId: string; reason: 'admin' | 'link' | 'promote' | 'freeze' }
  | { type: 'image-unfractured'; mirrorId: string; imageId: string }
  | { type: 'image-reachability'; mirrorId: string; imageId: string; reachability: 'REACHABLE' | 'UNREACHABLE' }
  | { type: 'awaiting-operator'; mirrorId: string; imageId: string; why: string }
  | { type: 'promoted'; mirrorId: string; imageId: string; oldPrimary: string; epoch: number; forced: boolean }
  | { type: 'attributes-changed'; mirrorId: string; changed: string[] }
  | { type: 'heartbeat-installed'; mirrorId: string; by: string }
  | { type: 'heartbeat-uninstalled'; mirrorId: string; by: string; installedBy: string; installedMs: number }
  | { type: 'sync-progress'; mirrorId: string; imageId: string; bytesDone: number; bytesTotal: number };

export type MirrorOpErrorCode =
  | 'exists' // the mirror or image already exists / the LUN is in the mirror / array already has an image
  | 'not-found' // no such mirror or image
  | 'invalid' // malformed arguments
  | 'not-secondary' // the operation needs a secondary image
  | 'size-mismatch' // the secondary is smaller than the primary
  | 'state' // the mirror or image state does not allow it
  | 'unreachable' // the image cannot be reached (use the forced variant)
  | 'has-secondaries'; // destroy with secondaries left

export class MirrorOpError extends Error {
  constructor(
    readonly code: MirrorOpErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MirrorOpError';
  }
}

export interface OpResult {
  /** the new record (null after destroy) */
  db: MirrorDbRecord | null;
  events: MirrorDbEvent[];
}
