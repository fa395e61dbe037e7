import { join } from 'node:path';
import type { MetadataStore } from '../../metadata/index.js';
import type { RegionBitmap } from '../../native/index.js';
import { primaryOf, type MirrorDbRecord, type MirrorImage } from '../state/index.js';
import { SerialQueue } from '../../serial/index.js';
import type { BitmapFile } from './bitmap-file.js';
import { peerPhase, type PeerPhase } from './peer-phase.js';
import type { PrimarySide, SecondaryPeer } from './primary.js';
import type { MirrorLun } from './types.js';

/**
 * One mirror with an image on this array, as every part of the driver sees it: the record, its
 * store, the local LUN and, on the primary side, the runtime state (./primary.ts).
 */
export interface Entry {
  id: string;
  db: MirrorDbRecord;
  dir: string;
  store: MetadataStore<MirrorDbRecord>;
  lun: MirrorLun;
  localImageId: string;
  primary: PrimarySide | null;
  divergence: Divergence | null;
  splitBrain: SplitBrain | null;
  /** serializes changes of the record and of the roles */
  /** One change of the record at a time (records.exclusive). */
  serial: SerialQueue;
}

/** What a demoted (former) primary keeps for the new primary: the regions it may have changed. */
export interface Divergence {
  file: BitmapFile;
  /** regions of it whose writes were acknowledged to hosts (not merely in flight) */
  acknowledgedRegions: number;
  forImage: string;
}

export interface SplitBrain {
  imageId: string;
  local: RegionBitmap;
  remote: RegionBitmap;
  detectedAt: string;
}

export function newEntry(db: MirrorDbRecord, dir: string, store: MetadataStore<MirrorDbRecord>, lun: MirrorLun, localImageId: string): Entry {
  return { id: db.mirrorId, db, dir, store, lun, localImageId, primary: null, divergence: null, splitBrain: null, serial: new SerialQueue() };
}

/** The mirror's extent: the primary's size. */
export function mirrorSize(db: MirrorDbRecord): number {
  return primaryOf(db).size;
}

/** The record's image of a secondary peer (undefined once the record dropped it). */
export function imageOf(e: Entry, imageId: string): MirrorImage | undefined {
  return e.db.images.find((i) => i.imageId === imageId);
}

/** The phase (./peer-phase.ts) of one secondary of `e`, from its runtime state and the record. */
export function phaseOf(e: Entry, p: SecondaryPeer): PeerPhase {
  return peerPhase(imageOf(e, p.imageId), factsOf(p));
}

export function factsOf(p: SecondaryPeer): { link: SecondaryPeer['link']; failed: boolean; resyncRunning: boolean; resyncStarting: boolean; dirty: () => boolean } {
  return { link: p.link, failed: p.failed, resyncRunning: p.resync !== null || p.resyncFinishing, resyncStarting: p.resync?.starting === true, dirty: () => p.fracture.bitmap.countRegions() > 0 };
}

export const safeName = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_');

export function fracturePath(e: Entry, imageId: string): string {
  return join(e.dir, `fracture-${safeName(imageId)}.bitmap`);
}

export const divergenceBitmapPath = (e: Entry): string => join(e.dir, 'divergence.bitmap');
export const divergenceMetaPath = (e: Entry): string => join(e.dir, 'divergence.json');

/** Link error codes that mean the connection is gone (not an error of the request itself). */
export const LINK_FAILURES: ReadonlySet<string> = new Set(['closed', 'peer-dead', 'not-connected', 'timeout', 'bad-mac']);

/** Reads of a secondary's data or checksums (backfresh, verify): whole batches of regions. */
export const remoteReadTimeoutMs = 60_000;
