import { imageOf, factsOf, type Entry } from './entry.js';
import { takesHostWritesNow } from './peer-phase.js';
import type { SecondaryPeer } from './primary.js';
import type { MirrorRecords } from './records.js';

/**
 * The armed freeze of a synchronous consistency group (seed 001's "freeze"; docs/group.md,
 * "Freeze"). In synchronous mode every member replicates on its own path (./data-path.ts): left
 * alone, member A whose remote write failed is fractured and goes on acknowledging host writes
 * while member B keeps replicating, so a write the application makes to B after A's ack reaches
 * B's secondary while its predecessor on A never does. Armed, the group does what the source's
 * freeze does: the moment any member that takes host writes on a secondary array stops doing so
 * (a remote write, zero, trim or flush failed, or its link dropped), every member stops sending
 * host writes to that array, in the same tick, so before the failing write is acknowledged.
 *
 * Nothing a host could make dependent on the failed write reaches the array after that: a
 * dependent write is issued after its predecessor's ack. Writes already on the wire to the other
 * members may land (they were issued before the freeze point); one that fails is marked in its
 * fracture log like any failed write. Each frozen member:
 * - is `failed` at once: from this tick on its host writes only mark its fracture log (persisted
 *   before their ack), as for a member whose own write failed;
 * - has its record follow (`image-unreachable` with reason `freeze`: UNREACHABLE, fractured
 *   `freeze`, a `mirror.image-fractured` event), and its resync on that array stopped;
 * - has its connection dropped, so it comes back through the reconnect path (record push,
 *   bitmap exchange, `image-reachable`): a `freeze` fracture resumes as a `link` one does, by the
 *   image's recovery policy (auto: resync from the fracture log; manual: `mirror sync`).
 * The group publishes `group.frozen` (the array, the member that failed, what failed, the members
 * frozen with it).
 */
export interface FreezeGroups {
  /** the group's member mirrors when the freeze applies (synchronous, armed, not in bypass), else null */
  freezeMembers(mirrorId: string): string[] | null;
  frozen(mirrorId: string, details: { array: string; member: string; op: string; error: string; frozen: string[] }): void;
  groupOf(mirrorId: string): object | undefined;
}

export interface FreezeHost {
  readonly groups: FreezeGroups;
  /** The record learns the image cannot be reached (if it still says REACHABLE), fractured for `reason`. */
  noteUnreachable(e: Entry, p: SecondaryPeer, why: string, reason: 'link' | 'freeze'): void;
}

/** What stopped: a host write, zero or trim (`write`, `zero`, `trim`), a host flush, or the link itself. */
export type FreezeCause = 'write' | 'zero' | 'trim' | 'flush' | 'link';

export class GroupFreeze {
  constructor(
    private readonly records: MirrorRecords,
    private readonly host: FreezeHost,
  ) {}

  /**
   * `p` (a secondary of `e`) stops replicating now. Call it in the tick the failure is known and
   * before `p.failed` is set: it acts only for a secondary that was taking host writes (not
   * failed already, its image neither fractured nor unsynchronized), so a member's further
   * failures and the failures of frozen members do not freeze again.
   */
  stopped(e: Entry, p: SecondaryPeer, cause: FreezeCause, err: unknown): void {
    const ps = e.primary;
    if (!ps || ps.closed || ps.peers.get(p.imageId) !== p || p.failed) return;
    if (!takesHostWritesNow(imageOf(e, p.imageId), { ...factsOf(p), link: 'connected' })) return;
    const groups = this.host.groups;
    if (!groups.groupOf(e.id)) return;
    const members = groups.freezeMembers(e.id);
    if (!members) return;
    const error = (err as Error)?.message ?? String(err);
    const frozen: string[] = [];
    for (const id of members) {
      const m = id === e.id ? undefined : this.records.entries.get(id);
      const mps = m?.primary;
      if (!m || !mps || mps.closed) continue;
      for (const q of mps.peers.values()) {
        if (q.array !== p.array || q.failed) continue;
        q.failed = true; // this tick: no host write of this member is sent to the array any more
        if (q.resync) q.resync.stop = true;
        frozen.push(m.db.name);
        this.host.noteUnreachable(m, q, `freeze: ${e.db.name} stopped replicating to ${p.array} (${cause}: ${error})`, 'freeze');
        q.client?.dropConnection(); // back through the reconnect path: record, bitmap, resync
      }
    }
    groups.frozen(e.id, { array: p.array, member: e.db.name, op: cause, error, frozen });
  }
}
