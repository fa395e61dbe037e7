import {
  DEFAULT_ATTRIBUTES,
  DEFAULT_REGION_SIZE,
  MIRROR_DB_FORMAT,
  MIRROR_DB_VERSION,
  primaryOf,
  requirements, resumesItself,
  secondariesOf,
  RESYNC_CHECKSUMS,
  SYNC_CONTROLLERS,
  type MirrorAttributes,
  type MirrorDbRecord,
  type MirrorImage,
  type RecoveryPolicy,
} from './db.js';
import { MirrorOpError, type ImageSpec, type MirrorDbEvent, type MirrorOp, type MirrorOpErrorCode, type OpResult } from './op-types.js';
import { imageTransition, mirrorTransition, promotable, type ImageEvent, type ImageState, type MirrorEvent } from './tables.js';

// The operations, events and error live in ./op-types.ts; re-exported so `./ops.js` stays the one place to import them from.
export {
  ADMIN_OPS,
  MirrorOpError,
  OPERATIONAL_OPS,
  type ChangeableAttributes,
  type ImageSpec,
  type MirrorDbEvent,
  type MirrorOp,
  type MirrorOpErrorCode,
  type MirrorOpName,
  type OpResult,
} from './op-types.js';

const fail = (code: MirrorOpErrorCode, message: string): never => {
  throw new MirrorOpError(code, message);
};

/**
 * Pure: applies `op` to `db` (null before create) and returns the new record and the events, or
 * throws MirrorOpError (nothing changes). The input is never mutated. Every successful change
 * bumps `generation`. After each op the minimum-images rule is re-evaluated: an ACTIVE mirror
 * that no longer meets it goes to ATTENTION; an ATTENTION mirror that meets it again goes to
 * ACTIVE (automatic activation policy) or INACTIVE (manual).
 */
export function applyOp(db: MirrorDbRecord | null, op: MirrorOp): OpResult {
  if (op.op === 'create') {
    if (db) fail('exists', `mirror ${db.mirrorId} already exists`);
    return create(op);
  }
  if (!db) return fail('not-found', `no mirror for ${op.op}`);
  const d: MirrorDbRecord = structuredClone(db);
  const ev: MirrorDbEvent[] = [];
  const ctx = new Ctx(d, ev);
  switch (op.op) {
    case 'add-secondary':
      addSecondary(ctx, op);
      break;
    case 'remove-secondary': {
      const img = ctx.secondary(op.imageId);
      if (op.mode === 'graceful' && img.reachability === 'UNREACHABLE')
        fail('unreachable', `image ${img.imageId} is unreachable: a graceful removal cannot complete its outstanding requests; use a forced removal`);
      d.images = d.images.filter((i) => i.imageId !== img.imageId);
      ev.push({ type: 'image-removed', mirrorId: d.mirrorId, imageId: img.imageId, mode: op.mode });
      break;
    }
    case 'promote':
      promote(ctx, op.imageId, op.force === true);
      break;
    case 'synchronize':
      synchronize(ctx, op.imageId, op.force === true);
      break;
    case 'fracture': {
      const img = ctx.secondary(op.imageId);
      if (img.fractured) fail('state', `image ${img.imageId} is already fractured (${img.fractureReason})`);
      ctx.fracture(img, 'admin');
      break;
    }
    case 'activate': {
      if (d.state !== 'INACTIVE') fail('state', `mirror ${d.mirrorId} is ${d.state}, not INACTIVE`);
      const r = requirements(d);
      ctx.mirror(r.met ? 'activate' : 'activate-unmet', r.reasons);
      if (d.state === 'ACTIVE') ctx.startPendingSyncs();
      break;
    }
    case 'deactivate': {
      if (d.state === 'INACTIVE') fail('state', `mirror ${d.mirrorId} is already INACTIVE`);
      const syncing = secondariesOf(d).filter((i) => i.state === 'SYNCHRONIZING');
      if (syncing.length && !op.force) fail('state', `images ${syncing.map((i) => i.imageId).join(', ')} are SYNCHRONIZING; deactivate with force to abandon the synchronization`);
      for (const i of syncing) ctx.image(i, 'sync-failed');
      ctx.mirror('deactivate', []);
      break;
    }
    case 'destroy': {
      const n = secondariesOf(d).length;
      if (n) fail('has-secondaries', `mirror ${d.mirrorId} still has ${n} secondary image(s); remove them first`);
      if (d.state !== 'INACTIVE') fail('state', `mirror ${d.mirrorId} is ${d.state}; deactivate it before destroying it`);
      return { db: null, events: [{ type: 'mirror-destroyed', mirrorId: d.mirrorId }] };
    }
    case 'change-attributes':
      changeAttributes(ctx, op);
      break;
    case 'heartbeat': {
      const was = d.heartbeat;
      if (op.heartbeat) d.heartbeat = { ...op.heartbeat };
      else delete d.heartbeat;
      ev.push(op.heartbeat ? { type: 'heartbeat-installed', mirrorId: d.mirrorId, by: op.by } : { type: 'heartbeat-uninstalled', mirrorId: d.mirrorId, by: op.by, installedBy: was?.by ?? '', installedMs: was ? Date.now() - was.sinceMs : 0 });
      break;
    }
    case 'image-unreachable': {
      const img = ctx.secondary(op.imageId);
      if (img.reachability === 'UNREACHABLE') fail('state', `image ${img.imageId} is already UNREACHABLE`);
      img.reachability = 'UNREACHABLE';
      ev.push({ type: 'image-reachability', mirrorId: d.mirrorId, imageId: img.imageId, reachability: 'UNREACHABLE' });
      if (img.state === 'SYNCHRONIZING') ctx.image(img, 'sync-failed'); // progress kept [0092]
      if (!img.fractured) ctx.fracture(img, op.reason === 'freeze' ? 'freeze' : 'link');
      break;
    }
    case 'image-reachable': {
      const img = ctx.secondary(op.imageId);
      if (img.reachability === 'REACHABLE') fail('state', `image ${img.imageId} is already REACHABLE`);
      img.reachability = 'REACHABLE';
      ev.push({ type: 'image-reachability', mirrorId: d.mirrorId, imageId: img.imageId, reachability: 'REACHABLE' });
      ctx.settle(); // ATTENTION -> ACTIVE (which resumes auto-recovery images) or INACTIVE
      if (img.fractured && resumesItself(img.fractureReason)) {
        if (img.recoveryPolicy === 'manual') ev.push({ type: 'awaiting-operator', mirrorId: d.mirrorId, imageId: img.imageId, why: 'recovery policy is manual: synchronize it explicitly' });
        else if (d.state !== 'ACTIVE') ev.push({ type: 'awaiting-operator', mirrorId: d.mirrorId, imageId: img.imageId, why: `mirror is ${d.state}: it resynchronizes once ACTIVE` });
        else ctx.resume(img);
      } else if (img.fractured && img.fractureReason === 'promote')
        ev.push({ type: 'awaiting-operator', mirrorId: d.mirrorId, imageId: img.imageId, why: 'former primary: check for split brain (divergent writes), then synchronize it' });
      else if (!img.fractured && img.state === 'UNSYNCHRONIZED' && d.state === 'ACTIVE') ctx.image(img, 'sync-start');
      break;
    }
    case 'primary-write': {
      if (d.state !== 'ACTIVE') fail('state', `mirror ${d.mirrorId} is ${d.state}: the host cannot write the primary`);
      for (const i of secondariesOf(d)) if (i.state === 'SYNCHRONIZED') ctx.image(i, 'primary-write');
      break;
    }
    case 'quiesced': {
      const img = ctx.secondary(op.imageId);
      if (img.fractured || img.reachability === 'UNREACHABLE') fail('state', `image ${img.imageId} is fractured or unreachable: it cannot be SYNCHRONIZED`);
      ctx.image(img, 'quiesced');
      break;
    }
    case 'sync-progress': {
      const img = ctx.secondary(op.imageId);
      if (img.state !== 'SYNCHRONIZING') fail('state', `image ${img.imageId} is ${img.state}, not SYNCHRONIZING`);
      if (!Number.isSafeInteger(op.bytesDone) || !Number.isSafeInteger(op.bytesTotal) || op.bytesDone < 0 || op.bytesDone > op.bytesTotal) fail('invalid', 'bytesDone must be within 0..bytesTotal');
      img.syncProgress = { bytesDone: op.bytesDone, bytesTotal: op.bytesTotal };
      ev.push({ type: 'sync-progress', mirrorId: d.mirrorId, imageId: img.imageId, bytesDone: op.bytesDone, bytesTotal: op.bytesTotal });
      break;
    }
    case 'sync-done': {
      const img = ctx.secondary(op.imageId);
      ctx.image(img, 'sync-done');
      img.syncProgress = null;
      break;
    }
    case 'sync-failed':
      ctx.image(ctx.secondary(op.imageId), 'sync-failed');
      break;
    case 'updates-lost': {
      const img = ctx.secondary(op.imageId);
      if (img.fractured || img.reachability === 'UNREACHABLE') fail('state', `image ${img.imageId} is fractured or unreachable: its fracture log already tracks the lost updates`);
      ctx.image(img, 'updates-lost');
      break;
    }
    case 'history-lost': {
      const img = ctx.secondary(op.imageId);
      ctx.image(img, 'history-lost');
      if (!img.fractured && img.reachability === 'REACHABLE') ctx.image(img, 'sync-start'); // [0061]: implicit while ACTIVE
      break;
    }
    default:
      fail('invalid', `unknown operation ${JSON.stringify((op as { op: unknown }).op)}`);
  }
  ctx.settle();
  d.generation = db.generation + 1;
  return { db: d, events: ev };
}

class Ctx {
  constructor(
    readonly d: MirrorDbRecord,
    readonly ev: MirrorDbEvent[],
  ) {}

  find(imageId: string): MirrorImage {
    const i = this.d.images.find((x) => x.imageId === imageId);
    return i ?? fail('not-found', `mirror ${this.d.mirrorId} has no image ${JSON.stringify(imageId)}`);
  }
  secondary(imageId: string): MirrorImage {
    const i = this.find(imageId);
    if (i.role !== 'secondary') fail('not-secondary', `image ${imageId} is the primary of mirror ${this.d.mirrorId}`);
    return i;
  }

  image(i: MirrorImage, event: ImageEvent): void {
    const from = i.state as ImageState;
    let to: ImageState;
    try {
      to = imageTransition(from, event, this.d.state);
    } catch (e) {
      return fail('state', `image ${i.imageId}: ${(e as Error).message}`);
    }
    i.state = to;
    this.ev.push({ type: 'image-state', mirrorId: this.d.mirrorId, imageId: i.imageId, from, to, event });
  }

  mirror(event: MirrorEvent, reasons: string[]): void {
    const from = this.d.state;
    const to = mirrorTransition(from, event, this.d.activationPolicy);
    this.d.state = to;
    this.ev.push({ type: 'mirror-state', mirrorId: this.d.mirrorId, from, to, event, reasons });
  }

  fracture(i: MirrorImage, reason: 'admin' | 'link' | 'promote' | 'freeze'): void {
    if (i.state === 'SYNCHRONIZING') this.image(i, 'sync-failed');
    i.fractured = true;
    i.fractureReason = reason;
    this.ev.push({ type: 'image-fractured', mirrorId: this.d.mirrorId, imageId: i.imageId, reason });
  }

  unfracture(i: MirrorImage): void {
    if (!i.fractured) return;
    i.fractured = false;
    i.fractureReason = null;
    this.ev.push({ type: 'image-unfractured', mirrorId: this.d.mirrorId, imageId: i.imageId });
  }

  /** Ends a fracture and resynchronizes (mirror ACTIVE, image reachable). */
  resume(i: MirrorImage): void {
    this.unfracture(i);
    if (i.state === 'UNSYNCHRONIZED') this.image(i, 'sync-start');
    else if (i.state === 'CONSISTENT') this.image(i, 'updates-lost'); // the fracture log says what was lost
    // SYNCHRONIZED: no write happened while fractured; nothing to copy
  }

  /**
   * When the mirror is ACTIVE: UNSYNCHRONIZED reachable images start synchronizing [0061, 0100],
   * and reachable images fractured by a link failure resume under the auto recovery policy.
   */
  startPendingSyncs(): void {
    if (this.d.state !== 'ACTIVE') return;
    for (const i of secondariesOf(this.d)) {
      if (i.reachability !== 'REACHABLE') continue;
      if (!i.fractured && i.state === 'UNSYNCHRONIZED') this.image(i, 'sync-start');
      else if (i.fractured && resumesItself(i.fractureReason) && i.recoveryPolicy === 'auto') this.resume(i);
    }
  }

  /** Re-evaluates the minimum-images rule. */
  settle(): void {
    const r = requirements(this.d);
    if (this.d.state === 'ACTIVE' && !r.met) this.mirror('requirements-lost', r.reasons);
    else if (this.d.state === 'ATTENTION' && r.met) {
      this.mirror('requirements-met', []);
      this.startPendingSyncs();
    }
  }
}

function checkSpec(s: ImageSpec, what: string): void {
  if (typeof s !== 'object' || s === null) fail('invalid', `${what}: missing`);
  if (typeof s.imageId !== 'string' || !s.imageId) fail('invalid', `${what}: imageId`);
  if (typeof s.array !== 'string' || !s.array) fail('invalid', `${what}: array`);
  if (!Number.isSafeInteger(s.lun) || s.lun < 0) fail('invalid', `${what}: lun`);
  if (!Number.isSafeInteger(s.size) || s.size <= 0) fail('invalid', `${what}: size`);
}

function newImage(s: ImageSpec, role: 'primary' | 'secondary', state: ImageState | null, epoch: number, recoveryPolicy: RecoveryPolicy): MirrorImage {
  return {
    imageId: s.imageId,
    array: s.array,
    lun: s.lun,
    size: s.size,
    role,
    state,
    epoch,
    reachability: 'REACHABLE',
    fractured: false,
    fractureReason: null,
    recoveryPolicy,
    syncRate: null,
    syncProgress: null,
  };
}

function create(op: Extract<MirrorOp, { op: 'create' }>): OpResult {
  if (typeof op.mirrorId !== 'string' || !op.mirrorId) fail('invalid', 'create: mirrorId');
  if (typeof op.name !== 'string' || !op.name) fail('invalid', 'create: name');
  checkSpec(op.primary, 'create: primary');
  const regionSize = op.regionSize ?? DEFAULT_REGION_SIZE;
  if (!Number.isSafeInteger(regionSize) || regionSize < 512 || (regionSize & (regionSize - 1)) !== 0) fail('invalid', 'create: regionSize must be a power of two >= 512');
  const attrs: MirrorAttributes = { ...DEFAULT_ATTRIBUTES, name: op.name, ...(op.attributes ?? {}) };
  const d: MirrorDbRecord = {
    format: MIRROR_DB_FORMAT,
    version: MIRROR_DB_VERSION,
    mirrorId: op.mirrorId,
    generation: 1,
    ...attrs,
    name: op.name,
    state: 'ACTIVE', // a new mirror is ACTIVE with its single primary image [0097]
    epoch: 1,
    regionSize,
    images: [newImage(op.primary, 'primary', null, 1, 'auto')],
  };
  validateAttributes(d);
  const ev: MirrorDbEvent[] = [{ type: 'mirror-created', mirrorId: d.mirrorId }];
  new Ctx(d, ev).settle();
  return { db: d, events: ev };
}

function addSecondary(ctx: Ctx, op: Extract<MirrorOp, { op: 'add-secondary' }>): void {
  const d = ctx.d;
  checkSpec(op.image, 'add-secondary: image');
  if (op.initialState !== 'SYNCHRONIZED' && op.initialState !== 'UNSYNCHRONIZED') fail('invalid', 'add-secondary: initialState must be SYNCHRONIZED or UNSYNCHRONIZED');
  if (op.recoveryPolicy !== undefined && op.recoveryPolicy !== 'auto' && op.recoveryPolicy !== 'manual') fail('invalid', 'add-secondary: recoveryPolicy');
  if (d.images.some((i) => i.imageId === op.image.imageId)) fail('exists', `image ${op.image.imageId} is already in mirror ${d.mirrorId}`);
  const same = d.images.find((i) => i.array === op.image.array);
  if (same) fail('exists', `array ${op.image.array} already holds image ${same.imageId} of mirror ${d.mirrorId} (one image per array)`);
  const p = primaryOf(d);
  if (op.image.size < p.size) fail('size-mismatch', `secondary ${op.image.imageId} (${op.image.size} bytes) is smaller than the primary ${p.imageId} (${p.size} bytes)`);
  const img = newImage(op.image, 'secondary', op.initialState, 0, op.recoveryPolicy ?? 'auto');
  d.images.push(img);
  ctx.ev.push({ type: 'image-added', mirrorId: d.mirrorId, imageId: img.imageId, state: op.initialState });
  // UNSYNCHRONIZED: synchronizes at once if the mirror is ACTIVE, else when activated [0100]
  if (img.state === 'UNSYNCHRONIZED' && d.state === 'ACTIVE') ctx.image(img, 'sync-start');
}

function promote(ctx: Ctx, imageId: string, force: boolean): void {
  const d = ctx.d;
  const img = ctx.secondary(imageId);
  const state = img.state as ImageState;
  if (!promotable(state) && !force) fail('state', `image ${imageId} is ${state}: promotion refused (force to promote anyway, accepting its data as it is)`);
  const old = primaryOf(d);
  const wasSynchronized = state === 'SYNCHRONIZED';
  const epoch = Math.max(...d.images.map((i) => i.epoch)) + 1;
  img.role = 'primary';
  img.state = null;
  img.epoch = epoch;
  img.fractured = false;
  img.fractureReason = null;
  img.reachability = 'REACHABLE';
  img.syncProgress = null;
  d.epoch = epoch;
  old.role = 'secondary';
  // The old primary keeps its (now lower) epoch: it can never act as primary again.
  old.state = wasSynchronized && !force ? 'SYNCHRONIZED' : 'UNSYNCHRONIZED';
  old.syncProgress = null;
  if (!wasSynchronized || force) {
    // the old primary may hold writes the new one lacks: it must be resynchronized (from the
    // bitmaps: the new primary's fracture log since promotion + the old one's unreplicated regions)
    old.fractured = true;
    old.fractureReason = 'promote';
    ctx.ev.push({ type: 'image-fractured', mirrorId: d.mirrorId, imageId: old.imageId, reason: 'promote' });
    for (const i of secondariesOf(d)) {
      if (i === old) continue;
      if (i.state !== 'UNSYNCHRONIZED') {
        const from = i.state as ImageState;
        i.state = 'UNSYNCHRONIZED'; // relative to a new primary, no known relationship
        ctx.ev.push({ type: 'image-state', mirrorId: d.mirrorId, imageId: i.imageId, from, to: 'UNSYNCHRONIZED', event: 'history-lost' });
      }
    }
  }
  ctx.ev.push({ type: 'promoted', mirrorId: d.mirrorId, imageId, oldPrimary: old.imageId, epoch, forced: force });
  ctx.startPendingSyncs();
}

function synchronize(ctx: Ctx, imageId: string, force: boolean): void {
  const d = ctx.d;
  const img = ctx.secondary(imageId);
  if (img.reachability === 'UNREACHABLE') fail('unreachable', `image ${imageId} is UNREACHABLE`);
  if (d.state === 'INACTIVE') {
    // only the forced CONSISTENT -> SYNCHRONIZING of [0067 (1)]
    if (!force || img.state !== 'CONSISTENT') fail('state', `mirror ${d.mirrorId} is INACTIVE: only a CONSISTENT image can be forced to SYNCHRONIZING (force)`);
    ctx.unfracture(img);
    ctx.image(img, 'force-sync');
    return;
  }
  if (d.state !== 'ACTIVE') fail('state', `mirror ${d.mirrorId} is ${d.state}: synchronize needs an ACTIVE mirror [0103]`);
  if (img.state === 'SYNCHRONIZING') fail('state', `image ${imageId} is already SYNCHRONIZING`);
  if (img.state === 'SYNCHRONIZED' && !img.fractured) fail('state', `image ${imageId} is already SYNCHRONIZED`);
  ctx.resume(img);
}

const ATTRIBUTE_KEYS: ReadonlyArray<keyof MirrorAttributes> = ['name', 'activationPolicy', 'minImagesRequired', 'maxMissingImages', 'writePolicy', 'writeBacklogSize', 'syncPriority', 'syncRate', 'allowSecondaryReads', 'protectResync', 'resyncChecksums', 'syncController'];

function validateAttributes(d: MirrorDbRecord): void {
  const int = (x: unknown, min: number) => typeof x === 'number' && Number.isSafeInteger(x) && x >= min;
  if (typeof d.name !== 'string' || !d.name) fail('invalid', 'name must be a non-empty string');
  if (d.activationPolicy !== 'automatic' && d.activationPolicy !== 'manual') fail('invalid', 'activationPolicy must be automatic or manual');
  if (!int(d.minImagesRequired, -1)) fail('invalid', 'minImagesRequired must be an integer >= -1');
  if (d.minImagesRequired > d.images.length) fail('invalid', `minImagesRequired ${d.minImagesRequired} exceeds the ${d.images.length} images of the mirror`);
  if (!int(d.maxMissingImages, -1)) fail('invalid', 'maxMissingImages must be an integer >= -1');
  if (!['synchronous', 'asynchronous', 'near-synchronous'].includes(d.writePolicy)) fail('invalid', 'writePolicy');
  if (!int(d.writeBacklogSize, 0)) fail('invalid', 'writeBacklogSize must be an integer >= 0');
  if (!['low', 'medium', 'high'].includes(d.syncPriority)) fail('invalid', 'syncPriority must be low, medium or high');
  if (!int(d.syncRate, 1)) fail('invalid', 'syncRate must be a positive integer (bytes per second)');
  if (typeof d.allowSecondaryReads !== 'boolean') fail('invalid', 'allowSecondaryReads must be a boolean');
  if (typeof d.protectResync !== 'boolean') fail('invalid', 'protectResync must be a boolean');
  if (d.resyncChecksums !== undefined && !RESYNC_CHECKSUMS.includes(d.resyncChecksums)) fail('invalid', 'resyncChecksums must be auto, always or never');
  if (d.syncController !== undefined && !SYNC_CONTROLLERS.includes(d.syncController)) fail('invalid', 'syncController must be fixed or adaptive');
}

function changeAttributes(ctx: Ctx, op: Extract<MirrorOp, { op: 'change-attributes' }>): void {
  const d = ctx.d;
  const changed: string[] = [];
  for (const [k, v] of Object.entries(op.attributes ?? {})) {
    if (!(ATTRIBUTE_KEYS as readonly string[]).includes(k)) fail('invalid', `attribute ${JSON.stringify(k)} cannot be changed`);
    if ((d as unknown as Record<string, unknown>)[k] !== v) {
      (d as unknown as Record<string, unknown>)[k] = v;
      changed.push(k);
    }
  }
  validateAttributes(d);
  if (op.image) {
    const img = ctx.find(op.image.imageId);
    if (op.image.recoveryPolicy !== undefined) {
      if (op.image.recoveryPolicy !== 'auto' && op.image.recoveryPolicy !== 'manual') fail('invalid', 'recoveryPolicy must be auto or manual');
      if (img.recoveryPolicy !== op.image.recoveryPolicy) changed.push(`${img.imageId}.recoveryPolicy`);
      img.recoveryPolicy = op.image.recoveryPolicy;
    }
    if (op.image.syncRate !== undefined) {
      if (op.image.syncRate !== null && (!Number.isSafeInteger(op.image.syncRate) || op.image.syncRate < 1)) fail('invalid', 'image syncRate must be a positive integer or null');
      if (img.syncRate !== op.image.syncRate) changed.push(`${img.imageId}.syncRate`);
      img.syncRate = op.image.syncRate;
    }
    if (op.image.resyncChecksums !== undefined) {
      if (op.image.resyncChecksums !== null && !RESYNC_CHECKSUMS.includes(op.image.resyncChecksums)) fail('invalid', 'image resyncChecksums must be auto, always, never or null');
      if ((img.resyncChecksums ?? null) !== op.image.resyncChecksums) changed.push(`${img.imageId}.resyncChecksums`);
      img.resyncChecksums = op.image.resyncChecksums;
    }
  }
  ctx.ev.push({ type: 'attributes-changed', mirrorId: d.mirrorId, changed });
}
