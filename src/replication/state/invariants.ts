import { parseMirrorDb, requirements, type MirrorDbRecord } from './db.js';

/**
 * Invariants of a mirror database record, asserted by the driver after every `applyOp` result it
 * takes and after every record it loads (metadata store, a record pushed by a member); the
 * random-sequence test (test/replication/invariants.test.ts) drives them too. A violation is a
 * bug: the record must not be saved or acted on.
 */
export class MirrorRecordInvariantError extends Error {
  constructor(
    readonly mirrorId: string,
    readonly violation: string,
  ) {
    super(`mirror record ${mirrorId} breaks an invariant: ${violation}`);
    this.name = 'MirrorRecordInvariantError';
  }
}

/** The violated invariant, or null: the checks of one record on its own. */
export function mirrorRecordViolation(d: MirrorDbRecord): string | null {
  const primaries = d.images.filter((i) => i.role === 'primary');
  if (primaries.length !== 1) return `${primaries.length} primary images (exactly one)`;
  const p = primaries[0]!;
  if (p.epoch !== d.epoch) return `the primary ${p.imageId} has epoch ${p.epoch}, the mirror ${d.epoch}`;
  for (const i of d.images) if (i !== p && i.epoch >= p.epoch) return `image ${i.imageId} has epoch ${i.epoch}, not below the primary's ${p.epoch}`;
  // ATTENTION exactly when the minimum-images rule says so (INACTIVE is the administrator's)
  if (d.state !== 'INACTIVE' && (d.state === 'ATTENTION') !== !requirements(d).met) return `state ${d.state} while the minimum conditions are ${requirements(d).met ? '' : 'not '}met`;
  const arrays = new Set<string>();
  for (const i of d.images) {
    if (i.role === 'primary' && i.state !== null) return `the primary ${i.imageId} has a secondary state ${i.state}`;
    if (i.role === 'secondary' && i.state === null) return `secondary ${i.imageId} has no state`;
    if (i.state === 'SYNCHRONIZING' && (i.reachability !== 'REACHABLE' || i.fractured)) return `secondary ${i.imageId} is SYNCHRONIZING while ${i.fractured ? 'fractured' : 'unreachable'}`;
    if (i.role === 'secondary' && i.size < p.size) return `secondary ${i.imageId} (${i.size} bytes) is smaller than the primary (${p.size} bytes)`;
    if (i.fractured !== (i.fractureReason !== null)) return `image ${i.imageId}: fractured ${i.fractured} with reason ${i.fractureReason}`;
    if (arrays.has(i.array)) return `two images on array ${i.array}`;
    arrays.add(i.array);
  }
  return null;
}

/** Throws MirrorRecordInvariantError when `d` breaks an invariant (SANBOX_PARANOID=1: also the JSON round trip). */
export function assertMirrorRecordInvariants(d: MirrorDbRecord): void {
  const v = mirrorRecordViolation(d);
  if (v !== null) throw new MirrorRecordInvariantError(d.mirrorId, v);
  if (process.env.SANBOX_PARANOID === '1' && !roundTrips(d)) throw new MirrorRecordInvariantError(d.mirrorId, 'the record does not survive a JSON round trip through parseMirrorDb');
}

/** The checks of a change: `next` is what applyOp made of `prev`. */
export function assertMirrorChangeInvariants(prev: MirrorDbRecord, next: MirrorDbRecord): void {
  assertMirrorRecordInvariants(next);
  if (next.epoch < prev.epoch) throw new MirrorRecordInvariantError(next.mirrorId, `epoch went down from ${prev.epoch} to ${next.epoch}`);
  if (next.generation !== prev.generation + 1) throw new MirrorRecordInvariantError(next.mirrorId, `generation ${prev.generation} -> ${next.generation} (one step per change)`);
}

function roundTrips(d: MirrorDbRecord): boolean {
  let back: MirrorDbRecord;
  try {
    back = parseMirrorDb(JSON.parse(JSON.stringify(d)));
  } catch {
    return false;
  }
  return JSON.stringify(back) === JSON.stringify(d);
}
