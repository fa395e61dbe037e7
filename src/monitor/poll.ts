/**
 * One poll of a resource ([0050]): ask the instance for the mirror or group by its name and
 * classify what it says. A group is looked up first, then a mirror; a name that is neither is a
 * deleted pair (SMPL). Anything else the array answers (unreachable, an API error) is the
 * mirroring software reporting an error: return code 100.
 */
import { ClientError, type ApiClient } from '../control/index.js';
import type { MirrorView } from '../replication/mirror/types.js';
import { classifyGroup, classifyMirror, deletedReading } from './pair-state.js';
import type { PairReading, ResourceEntry } from './types.js';

export type PollResult = { ok: true; reading: PairReading; members: MirrorView[]; mirror?: MirrorView } | { ok: false; error: string };

const notFound = (e: unknown): boolean => e instanceof ClientError && e.code === 'not-found';

export async function pollResource(client: ApiClient, entry: Pick<ResourceEntry, 'deviceGroup' | 'kind'>): Promise<PollResult> {
  try {
    if (entry.kind !== 'mirror') {
      const group = await client.getGroup(entry.deviceGroup).catch((e: unknown) => (notFound(e) ? null : Promise.reject(e)));
      if (group) {
        const members = await Promise.all(group.members.map((m) => client.getMirror(m.mirrorId)));
        return { ok: true, reading: classifyGroup(group, members), members };
      }
      if (entry.kind === 'group') return { ok: true, reading: deletedReading('group'), members: [] };
    }
    const mirror = await client.getMirror(entry.deviceGroup).catch((e: unknown) => (notFound(e) ? null : Promise.reject(e)));
    if (!mirror) return { ok: true, reading: deletedReading(entry.kind ?? 'mirror'), members: [] };
    return { ok: true, reading: classifyMirror(mirror), members: [], mirror };
  } catch (e) {
    return { ok: false, error: e instanceof ClientError ? `${e.code}: ${e.message}` : (e as Error).message };
  }
}

/**
 * Asks the array to resynchronize a suspended pair, the way an operator would: a fractured
 * secondary gets `mirror synchronize`, a paused group `resume`, a group the operator put in
 * bypass `bypass off`, the fractured members of a group in overflow bypass `synchronize`.
 * Operator suspensions are touched only when `withOperator` (resyncAdminFractures). Answers what
 * it asked for; throws a ClientError when the array refuses.
 */
export async function resynchronize(client: ApiClient, entry: Pick<ResourceEntry, 'deviceGroup' | 'kind'>, withOperator: boolean): Promise<string[]> {
  const done: string[] = [];
  if (entry.kind === 'group') {
    const g = await client.getGroup(entry.deviceGroup);
    if (g.record.paused) {
      if (!withOperator) return done;
      await client.resumeGroup(entry.deviceGroup);
      done.push('group resume');
    }
    if (g.record.bypass.on && g.record.bypass.reason === 'operator' && withOperator) {
      await client.bypassGroup(entry.deviceGroup, false);
      done.push('group bypass off');
    }
    for (const m of g.members) done.push(...(await syncMirror(client, m.mirrorId, withOperator)));
    return done;
  }
  return syncMirror(client, entry.deviceGroup, withOperator);
}

async function syncMirror(client: ApiClient, ref: string, withOperator: boolean): Promise<string[]> {
  const view = await client.getMirror(ref);
  const done: string[] = [];
  if (view.local.role !== 'primary') return done;
  if (view.record.state === 'INACTIVE' && withOperator) {
    await client.activateMirror(ref);
    done.push(`mirror activate ${view.record.name}`);
  }
  for (const img of view.images) {
    if (img.role !== 'secondary' || !img.fractured) continue;
    if (img.fractureReason === 'promote' || (img.fractureReason === 'admin' && !withOperator)) continue;
    try {
      await client.synchronizeMirror(ref, { image: img.imageId });
      done.push(`mirror synchronize ${view.record.name} --image ${img.imageId}`);
    } catch (e) {
      // An image with recovery 'auto' may have been resynchronized by the array meanwhile.
      if (!(e instanceof ClientError) || e.code !== 'state' || (await client.getMirror(ref)).images.find((i) => i.imageId === img.imageId)?.fractured !== false) throw e;
      done.push(`${view.record.name} ${img.imageId}: the array resynchronizes it already`);
    }
  }
  return done;
}
