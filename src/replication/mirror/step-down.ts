/**
 * The first step of a plain promote: the old primary steps down over the remote link before this
 * array takes host writes as primary (never two primaries; --force is the operator's call). Apart
 * from ./admin.ts because it is one protocol exchange with its own refusals and time-outs; admin
 * runs it inside the mirror's `exclusive`.
 */
import { RemoteLinkError } from '../../link/protocol/index.js';
import { primaryOf, promotable, requireNoHeartbeat, type ImageState, type MirrorDbRecord } from '../state/index.js';
import type { Entry } from './entry.js';
import type { PeerLinks } from './peer-link.js';
import { applyChecked, loadRecord, type MirrorRecords } from './records.js';
import { MirrorError } from './types.js';

/** Each request of a plain promote to the old primary (its record, the new record) times out after this. */
const stepDownTimeoutMs = 15_000;
/** A plain promote gives up connecting to the old primary after this (TCP connect, then the handshake). */
const stepDownConnectMs = 5_000;

/**
 * A plain promote's first step: asks the old primary to step down, and only once it has (it
 * took the record that makes this image the primary: it waited for its host writes in flight,
 * kept what this image may lack, and refuses host writes from then on) may this array promote.
 * The old primary's own record comes first: when it knows this image is behind (fractured,
 * resynchronizing), the promote is refused and nothing changes. An old primary that cannot be
 * reached is refused with `unreachable`, naming --force and what it risks. On success the
 * record the old primary took is this array's record too (the local promote applies the same
 * change to it, so both sides hold the same record).
 */
export async function stepDown(records: MirrorRecords, links: Pick<PeerLinks, 'withControlLink'>, e: Entry): Promise<void> {
  if (e.primary) throw new MirrorError('state', `image ${e.localImageId} is already the primary of mirror ${e.db.name}`);
  const old = primaryOf(e.db);
  const refusedUnreachable = (why: string): MirrorError =>
    new MirrorError(
      'unreachable',
      `mirror ${e.db.name}: promotion of ${e.localImageId} refused: its primary ${old.imageId} on ${old.array} cannot be reached (${why}), so it cannot step down first, and it may still be taking host writes. ` +
        `--force promotes this image anyway and risks a split brain: both arrays primary, and the writes ${old.array} acknowledged since the link was lost are not on this image (they would be lost, or kept only by "sanbox mirror resolve ${e.db.name} --survivor ${old.array}"). ` +
        `Restore the link and promote again, or use --force only once ${old.array} is down for good.`,
    );
  const took: { record: MirrorDbRecord | null } = { record: null };
  try {
    await links.withControlLink(
      old.array,
      async (c) => {
        // What the old primary knows: a newer record comes back instead of being taken.
        const { result: cur } = await c.request('mirror-db', { mirrorId: e.id, record: e.db as unknown as Record<string, unknown> }, undefined, { timeoutMs: stepDownTimeoutMs });
        const base = !cur.applied && cur.record ? loadRecord(cur.record) : e.db;
        requireNoHeartbeat(base, 'promote'); // the primary's own record says it
        if (base !== e.db) {
          const p = primaryOf(base);
          // an earlier plain promote got this far, then failed here: the old primary stepped down already
          if (p.imageId === e.localImageId) {
            took.record = base;
            return;
          }
          if (p.imageId !== old.imageId) throw new MirrorError('state', `mirror ${e.db.name}: ${old.array} says ${p.imageId} on ${p.array} is the primary now (epoch ${base.epoch}); this array's record is older: promotion refused`);
        }
        // Behind the primary (fractured: its writes since only marked its fracture log): they would be lost.
        const mine = base.images.find((i) => i.imageId === e.localImageId);
        if (!mine) throw new MirrorError('state', `mirror ${e.db.name}: ${old.array} no longer lists ${e.localImageId} as an image: promotion refused`);
        if (mine.fractured || !promotable(mine.state as ImageState))
          throw new MirrorError(
            'inconsistent',
            `mirror ${e.db.name}: promotion of ${e.localImageId} refused: its primary ${old.array} may hold host writes this image lacks (the image is ${mine.state}${mine.fractured ? `, fractured (${mine.fractureReason})` : ''} in ${old.array}'s record). Synchronize it ("sanbox mirror sync ${e.db.name}" on ${old.array} if it is fractured) and promote once "sanbox mirror status ${e.db.name}" shows it in sync; --force promotes it as it is and loses those writes (a split brain).`,
          );
        const next = applyChecked(base, { op: 'promote', imageId: e.localImageId, force: false }).db!;
        const { result } = await c.request('mirror-db', { mirrorId: e.id, record: next as unknown as Record<string, unknown> }, undefined, { timeoutMs: stepDownTimeoutMs });
        if (!result.applied) throw new MirrorError('state', `mirror ${e.db.name}: ${old.array} did not step down (it holds a newer record, epoch ${String((result.record as { epoch?: unknown } | undefined)?.epoch ?? '?')}): promotion refused`);
        took.record = base;
      },
      { timeoutMs: stepDownConnectMs },
    );
  } catch (err) {
    // not reached, or it could not be asked (no link configured, a refused handshake): the same
    if (err instanceof MirrorError && (err.code === 'unreachable' || err.code === 'refused' || err.code === 'invalid')) throw refusedUnreachable(err.message);
    if (err instanceof RemoteLinkError) throw refusedUnreachable(`${err.code}: ${err.message}`);
    throw err;
  }
  // The old primary took the new record; the local promote applies the same change to the same
  // base (or finds it applied already: a retried promote).
  if (took.record && took.record !== e.db) await records.save(e, took.record);
  records.event('old-primary-stepped-down', { mirrorId: e.id, imageId: e.localImageId, oldPrimary: old.imageId, array: old.array });
}
