/**
 * The snapshots of one array: their records (a two-copy metadata document, `snapshots.A/B` in
 * the array directory), one SnapshotSet per LUN with its store under `snap/`, and the verbs:
 * create (one LUN, or several at one write boundary), delete, rollback, store settings. Every
 * change is persisted before it takes effect and is an event.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { isPlainName } from '../array/index.js';
import type { BlockDevice } from '../block/index.js';
import { MetadataStore, MetadataError } from '../metadata/index.js';
import { SerialQueue } from '../serial/index.js';
import { SnapshotLayer } from './layer.js';
import { writeBack } from './rollback.js';
import { SnapshotSet } from './set.js';
import { SlotStore } from './slots.js';
import { SnapshotDevice } from './view.js';
import {
  DEFAULT_SNAPSHOT_REGION_SIZE,
  DEFAULT_STORE_FRACTION,
  MAX_SNAPSHOTS_PER_LUN,
  MIN_DEFAULT_STORE_BYTES,
  OVERFLOW_POLICIES,
  SNAPSHOT_FORMAT,
  SnapshotError,
  snapshotExportName,
  type LunSnapshots,
  type OverflowPolicy,
  type SnapshotMetadata,
  type SnapshotRecord,
  type SnapshotView,
  type StoreSettings,
  type SnapshotLun,
  type SnapshotHost,
  type SnapshotDefaults,
  type CreateSnapshotOptions,
  type CreatedSnapshots,
} from './types.js';

/** Where a LUN's slot store lives (`.store` and `.slots` are added). */
const storeBase = (dir: string, lunId: number): string => join(dir, 'snap', `lun${lunId}`);

export class SnapshotManager {
  private meta: SnapshotMetadata = { format: SNAPSHOT_FORMAT, nextSeq: 1, luns: {} };
  private readonly sets = new Map<number, SnapshotSet>();
  private readonly opening = new Map<number, Promise<SnapshotSet | undefined>>();
  /** Rollbacks under way, for status: bytes written back of how many. */
  private readonly rollbacks = new Map<number, { snapshot: string; doneBytes: number; totalBytes: number }>();
  private readonly mutations = new SerialQueue();
  private readonly store: MetadataStore<SnapshotMetadata>;
  /** Why a LUN may not be snapshotted, or a snapshot not deleted, now (clones use it), or undefined. */
  private snapshotGuard: ((action: 'create' | 'delete', lunId: number, snapshot: string) => string | undefined) | undefined;

  constructor(
    private readonly dir: string,
    private readonly host: SnapshotHost,
    private readonly defaults: SnapshotDefaults = {},
    noSync = false,
  ) {
    this.store = new MetadataStore<SnapshotMetadata>(dir, { basename: 'snapshots', noSync });
  }

  /** Loads the records and opens the store of every LUN that has snapshots; finishes an interrupted rollback. */
  async open(): Promise<void> {
    let loaded;
    try {
      loaded = await this.store.load();
    } catch (e) {
      if (e instanceof MetadataError) throw new SnapshotError('io', `snapshot metadata: ${e.message}`);
      throw e;
    }
    for (const p of loaded.problems) this.host.event('snapshot.metadata-repaired', { problem: p });
    if (loaded.data) {
      if (loaded.data.format !== SNAPSHOT_FORMAT) throw new SnapshotError('io', `snapshot metadata format ${JSON.stringify(loaded.data.format)} is not ${SNAPSHOT_FORMAT}`);
      this.meta = loaded.data;
    }
    for (const [id, ls] of Object.entries(this.meta.luns)) {
      if (ls.snapshots.length === 0) continue;
      const set = await this.setOf(Number(id));
      if (!set) {
        this.host.event('snapshot.offline', { lun: Number(id), problem: 'the LUN is not online; its snapshots are kept but not served' });
        continue;
      }
      // A rollback that fails again leaves the LUN offline (event snapshot.rollback-failed) for
      // the operator to retry; it must not keep the array from starting.
      if (ls.rollingBack !== undefined) await this.resumeRollback(set, ls.rollingBack).catch((e: Error) => this.host.event('snapshot.offline', { lun: Number(id), problem: `an interrupted rollback could not be finished (the LUN stays offline; retry it): ${e.message}` }));
    }
  }

  private settingsFor(lun: SnapshotLun): StoreSettings {
    const have = this.meta.luns[String(lun.id)]?.settings;
    if (have) return have;
    return {
      storeBytes: this.defaults.storeBytes ?? Math.max(MIN_DEFAULT_STORE_BYTES, Math.ceil((lun.size * DEFAULT_STORE_FRACTION) / 4096) * 4096),
      regionSize: this.defaults.regionSize ?? DEFAULT_SNAPSHOT_REGION_SIZE,
      policy: this.defaults.policy ?? 'invalidate-oldest',
    };
  }

  /** The LUN's set with its store open and loaded (one opening at a time per LUN; clones and group snapshots use it too). */
  setOf(lunId: number): Promise<SnapshotSet | undefined> {
    const have = this.sets.get(lunId);
    if (have?.store) return Promise.resolve(have);
    let p = this.opening.get(lunId);
    if (!p) {
      p = this.loadSet(lunId).finally(() => this.opening.delete(lunId));
      this.opening.set(lunId, p);
    }
    return p;
  }

  private async loadSet(lunId: number): Promise<SnapshotSet | undefined> {
    const lun = this.host.lun(lunId);
    const base = this.host.base(lunId);
    if (!lun || !base) return undefined;
    const s = this.settingsFor(lun);
    await fsp.mkdir(join(this.dir, 'snap'), { recursive: true });
    const { store, saved } = await SlotStore.open(storeBase(this.dir, lunId), s.regionSize, Math.floor(s.storeBytes / s.regionSize));
    const set = this.sets.get(lunId) ?? this.newSet(lun, base, s);
    set.store = store;
    // A seq named by a saved region is used, even if its snapshot was never saved (commitCut).
    for (const r of saved) this.meta.nextSeq = Math.max(this.meta.nextSeq, r.last + 1);
    await set.load((this.meta.luns[String(lunId)]?.snapshots ?? []).filter((r) => r.state === 'valid'), saved);
    this.sets.set(lunId, set);
    return set;
  }

  private newSet(lun: SnapshotLun, base: BlockDevice, s: StoreSettings): SnapshotSet {
    return new SnapshotSet(lun.id, lun.size, s.regionSize, s.policy, base, { invalidate: (l, seq, why) => this.invalidate(l, seq, why) });
  }

  /** The copy-on-write layer for a LUN's stack (the same set for every stack over the LUN). */
  layer(lunId: number, lower: BlockDevice): BlockDevice {
    let set = this.sets.get(lunId);
    if (!set) {
      const lun = this.host.lun(lunId);
      if (!lun) return lower;
      set = this.newSet(lun, this.host.base(lunId) ?? lower, this.settingsFor(lun));
      this.sets.set(lunId, set);
    }
    return new SnapshotLayer(set, lower);
  }

  // ---- queries ----
  private view(lun: SnapshotLun, rec: SnapshotRecord): SnapshotView {
    const set = this.sets.get(lun.id);
    return { ...rec, export: snapshotExportName(lun.name, rec.name), lunName: lun.name, usedBytes: rec.state === 'valid' && set?.store ? set.usedBytes(rec.seq) : 0 };
  }

  list(lunRef?: number | string): SnapshotView[] {
    const only = lunRef === undefined ? undefined : this.lunOrThrow(lunRef).id;
    const out: SnapshotView[] = [];
    for (const [id, ls] of Object.entries(this.meta.luns)) {
      if (only !== undefined && Number(id) !== only) continue;
      const lun = this.host.lun(Number(id));
      if (lun) for (const r of ls.snapshots) out.push(this.view(lun, r));
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  get(lunRef: number | string, name: string): SnapshotView {
    const lun = this.lunOrThrow(lunRef);
    return this.view(lun, this.recordOrThrow(lun, name));
  }

  /** Store settings and use of a LUN. */
  storeOf(lunRef: number | string): StoreSettings & { usedBytes: number; snapshots: number; rollback?: { snapshot: string; doneBytes: number; totalBytes: number } } {
    const lun = this.lunOrThrow(lunRef);
    const set = this.sets.get(lun.id);
    const rollback = this.rollbacks.get(lun.id);
    return {
      ...this.settingsFor(lun),
      usedBytes: set?.store ? set.store.usedSlots * set.regionSize : 0,
      snapshots: this.meta.luns[String(lun.id)]?.snapshots.length ?? 0,
      ...(rollback ? { rollback: { ...rollback } } : {}),
    };
  }

  /** The export of `LUN@SNAP`, or undefined. */
  device(exportName: string): { device: SnapshotDevice; view: SnapshotView } | undefined {
    const at = exportName.indexOf('@');
    if (at <= 0) return undefined;
    const lun = this.host.lun(exportName.slice(0, at));
    if (!lun || lun.name !== exportName.slice(0, at)) return undefined;
    const rec = this.meta.luns[String(lun.id)]?.snapshots.find((s) => s.name === exportName.slice(at + 1) && s.state === 'valid');
    const set = this.sets.get(lun.id);
    if (!rec || !set?.store) return undefined;
    return { device: new SnapshotDevice(set, rec.seq, rec.size, lun.blockSize), view: this.view(lun, rec) };
  }

  /** Every valid snapshot that is served (its LUN online, its store open), oldest first; counts no use (cheap). */
  served(): Array<SnapshotRecord & { export: string; lunName: string; blockSize: number; regionSize: number }> {
    const out = [];
    for (const [id, ls] of Object.entries(this.meta.luns)) {
      const lun = this.host.lun(Number(id));
      if (!lun || !this.sets.get(lun.id)?.store) continue;
      for (const r of ls.snapshots) if (r.state === 'valid') out.push({ ...r, export: snapshotExportName(lun.name, r.name), lunName: lun.name, blockSize: lun.blockSize, regionSize: ls.settings.regionSize });
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** A LUN being rolled back is offline to hosts. */
  offline(lunId: number): boolean {
    return this.meta.luns[String(lunId)]?.rollingBack !== undefined;
  }

  /** Sets what refuses a snapshot create or delete with a reason (the array's clones: a source being copied). */
  setSnapshotGuard(guard: (action: 'create' | 'delete', lunId: number, snapshot: string) => string | undefined): void {
    this.snapshotGuard = guard;
  }

  /** Why a LUN may not be deleted or grown: it has snapshots. */
  guard(lunId: number): string | undefined {
    const n = this.meta.luns[String(lunId)]?.snapshots.length ?? 0;
    return n > 0 ? `it has ${n} snapshot(s); delete them first` : undefined;
  }

  /** See SnapshotSet.savedInNewest (the SPs of a two-SP array write such ranges directly). */
  savedInNewest(lunId: number, offset: number, length: number): number | undefined {
    return this.sets.get(lunId)?.savedInNewest(offset, length);
  }

  private lunOrThrow(ref: number | string): SnapshotLun {
    const lun = this.host.lun(ref);
    if (!lun) throw new SnapshotError('not-found', `no online LUN ${JSON.stringify(ref)}`);
    return lun;
  }

  private recordOrThrow(lun: SnapshotLun, name: string): SnapshotRecord {
    const rec = this.meta.luns[String(lun.id)]?.snapshots.find((s) => s.name === name);
    if (!rec) throw new SnapshotError('not-found', `LUN ${lun.name} has no snapshot ${JSON.stringify(name)}`);
    return rec;
  }

  private lunMeta(lun: SnapshotLun): LunSnapshots {
    return (this.meta.luns[String(lun.id)] ??= { settings: this.settingsFor(lun), snapshots: [] });
  }

  private async persist(undo: () => void): Promise<void> {
    try {
      await this.store.save(this.meta);
    } catch (e) {
      undo();
      throw new SnapshotError('io', `cannot save snapshot metadata: ${(e as Error).message}`);
    }
  }

  // ---- create ----
  /** Snapshots one or several LUNs at one write boundary. */
  create(lunRefs: Array<number | string>, name: string, opts: CreateSnapshotOptions = {}): Promise<CreatedSnapshots> {
    return this.mutations.run(async () => {
      if (!isPlainName(name)) {
        throw new SnapshotError('invalid-argument', `snapshot name ${JSON.stringify(name)} is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)`);
      }
      if (lunRefs.length === 0) throw new SnapshotError('invalid-argument', 'no LUN to snapshot');
      const luns = lunRefs.map((r) => this.lunOrThrow(r));
      if (new Set(luns.map((l) => l.id)).size !== luns.length) throw new SnapshotError('invalid-argument', 'a LUN is named twice');
      for (const lun of luns) {
        const ls = this.meta.luns[String(lun.id)];
        if (ls?.snapshots.some((s) => s.name === name)) throw new SnapshotError('exists', `LUN ${lun.name} already has a snapshot ${JSON.stringify(name)}`);
        if ((ls?.snapshots.length ?? 0) >= MAX_SNAPSHOTS_PER_LUN) throw new SnapshotError('busy', `LUN ${lun.name} has ${MAX_SNAPSHOTS_PER_LUN} snapshots, the most it may hold; delete one first`);
        if (ls?.rollingBack !== undefined) throw new SnapshotError('busy', `LUN ${lun.name} is being rolled back`);
        const why = this.snapshotGuard?.('create', lun.id, name);
        if (why) throw new SnapshotError('busy', `LUN ${lun.name} cannot be snapshotted: ${why}`);
      }
      const sets: SnapshotSet[] = [];
      for (const lun of luns) {
        const set = await this.setOf(lun.id);
        if (!set) throw new SnapshotError('not-found', `LUN ${lun.name} is not online`);
        sets.push(set);
      }
      try {
        // A two-SP array: every change of these LUNs crosses this manager's layer before the cut.
        await this.host.syncRoutes?.(luns.map((l) => l.id)).catch((e: Error) => {
          throw new SnapshotError('io', `cannot route the LUNs' writes through the snapshot layer: ${e.message}`);
        });
        return await this.cutAndCommit(luns, sets, name, opts);
      } finally {
        await this.followRoutes();
      }
    });
  }

  /** After a change on a two-SP array: the SPs' routes and exports follow (an event if they cannot). */
  private async followRoutes(): Promise<void> {
    await this.host.syncRoutes?.().catch((e: Error) => this.host.event('snapshot.routes-failed', { problem: e.message }));
  }

  /** Holds every gate, cuts in memory, releases, then saves the cut. */
  private async cutAndCommit(luns: SnapshotLun[], sets: SnapshotSet[], name: string, opts: CreateSnapshotOptions): Promise<CreatedSnapshots> {
    const ordered = [...sets].sort((a, b) => a.lun - b.lun);
    const t0 = process.hrtime.bigint();
    for (const s of ordered) await s.gate.hold();
    let recs: SnapshotRecord[];
    try {
      // The cut itself is in memory only, so new writes wait for no disk I/O.
      recs = this.cut(luns, name, opts);
      recs.forEach((r, i) => sets[i]!.add(r));
    } finally {
      for (const s of ordered) s.gate.release();
    }
    const pauseMs = Number(process.hrtime.bigint() - t0) / 1e6;
    await this.commitCut(luns, sets, recs);
    const views = recs.map((r, i) => this.view(luns[i]!, r));
    for (const v of views) this.host.event('snapshot.created', { lun: v.lun, lunName: v.lunName, snapshot: v.name, seq: v.seq, kind: v.kind, export: v.export, pauseMs: round(pauseMs), ...(v.group ? { group: v.group } : {}), ...(v.groupSeq !== undefined ? { groupSeq: v.groupSeq } : {}) });
    return { snapshots: views, pauseMs };
  }

  /** The records of a cut, added to the metadata in memory (the gates are held). */
  private cut(luns: SnapshotLun[], name: string, opts: CreateSnapshotOptions): SnapshotRecord[] {
    const groupSeq = opts.atBoundary?.();
    const created = new Date().toISOString();
    const seq0 = this.meta.nextSeq;
    const recs: SnapshotRecord[] = luns.map((lun, i) => ({
      seq: seq0 + i,
      name,
      lun: lun.id,
      kind: opts.kind ?? (luns.length > 1 ? 'group' : 'user'),
      created,
      size: lun.size,
      state: 'valid',
      ...(opts.group ? { group: opts.group } : {}),
      ...(groupSeq !== undefined ? { groupSeq } : {}),
      ...(opts.note ? { note: opts.note } : {}),
    }));
    this.meta.nextSeq = seq0 + luns.length;
    for (const [i, lun] of luns.entries()) this.lunMeta(lun).snapshots.push(recs[i]!);
    return recs;
  }

  /**
   * Saves a cut; the create answers only after. Writes after the cut may already have saved
   * regions for it: after a crash before this save those records name a seq no snapshot has, so
   * the store drops them when it loads, and the next seq is taken above every seq a record names
   * (loadSet), so no later snapshot can inherit them. A failed save drops the snapshots again.
   */
  private async commitCut(luns: SnapshotLun[], sets: SnapshotSet[], recs: SnapshotRecord[]): Promise<void> {
    try {
      await this.store.save(this.meta);
    } catch (e) {
      for (const [i, lun] of luns.entries()) {
        const ls = this.lunMeta(lun);
        ls.snapshots = ls.snapshots.filter((s) => s !== recs[i]);
        await sets[i]!.drop(recs[i]!.seq);
      }
      throw new SnapshotError('io', `cannot save snapshot metadata: ${(e as Error).message}`);
    }
  }

  // ---- delete, invalidate ----
  delete(lunRef: number | string, name: string, opts: { force?: boolean } = {}): Promise<SnapshotView> {
    return this.mutations.run(async () => {
      const lun = this.lunOrThrow(lunRef);
      const rec = this.recordOrThrow(lun, name);
      const ls = this.lunMeta(lun);
      if (ls.rollingBack === rec.seq) throw new SnapshotError('busy', `LUN ${lun.name} is being rolled back to ${name}`);
      const exp = snapshotExportName(lun.name, name);
      const why = this.snapshotGuard?.('delete', lun.id, name);
      if (why) throw new SnapshotError('busy', `snapshot ${exp} cannot be deleted: ${why}`);
      const sessions = this.host.sessionCount(exp);
      if (sessions > 0 && !opts.force) throw new SnapshotError('busy', `snapshot ${exp} has ${sessions} open NBD session(s); disconnect them or force the delete`);
      const view = this.view(lun, rec);
      const before = ls.snapshots;
      ls.snapshots = before.filter((s) => s !== rec);
      await this.persist(() => (ls.snapshots = before));
      if (sessions > 0) await this.host.disconnect(exp);
      const set = this.sets.get(lun.id);
      if (set?.store && rec.state === 'valid') await set.drop(rec.seq);
      await this.followRoutes();
      this.host.event('snapshot.deleted', { lun: lun.id, lunName: lun.name, snapshot: name, seq: rec.seq, forced: sessions > 0 });
      return view;
    });
  }

  /** The store overflowed: the snapshot becomes invalid (persisted first; the set then frees its regions). */
  private async invalidate(lunId: number, seq: number, reason: string): Promise<void> {
    const ls = this.meta.luns[String(lunId)];
    const rec = ls?.snapshots.find((s) => s.seq === seq);
    if (!rec || rec.state !== 'valid') return;
    rec.state = 'invalid';
    rec.invalidReason = reason;
    await this.persist(() => {
      rec.state = 'valid';
      delete rec.invalidReason;
    });
    const lun = this.host.lun(lunId);
    if (lun) await this.host.disconnect(snapshotExportName(lun.name, rec.name));
    void this.followRoutes();
    this.host.event('snapshot.invalidated', { lun: lunId, lunName: lun?.name, snapshot: rec.name, seq, reason });
  }

  // ---- settings ----
  configure(lunRef: number | string, change: { storeBytes?: number; policy?: OverflowPolicy }): Promise<StoreSettings> {
    return this.mutations.run(async () => {
      const lun = this.lunOrThrow(lunRef);
      if (change.policy !== undefined && !OVERFLOW_POLICIES.includes(change.policy)) throw new SnapshotError('invalid-argument', `policy ${JSON.stringify(change.policy)} is not one of ${OVERFLOW_POLICIES.join(', ')}`);
      const ls = this.lunMeta(lun);
      const set = this.sets.get(lun.id);
      if (change.storeBytes !== undefined) {
        if (!Number.isSafeInteger(change.storeBytes) || change.storeBytes < ls.settings.regionSize) throw new SnapshotError('invalid-argument', `store size must be at least one region (${ls.settings.regionSize} bytes)`);
        const inUse = set?.store ? set.store.usedSlots * ls.settings.regionSize : 0;
        if (change.storeBytes < inUse) throw new SnapshotError('busy', `the store holds ${inUse} bytes; delete snapshots before shrinking it to ${change.storeBytes}`);
      }
      const before = { ...ls.settings };
      ls.settings = { ...ls.settings, ...(change.storeBytes !== undefined ? { storeBytes: change.storeBytes } : {}), ...(change.policy ? { policy: change.policy } : {}) };
      await this.persist(() => (ls.settings = before));
      if (set) {
        set.policy = ls.settings.policy;
        if (set.store) set.store.maxSlots = Math.floor(ls.settings.storeBytes / ls.settings.regionSize);
      }
      this.host.event('snapshot.store-configured', { lun: lun.id, lunName: lun.name, ...ls.settings });
      return ls.settings;
    });
  }

  // ---- rollback ----

  /**
   * Writes the LUN back to the snapshot: host sessions are disconnected and host changes refused
   * meanwhile; newer snapshots keep their data (the rollback's writes save first). Persisted, so
   * a crash in the middle finishes the rollback at the next open.
   */
  rollback(lunRef: number | string, name: string, progress?: (done: number, total: number) => void): Promise<SnapshotView> {
    return this.mutations.run(async () => {
      const lun = this.lunOrThrow(lunRef);
      const rec = this.recordOrThrow(lun, name);
      if (rec.state !== 'valid') throw new SnapshotError('busy', `snapshot ${name} of LUN ${lun.name} is invalid (${rec.invalidReason ?? 'dropped'}); it cannot be rolled back to`);
      const why = this.host.rollbackGuard(lun.id);
      if (why) throw new SnapshotError('busy', `LUN ${lun.name} cannot be rolled back: ${why}`);
      const set = await this.setOf(lun.id);
      if (!set) throw new SnapshotError('not-found', `LUN ${lun.name} is not online`);
      const ls = this.lunMeta(lun);
      ls.rollingBack = rec.seq;
      await this.persist(() => delete ls.rollingBack);
      await set.gate.hold();
      set.rollingBack = true;
      set.gate.release();
      await this.followRoutes(); // two-SP arrays: the SPs hide the LUN and refuse its I/O
      await this.host.disconnect(lun.name);
      await this.runRollback(set, lun, rec, progress);
      return this.view(lun, rec);
    });
  }

  private async resumeRollback(set: SnapshotSet, seq: number): Promise<void> {
    const lun = this.host.lun(set.lun)!;
    const rec = this.meta.luns[String(set.lun)]!.snapshots.find((s) => s.seq === seq);
    if (!rec) throw new SnapshotError('io', `LUN ${lun.name}: an interrupted rollback names snapshot seq ${seq}, which is gone`);
    set.rollingBack = true;
    this.host.event('snapshot.rollback-resumed', { lun: lun.id, lunName: lun.name, snapshot: rec.name, seq });
    await this.runRollback(set, lun, rec);
  }

  private async runRollback(set: SnapshotSet, lun: SnapshotLun, rec: SnapshotRecord, progress?: (done: number, total: number) => void): Promise<void> {
    const state = { snapshot: rec.name, doneBytes: 0, totalBytes: 0 };
    this.rollbacks.set(lun.id, state);
    try {
      await writeBack(set, lun, rec, {
        event: (type, details) => this.host.event(type, details),
        progress: (done, total) => {
          Object.assign(state, { doneBytes: done, totalBytes: total });
          progress?.(done, total);
        },
        finished: async () => {
          const ls = this.meta.luns[String(lun.id)]!;
          delete ls.rollingBack;
          await this.persist(() => (ls.rollingBack = rec.seq));
        },
      });
    } finally {
      this.rollbacks.delete(lun.id);
      await this.followRoutes();
    }
  }

  /** The LUN was deleted (its snapshots were deleted first): forget its set and remove its store. */
  async lunDeleted(lunId: number): Promise<void> {
    const set = this.sets.get(lunId);
    this.sets.delete(lunId);
    if (set?.store) await set.close();
    if (this.meta.luns[String(lunId)]) {
      delete this.meta.luns[String(lunId)];
      await this.persist(() => undefined);
    }
    await SlotStore.remove(storeBase(this.dir, lunId));
  }

  async close(): Promise<void> {
    await this.mutations.drained();
    for (const set of this.sets.values()) if (set.store) await set.close();
    this.sets.clear();
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
