/**
 * Resync protection on a secondary array: before a resync rewrites this array's image of a mirror
 * (after a fracture, a bypass, an unclean stop, a failback), the image's last consistent point is
 * kept in a snapshot (kind `resync-protection`), dropped once the image is consistent again. A
 * resync mixes regions of different times until it ends; if the primary is lost meanwhile,
 * promote refuses the image and `--from-snapshot` rolls it back to that point.
 *
 * Ordering (the point of it): the snapshot is cut before any resync write lands.
 * - The primary announces a resync by pushing the record (image SYNCHRONIZING) and waits for the
 *   answer before its first copy; until then host writes only mark the fracture log (the peer
 *   phase `resync-starting`, ./peer-phase.ts, ./resync.ts).
 * - Here, the decision is taken when the record's frame arrives, synchronously
 *   (`onRecord`): the link dispatches frames in arrival order, so every write or zero request
 *   that arrives later waits for the cut (`barrier`), and the record is answered only after it.
 * - A resync write that finds a consistent image whose record never said SYNCHRONIZING (a lost
 *   push) starts the protection itself and waits for it (`beforeWrite`).
 * A member of a consistency group is protected with all the group's members here, in one
 * snapshot cut between two batches of the group's receiver, and released together once every
 * member is consistent and the group journals again.
 *
 * The state of each image is the table of ./protection-state.ts, persisted next to the record
 * (`protection.A|B` in the mirror's directory).
 */
import { MetadataStore } from '../../metadata/index.js';
import { SerialQueue } from '../../serial/index.js';
import type { GroupFallback, MemberGroup, MemberProtection, Range, SnapshotPort } from '../group/index.js';
import type { MirrorDbRecord } from '../state/index.js';
import type { Entry } from './entry.js';
import { initialProtectionState, protectionTransition, type ProtectionEvent, type ProtectionState, type ProtectionView } from './protection-state.js';
import { MirrorError } from './types.js';

const DOC_FORMAT = 'sanbox.resync-protection';

interface ProtectionDoc {
  format: typeof DOC_FORMAT;
  version: 1;
  state: ProtectionState;
  /** the protection snapshot (state protected), or the one a forced promote left */
  snapshot: string | null;
  /** the group whose members share the snapshot */
  group: string | null;
}

interface Slot {
  e: Entry;
  doc: ProtectionDoc;
  store: MetadataStore<ProtectionDoc>;
  /** the cut in progress: resync writes wait for it */
  barrier: Promise<void> | null;
  /** saves and snapshot operations of this image, in order */
  queue: SerialQueue;
}

export interface ProtectionHost {
  readonly array: string;
  readonly sync: boolean;
  readonly snapshots: SnapshotPort | undefined;
  entry(mirrorId: string): Entry | undefined;
  group(mirrorId: string): MemberGroup | undefined;
  publish(type: string, details: Record<string, unknown>): void;
}

const POINT_IN_TIME = new Set(['CONSISTENT', 'SYNCHRONIZED']);

function localImage(db: MirrorDbRecord, array: string) {
  return db.images.find((i) => i.array === array);
}

/** `resync-<name>-<time>`, at most 64 characters of the snapshot name alphabet. */
function snapshotName(base: string): string {
  return `resync-${base.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 40)}-${Date.now().toString(36)}`;
}

export class ResyncProtection implements MemberProtection {
  private readonly slots = new Map<string, Slot>();
  /** LUNs a promote --from-snapshot is rolling back (the snapshot manager's rollback guard lets them through). */
  readonly rollingBack = new Set<number>();

  constructor(private readonly host: ProtectionHost) {}

  // ---- life of an image ----

  /** Loads (or derives) the image's state; a protection whose snapshot is gone is lost. */
  async open(e: Entry): Promise<void> {
    const store = new MetadataStore<ProtectionDoc>(e.dir, { basename: 'protection', noSync: !this.host.sync });
    const loaded = await store.load();
    const mine = localImage(e.db, this.host.array);
    const doc: ProtectionDoc =
      loaded.data?.format === DOC_FORMAT ? loaded.data : { format: DOC_FORMAT, version: 1, state: mine ? initialProtectionState(mine) : 'unknown', snapshot: null, group: null };
    const s: Slot = { e, doc, store, barrier: null, queue: new SerialQueue() };
    this.slots.set(e.id, s);
    this.checkLost(s);
  }

  /** The mirror left this array: its protection snapshot goes too. */
  async forget(e: Entry): Promise<void> {
    const s = this.slots.get(e.id);
    this.slots.delete(e.id);
    if (s?.doc.state === 'protected' && s.doc.snapshot) await this.dropSnapshot(s, s.doc.snapshot);
  }

  /** An image may not be rolled back while it is a mirror image, except by a promote --from-snapshot. */
  rollbackAllowed(lunId: number): boolean {
    return this.rollingBack.has(lunId);
  }

  // ---- the ordering hooks (./secondary.ts) ----

  /**
   * A record frame arrived (synchronously, before it is queued): if it starts a resync of this
   * image, the protection is cut now and everything after it waits. Returns what to wait for.
   */
  onRecord(e: Entry, rec: MirrorDbRecord): Promise<void> | null {
    const mine = localImage(rec, this.host.array);
    if (mine?.role === 'secondary' && mine.state === 'SYNCHRONIZING') return this.resync(e, rec);
    return this.slots.get(e.id)?.barrier ?? null;
  }

  /** A write or zero for the image: what it must wait for (a cut in progress), if anything. */
  beforeWrite(e: Entry, resync: boolean): Promise<void> | null {
    const s = this.slots.get(e.id);
    if (!s) return null;
    if (resync && s.doc.state === 'consistent') return this.resync(e, e.db);
    return s.barrier;
  }

  /** After a record was adopted here: demoted, promoted elsewhere, resync, or in sync again. */
  afterAdopt(e: Entry, wasPrimary: boolean): void {
    const s = this.slots.get(e.id);
    const mine = localImage(e.db, this.host.array);
    if (!s || !mine) return;
    if (mine.role === 'primary') {
      if (s.doc.state !== 'primary') this.fire([s], 'promoted', 'became primary');
      return;
    }
    if (wasPrimary || s.doc.state === 'primary') return this.fire([s], 'demoted', 'this image was the primary here: its data is its own last point in time');
    if (mine.state === 'SYNCHRONIZING') void this.resync(e, e.db);
    else if (mine.state && POINT_IN_TIME.has(mine.state)) this.checkInSync(e.id);
  }

  /** The image was promoted here (./admin.ts). A rollback's snapshot is dropped; a forced promote keeps it for the operator. */
  promoted(e: Entry, fromSnapshot: boolean): void {
    const s = this.slots.get(e.id);
    if (!s) return;
    const snap = s.doc.snapshot;
    this.fire([s], 'promoted', fromSnapshot ? 'promoted from its fallback snapshot' : 'promoted');
    if (fromSnapshot && snap) void s.queue.run(() => this.dropSnapshot(s, snap)).then(() => this.host.publish('snapshot.resync-protection-released', { mirrorIds: [e.id], mirrors: [e.db.name], snapshot: snap, why: 'the image was rolled back to it and promoted' }));
  }

  groupChanged(mirrorIds: string[]): void {
    if (mirrorIds[0] !== undefined) this.checkInSync(mirrorIds[0]);
  }

  // ---- transitions ----

  private fire(slots: Slot[], event: ProtectionEvent, why: string): void {
    const released = new Map<string, Slot[]>();
    for (const s of slots) {
      const rule = protectionTransition(s.doc.state, event);
      if (rule.action === 'release' && s.doc.snapshot) released.set(s.doc.snapshot, [...(released.get(s.doc.snapshot) ?? []), s]);
      s.doc = { ...s.doc, state: rule.to, ...(rule.action === 'release' ? { snapshot: null, group: null } : {}) };
      void this.save(s);
    }
    for (const [snap, list] of released) {
      for (const s of list) void s.queue.run(() => this.dropSnapshot(s, snap));
      this.host.publish('snapshot.resync-protection-released', { mirrorIds: list.map((s) => s.e.id), mirrors: list.map((s) => s.e.db.name), snapshot: snap, why });
    }
  }

  private save(s: Slot): Promise<void> {
    const doc = s.doc;
    return s.queue.run(async () => void (await s.store.save(doc))).catch((err: Error) => this.host.publish('snapshot.resync-unprotected', { mirrorId: s.e.id, mirror: s.e.db.name, reason: `the protection state could not be saved: ${err.message}` }));
  }

  private async dropSnapshot(s: Slot, name: string): Promise<void> {
    const snaps = this.host.snapshots;
    if (!snaps || !snaps.list(s.e.lun.id).some((v) => v.name === name)) return;
    await snaps.delete(s.e.lun.id, name, { force: true }).catch((err: Error) => this.host.publish('snapshot.resync-unprotected', { mirrorId: s.e.id, mirror: s.e.db.name, reason: `the protection snapshot ${name} could not be deleted: ${err.message}` }));
  }

  /** A resync begins on `e`: protect it (with its group's members), or note that it runs bare. */
  private resync(e: Entry, rec: MirrorDbRecord): Promise<void> | null {
    const s = this.slots.get(e.id);
    if (!s || s.doc.state === 'primary') return null;
    if (s.doc.state === 'protected') return s.barrier;
    const g = this.host.group(e.id);
    const enabled = g ? g.protectResync : rec.protectResync !== false;
    const unprotected = (reason: string): null => {
      if (s.doc.state === 'consistent') this.host.publish('snapshot.resync-unprotected', { mirrorId: e.id, mirror: rec.name, ...(g ? { group: g.name } : {}), reason });
      this.fire([s], 'resync-bare', reason);
      return null;
    };
    if (!enabled) return unprotected(`protectResync is off for ${g ? `group ${g.name}` : `mirror ${rec.name}`}`);
    if (!this.host.snapshots) return unprotected(`array ${this.host.array} keeps no snapshots`);
    if (s.doc.state !== 'consistent') {
      this.fire([s], 'resync', 'no consistent point to keep');
      return null;
    }
    let slots = [s];
    if (g) {
      const members = g.members.map((id) => this.slots.get(id));
      const notHere = g.members.filter((_, i) => !members[i] || members[i]!.e.primary);
      if (notHere.length) return unprotected(`group ${g.name}: member ${notHere.join(', ')} has no secondary image here`);
      const other = members.find((m) => m!.doc.state !== 'consistent');
      if (other) return unprotected(`group ${g.name}: member ${other.e.db.name} is ${other.doc.state}, so the group has no consistent point to keep`);
      slots = members as Slot[];
    }
    const name = snapshotName(g?.name ?? rec.name);
    for (const x of slots) {
      protectionTransition(x.doc.state, 'resync');
      x.doc = { ...x.doc, state: 'protected', snapshot: name, group: g?.groupId ?? null };
    }
    const cut = this.take(slots, name, g);
    for (const x of slots) {
      x.barrier = cut;
      void cut.then(() => {
        if (x.barrier === cut) x.barrier = null;
      });
    }
    return cut;
  }

  /** Persists the states, then cuts the snapshot of every slot's LUN at one boundary. Never rejects. */
  private async take(slots: Slot[], name: string, g: MemberGroup | undefined): Promise<void> {
    const snaps = this.host.snapshots!;
    const mirrors = slots.map((s) => s.e.db.name);
    try {
      for (const s of slots) await s.queue.run(() => s.store.save(s.doc));
      const luns = slots.map((s) => s.e.lun.id);
      const note = g ? `resync protection of group ${g.name} (${mirrors.join(', ')})` : `resync protection of mirror ${mirrors[0]} (${slots[0]!.e.id})`;
      const opts = { kind: 'resync-protection' as const, note, ...(g ? { group: g.name } : {}) };
      let made;
      let groupSeq: number | null = null;
      if (g?.betweenBatches) {
        const r = await g.betweenBatches((through) => snaps.create(luns, name, { ...opts, atBoundary: () => through }));
        made = r.result;
        groupSeq = r.appliedThrough;
      } else made = await snaps.create(luns, name, opts);
      this.host.publish('snapshot.resync-protected', { mirrorIds: slots.map((s) => s.e.id), mirrors, ...(g ? { group: g.name } : {}), snapshot: name, luns, pauseMs: made.pauseMs, ...(groupSeq !== null ? { groupSeq } : {}) });
    } catch (err) {
      const reason = `the protection snapshot could not be taken: ${(err as Error).message}`;
      this.host.publish('snapshot.resync-unprotected', { mirrorIds: slots.map((s) => s.e.id), mirrors, ...(g ? { group: g.name } : {}), reason });
      this.fire(slots.filter((s) => s.doc.state === 'protected' && s.doc.snapshot === name), 'lost', reason);
    }
  }

  /** The image (with its group's members) is consistent again: release. */
  private checkInSync(mirrorId: string): void {
    const g = this.host.group(mirrorId);
    const ids = g ? g.members : [mirrorId];
    if (g && !g.coherent) return;
    const slots = ids.map((id) => this.slots.get(id));
    if (slots.some((s) => !s || s.doc.state === 'primary')) return;
    const inSync = (s: Slot) => {
      const st = localImage(s.e.db, this.host.array)?.state;
      return st !== undefined && st !== null && POINT_IN_TIME.has(st);
    };
    if (!(slots as Slot[]).every(inSync)) return;
    const changing = (slots as Slot[]).filter((s) => s.doc.state !== 'consistent' && s.barrier === null);
    if (changing.length) this.fire(changing, 'in-sync', g ? `every member of group ${g.name} is consistent and the group journals again` : 'the resync is done: the image is consistent');
  }

  /** A protection whose snapshot was invalidated (a full store) or deleted is lost. */
  private checkLost(s: Slot): void {
    const snaps = this.host.snapshots;
    if (s.doc.state !== 'protected' || !s.doc.snapshot || s.barrier) return;
    const v = snaps?.list(s.e.lun.id).find((x) => x.name === s.doc.snapshot);
    if (v && v.state === 'valid') return;
    const reason = v ? `snapshot ${v.name} was invalidated (${v.invalidReason ?? 'the snapshot store filled up'})` : `snapshot ${s.doc.snapshot} is gone`;
    this.host.publish('snapshot.resync-protection-lost', { mirrorId: s.e.id, mirror: s.e.db.name, snapshot: s.doc.snapshot, reason });
    this.fire([s], 'lost', reason);
  }

  // ---- what promote and the views use ----

  private fallbackOf(ids: string[]): (GroupFallback & { lun: number; export: string }) | null {
    const slots = ids.map((id) => this.slots.get(id));
    const first = slots[0];
    if (!first || slots.some((s) => !s)) return null;
    for (const s of slots as Slot[]) this.checkLost(s);
    const name = first.doc.snapshot;
    if (!name || (first.doc.state !== 'protected' && first.doc.state !== 'unprotected')) return null;
    const views = (slots as Slot[]).map((s) => this.host.snapshots?.list(s.e.lun.id).find((v) => v.name === name));
    const v = views[0];
    if (!v) return null;
    const valid = views.every((x) => x?.state === 'valid') && (slots as Slot[]).every((s) => s.doc.state === 'protected' && s.doc.snapshot === name);
    return { snapshot: name, created: v.created, ageSeconds: Math.max(0, Date.now() - Date.parse(v.created)) / 1000, groupSeq: v.groupSeq ?? null, members: (slots as Slot[]).map((s) => s.e.db.name), valid, lun: v.lun, export: v.export };
  }

  /** The fallback of a group's members (one snapshot on each), or null. */
  fallback(mirrorIds: string[]): GroupFallback | null {
    const fb = this.fallbackOf(mirrorIds);
    if (!fb) return null;
    const { lun: _l, export: _x, ...rest } = fb;
    return rest;
  }

  /** Waits for a protection snapshot being cut for these mirrors: a promote must see it (take never rejects). */
  async settled(mirrorIds: string[]): Promise<void> {
    await Promise.all(mirrorIds.map((id) => this.slots.get(id)?.barrier ?? null));
  }

  /** The members whose images here a resync began to rewrite (protected or unprotected since). */
  resyncBegun(mirrorIds: string[]): string[] {
    return mirrorIds.filter((id) => {
      const st = this.slots.get(id)?.doc.state;
      return st === 'protected' || st === 'unprotected';
    });
  }

  view(e: Entry): ProtectionView {
    const s = this.slots.get(e.id);
    const g = this.host.group(e.id);
    const ids = s?.doc.group && g ? g.members : [e.id];
    return { enabled: g ? g.protectResync : e.db.protectResync !== false, state: s?.doc.state ?? 'unknown', fallback: s ? this.fallbackOf(ids) : null };
  }

  /**
   * promote --from-snapshot: rolls every image back to the fallback (one snapshot for a group's
   * members), host I/O refused meanwhile. Returns, per mirror, the ranges the rollback rewrote:
   * the new primary's fracture logs must hold them (the other images have newer data there).
   */
  async rollBack(mirrorIds: string[]): Promise<Map<string, Range[]>> {
    const snaps = this.host.snapshots;
    const fb = this.fallbackOf(mirrorIds);
    if (!snaps || !fb) throw new MirrorError('not-found', `no resync-protection snapshot of ${mirrorIds.map((id) => this.slots.get(id)?.e.db.name ?? id).join(', ')} on ${this.host.array}: nothing to roll back to`);
    if (!fb.valid) throw new MirrorError('state', `the fallback snapshot ${fb.snapshot} is no longer valid (invalidated by a full snapshot store, or deleted): it cannot be rolled back to`);
    const out = new Map<string, Range[]>();
    for (const id of mirrorIds) {
      const e = this.slots.get(id)!.e;
      const lun = e.lun.id;
      const set = await snaps.setOf(lun);
      const rec = snaps.list(lun).find((v) => v.name === fb.snapshot)!;
      const rs = set?.regionSize ?? 0;
      out.set(id, (set?.savedRegionsOf(rec.seq) ?? []).map((r) => ({ offset: r.region * rs, length: Math.min(rs, e.lun.size - r.region * rs) })));
      this.rollingBack.add(lun);
      try {
        await snaps.rollback(lun, fb.snapshot);
      } finally {
        this.rollingBack.delete(lun);
      }
    }
    return out;
  }

  /** What promote says of an image that is not a point in time, naming its fallback. */
  refusal(e: Entry, state: string): string {
    const fb = this.fallbackOf([e.id]);
    const head = `image ${e.localImageId} of mirror ${e.db.name} is ${state}: a resynchronization was under way, the image mixes regions of different times; promotion refused.`;
    const age = (s: number) => (s < 10 ? `${s.toFixed(1)} s` : s < 120 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);
    if (fb?.valid) return `${head} Its last consistent point is snapshot ${fb.snapshot} (export ${fb.export}, taken ${age(fb.ageSeconds)} ago, when the resync began): --from-snapshot rolls the image back to it and promotes; --force promotes the image as it is.`;
    if (fb) return `${head} Its fallback snapshot ${fb.snapshot} is no longer valid (invalidated by a full snapshot store, or deleted): --force promotes the image as it is.`;
    return `${head} No snapshot holds its last consistent point (protectResync off, this array keeps no snapshots, or it never had one): --force promotes the image as it is.`;
  }
}
