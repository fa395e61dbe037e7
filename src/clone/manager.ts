/**
 * The clones of one array: a clone is a new LUN that is a full, independent copy of a snapshot
 * (`LUN@SNAP`), or of a live LUN through an internal snapshot `clone-NAME` taken at `clone
 * create`. It serves I/O at once through its CloneLayer while a background copy fills it at a set
 * rate; when the copy completes the record says so, the internal snapshot and the copied map are
 * removed, and the LUN depends on nothing.
 *
 * Records are persisted before they take effect (./records.ts); a crash while creating finishes
 * the create at the next open, a crash while copying resumes the copy from the copied map, a
 * crash while completing or deleting finishes the cleanup. Every change is an event.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { isPlainName } from '../array/index.js';
import type { BlockDevice } from '../block/index.js';
import { SerialQueue } from '../serial/index.js';
import { SnapshotError, type SnapshotManager } from '../snapshot/index.js';
import { BackgroundCopier } from './copier.js';
import { CopiedMap } from './copied-map.js';
import { CloneCopy } from './copy.js';
import type { CloneEntry } from './entry.js';
import { CloneLayer, type CloneLookup } from './layer.js';
import { CloneRecords } from './records.js';
import { cloneView, guardReason, progressText } from './views.js';
import {
  CLONE_NAME_MAX,
  CLONE_SOURCE_PREFIX,
  CloneError,
  DEFAULT_CLONE_RATE_BYTES_PER_SEC,
  DEFAULT_CLONE_REGION_SIZE,
  sourceExport,
  type CloneRecord,
  type CloneSource,
  type CloneView,
} from './types.js';

/** A LUN as the manager needs it. */
export interface CloneLun {
  id: number;
  name: string;
  size: number;
  blockSize: number;
  online: boolean;
}

/** What the array around the manager provides. */
export interface CloneHost {
  readonly readOnly: boolean;
  /** A LUN by id (a number, or a string of digits) or name, in any state. */
  lun(ref: number | string): CloneLun | undefined;
  /** A LUN by name only. */
  lunByName(name: string): CloneLun | undefined;
  /** The LUN's data below every host layer (its image behind its disk fault layer). */
  base(lunId: number): BlockDevice | undefined;
  createLun(name: string, size: number, blockSize: number): Promise<CloneLun>;
  deleteLun(lunId: number, opts: { force: boolean }): Promise<void>;
  event(type: string, details: Record<string, unknown>): void;
}

export interface CloneDefaults {
  rateBytesPerSec?: number;
  regionSize?: number;
}

export class CloneManager implements CloneLookup {
  private readonly records: CloneRecords;
  private readonly entries = new Map<string, CloneEntry>();
  /** Clones still copying, by LUN id: what the layers ask on every request. */
  private readonly active = new Map<number, CloneEntry>();
  /** Clones being created, by name: their LUN's I/O waits for this. */
  private readonly pending = new Map<string, Promise<void>>();
  private readonly mutations = new SerialQueue();
  private closed = false;
  /** The array has no power: no copy runs (see pauseCopies). */
  private paused = false;

  constructor(
    private readonly dir: string,
    private readonly host: CloneHost,
    private readonly snapshots: SnapshotManager,
    private readonly defaults: CloneDefaults = {},
    noSync = false,
  ) {
    this.records = new CloneRecords(dir, noSync);
  }

  private mapPath(lunId: number): string {
    return join(this.dir, 'clone', `lun${lunId}.copied`);
  }

  /** Loads the records: finishes interrupted creates and cleanups, resumes the copies. */
  async open(): Promise<void> {
    for (const problem of await this.records.load()) this.host.event('clone.metadata-repaired', { problem });
    for (const rec of [...this.records.records]) {
      const e: CloneEntry = { rec };
      this.entries.set(rec.name, e);
      try {
        if (rec.state === 'creating') await this.finishCreate(e);
        else if (rec.state === 'copying') await this.resumeAtOpen(e);
        else await this.cleanUp(e, 'completed');
      } catch (err) {
        await this.fail(e, err);
      }
    }
  }

  // ---- what the layers and guards ask ----

  copyOf(lunId: number): CloneCopy | undefined {
    return this.active.get(lunId)?.copy;
  }

  creating(lunId: number): Promise<void> | undefined {
    if (this.pending.size === 0) return undefined;
    const name = this.host.lun(lunId)?.name;
    return name === undefined ? undefined : this.pending.get(name);
  }

  /** The clone layer for a LUN's stack (every LUN has one; it passes through unless the LUN is a clone still copying). */
  layer(lunId: number, lower: BlockDevice): BlockDevice {
    return new CloneLayer(this, lunId, lower);
  }

  private dependents(): CloneEntry[] {
    return [...this.entries.values()].filter((e) => e.rec.state !== 'completed' && !e.deleting);
  }

  /** Why a LUN may not be deleted or grown: it is a clone still copying, or the source of one. */
  guard(lunId: number): string | undefined {
    for (const e of this.dependents()) {
      if (e.rec.lun === lunId) return `it is clone ${e.rec.name}, ${progressText(e)}; wait for the copy to complete, or delete the clone (sanbox clone delete ${e.rec.name})`;
      if (e.rec.source.lun === lunId) return `it is the source of clone ${e.rec.name} (${progressText(e)}); wait for the copy to complete, or delete the clone (sanbox clone delete ${e.rec.name})`;
    }
    return undefined;
  }

  /** Why a snapshot may not be taken of a LUN (a clone still copying) or deleted (a clone copies from it). */
  snapshotGuard(action: 'create' | 'delete', lunId: number, snapshot: string): string | undefined {
    for (const e of this.dependents()) {
      const r = guardReason(e, action, lunId, snapshot);
      if (r) return r;
    }
    return undefined;
  }

  // ---- queries ----

  list(): CloneView[] {
    return [...this.entries.values()].map((e) => this.view(e)).sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
  }

  get(name: string): CloneView {
    return this.view(this.entryOrThrow(name));
  }

  private view(e: CloneEntry): CloneView {
    return cloneView(e, this.host.readOnly);
  }

  private entryOrThrow(name: string): CloneEntry {
    const e = this.entries.get(name);
    if (!e) throw new CloneError('not-found', `no clone ${JSON.stringify(name)}`);
    return e;
  }

  // ---- create ----

  /** Creates clone `name` of `source` (a LUN, or `LUN@SNAP`); it serves I/O when this resolves. */
  create(name: string, from: string | number, opts: { rateBytesPerSec?: number } = {}): Promise<CloneView> {
    return this.mutations.run(async () => {
      if (this.closed) throw new CloneError('busy', 'the array is closing');
      if (this.host.readOnly) throw new CloneError('read-only', 'the array is read-only: cannot create clones');
      if (!isPlainName(name) || name.length > CLONE_NAME_MAX) {
        throw new CloneError('invalid-argument', `clone name ${JSON.stringify(name)} is invalid: 1 to 58 characters from A-Z a-z 0-9 . _ - (not . or ..; a LUN name; its source snapshot is ${CLONE_SOURCE_PREFIX}NAME)`);
      }
      if (this.entries.has(name)) throw new CloneError('exists', `clone ${name} already exists`);
      if (this.host.lunByName(name)) throw new CloneError('exists', `a LUN named ${name} already exists; a clone is a new LUN`);
      const rate = opts.rateBytesPerSec ?? this.defaults.rateBytesPerSec ?? DEFAULT_CLONE_RATE_BYTES_PER_SEC;
      if (!Number.isSafeInteger(rate) || rate <= 0) throw new CloneError('invalid-argument', `rate ${JSON.stringify(rate)} must be a positive number of bytes per second`);
      const { lun, source } = this.resolveSource(from, name);
      const rec: CloneRecord = {
        name,
        source,
        size: lun.size,
        blockSize: lun.blockSize,
        regionSize: Math.max(this.defaults.regionSize ?? DEFAULT_CLONE_REGION_SIZE, 4096),
        rateBytesPerSec: rate,
        state: 'creating',
        created: new Date().toISOString(),
      };
      const e: CloneEntry = { rec };
      let done!: () => void;
      this.pending.set(name, new Promise<void>((r) => (done = r)));
      this.entries.set(name, e);
      let snapshotTaken = false;
      let made: CloneLun | undefined;
      try {
        await this.records.add(rec);
        if (source.internal) {
          await this.snapshots.create([lun.id], source.snapshot, { kind: 'clone-source', note: `the source of clone ${name} (deleted when its copy completes)` });
          snapshotTaken = true;
        }
        const dev = this.sourceDevice(source);
        if (!dev) throw new CloneError('not-found', `snapshot ${sourceExport(source)} is not served`);
        rec.size = dev.size;
        made = await this.host.createLun(name, rec.size, rec.blockSize);
        await this.attach(e, made, dev);
      } catch (err) {
        await this.undoCreate(e, snapshotTaken, made);
        throw err instanceof SnapshotError ? new CloneError(err.code, `cannot take the source snapshot of clone ${name}: ${err.message}`) : err;
      } finally {
        this.pending.delete(name);
        done();
      }
      this.host.event('clone.created', { clone: name, lun: rec.lun, source: sourceExport(source), internal: source.internal, bytes: rec.size, regionSize: rec.regionSize, rateBytesPerSec: rate });
      return this.view(e);
    });
  }

  private resolveSource(ref: string | number, name: string): { lun: CloneLun; source: CloneSource } {
    const at = typeof ref === 'string' ? ref.indexOf('@') : -1;
    const lunRef = at >= 0 ? (ref as string).slice(0, at) : ref;
    const lun = this.host.lun(lunRef);
    if (!lun) throw new CloneError('not-found', `no LUN ${JSON.stringify(lunRef)} to clone`);
    if (!lun.online) throw new CloneError('busy', `LUN ${lun.name} is not online`);
    if (at >= 0) {
      const snapshot = (ref as string).slice(at + 1);
      let state: string;
      try {
        state = this.snapshots.get(lun.id, snapshot).state;
      } catch (e) {
        if (e instanceof SnapshotError && e.code === 'not-found') throw new CloneError('not-found', `LUN ${lun.name} has no snapshot ${JSON.stringify(snapshot)}`);
        throw e;
      }
      if (state !== 'valid') throw new CloneError('busy', `snapshot ${lun.name}@${snapshot} is invalid (dropped by its full store); it cannot be cloned`);
      return { lun, source: { lun: lun.id, lunName: lun.name, snapshot, internal: false } };
    }
    const busy = this.active.get(lun.id);
    if (busy) throw new CloneError('busy', `LUN ${lun.name} is itself clone ${busy.rec.name}, still copying; clone it once its copy has completed (or clone its source)`);
    return { lun, source: { lun: lun.id, lunName: lun.name, snapshot: `${CLONE_SOURCE_PREFIX}${name}`, internal: true } };
  }

  private sourceDevice(s: CloneSource): BlockDevice | undefined {
    return this.snapshots.device(sourceExport(s))?.device;
  }

  /** Whether the source snapshot is still recorded (valid or invalidated). */
  private sourceExists(s: CloneSource): boolean {
    return this.snapshots.list().some((v) => v.lun === s.lun && v.name === s.snapshot);
  }

  /** The LUN exists: a new copied map, the record says copying, I/O goes through the copy, the copy starts. */
  private async attach(e: CloneEntry, lun: CloneLun, dev: BlockDevice): Promise<void> {
    const base = this.host.base(lun.id);
    if (!base) throw new CloneError('io', `LUN ${lun.name} is not online`);
    await fsp.mkdir(join(this.dir, 'clone'), { recursive: true });
    const map = await CopiedMap.create(this.mapPath(lun.id), e.rec.size, e.rec.regionSize, base);
    await this.records.update(e.rec, { state: 'copying', lun: lun.id, size: e.rec.size });
    e.copy = new CloneCopy(e.rec.name, dev, base, map, e.rec.size);
    this.active.set(lun.id, e);
    this.startCopier(e);
  }

  private async undoCreate(e: CloneEntry, snapshotTaken: boolean, made: CloneLun | undefined): Promise<void> {
    e.deleting = true;
    if (e.rec.lun !== undefined) this.active.delete(e.rec.lun);
    await e.copier?.stop();
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        this.host.event('clone.cleanup-failed', { clone: e.rec.name, step: what, error: (err as Error).message });
      }
    };
    if (made) await step('delete the clone LUN', () => this.host.deleteLun(made.id, { force: true }));
    if (snapshotTaken) await step('delete the source snapshot', () => this.snapshots.delete(e.rec.source.lun, e.rec.source.snapshot, { force: true }));
    if (made) await step('remove the copied map', () => fsp.rm(this.mapPath(made.id), { force: true }));
    if (this.records.find(e.rec.name) === e.rec) await step('remove the record', () => this.records.remove(e.rec));
    this.entries.delete(e.rec.name);
  }

  /** At open: a create interrupted by a crash is finished (its point in time is its source snapshot). */
  private async finishCreate(e: CloneEntry): Promise<void> {
    const rec = e.rec;
    const dev = this.sourceDevice(rec.source);
    const lun = this.host.lunByName(rec.name);
    if (!dev || (lun && (lun.size !== dev.size || lun.blockSize !== rec.blockSize))) {
      // No source (the crash came before the snapshot), or a LUN of that name that is not this clone's.
      await this.forget(e, dev ? `an interrupted create found LUN ${rec.name} of another size; the LUN is left as it is` : 'an interrupted create had not taken its source snapshot');
      return;
    }
    rec.size = dev.size;
    await this.attach(e, lun ?? (await this.host.createLun(rec.name, rec.size, rec.blockSize)), dev);
    this.host.event('clone.resumed', { clone: rec.name, lun: rec.lun, source: sourceExport(rec.source), copiedBytes: 0, totalBytes: rec.size, after: 'an interrupted create' });
  }

  // ---- copying ----

  /** At open: a copying clone serves I/O again and its copy goes on from its copied map. */
  private async resumeAtOpen(e: CloneEntry): Promise<void> {
    const rec = e.rec;
    const lun = rec.lun === undefined ? undefined : this.host.lun(rec.lun);
    if (!lun || lun.name !== rec.name) {
      await this.forget(e, 'its LUN is gone (an interrupted delete)');
      return;
    }
    const base = lun.online ? this.host.base(lun.id) : undefined;
    if (!base) throw new CloneError('io', `LUN ${rec.name} is not online; the clone is kept but not copied`);
    const dev = this.sourceDevice(rec.source);
    let map: CopiedMap;
    let broken: string | undefined;
    try {
      map = await CopiedMap.load(this.mapPath(lun.id), rec.size, rec.regionSize, base);
    } catch (err) {
      map = CopiedMap.lost(this.mapPath(lun.id), rec.size, rec.regionSize, base);
      broken = `its copied map is lost (${(err as Error).message}): the regions it wrote itself cannot be told from the source; delete the clone and clone again`;
    }
    e.copy = new CloneCopy(rec.name, dev, base, map, rec.size);
    e.copy.broken = broken;
    this.active.set(lun.id, e);
    if (broken) throw new CloneError('io', broken);
    if (!dev) throw new CloneError('io', `its source snapshot ${sourceExport(rec.source)} is gone; the regions not yet copied cannot be read`);
    delete rec.error;
    this.startCopier(e);
    this.host.event('clone.resumed', { clone: rec.name, lun: lun.id, source: sourceExport(rec.source), copiedBytes: map.copiedBytes, totalBytes: rec.size, after: 'a restart' });
  }

  private startCopier(e: CloneEntry): void {
    const copy = e.copy;
    if (this.host.readOnly || this.closed || this.paused || !copy || !copy.source || copy.broken) return;
    const rec = e.rec;
    const copier = (e.copier ??= new BackgroundCopier(copy, rec.rateBytesPerSec, (p) =>
      this.host.event('clone.progress', { clone: rec.name, lun: rec.lun, copiedBytes: p.copiedBytes, totalBytes: p.totalBytes, measuredBytesPerSec: p.measuredBytesPerSec, rateBytesPerSec: copier.rateBytesPerSec }),
    ));
    copier.run().then(
      (how) => {
        if (how === 'completed') void this.mutations.run(() => this.complete(e)).catch((err: unknown) => this.fail(e, err));
      },
      // A copy the power loss cut short did not fail: it goes on when power is back.
      (err: unknown) => (this.paused ? undefined : void this.fail(e, err)),
    );
  }

  /** Power is failing (a two-SP array): every copy stops; none fails for the I/O cut short (its region is copied again). */
  pauseCopies(): void {
    this.paused = true;
    for (const e of this.entries.values()) void e.copier?.stop();
  }

  /** Power is back: the copies that were running go on from their copied maps. */
  resumeCopies(): void {
    this.paused = false;
    for (const e of this.active.values()) if (e.rec.state === 'copying' && e.rec.error === undefined) this.startCopier(e);
  }

  /** The copy stopped on an error: said in the record and an event; I/O goes on, the copy waits for `resume`. */
  private async fail(e: CloneEntry, err: unknown): Promise<void> {
    const error = (err as Error)?.message ?? String(err);
    e.rec.error = error;
    if (this.records.find(e.rec.name) === e.rec) await this.records.save(() => undefined).catch(() => undefined);
    this.host.event('clone.failed', { clone: e.rec.name, lun: e.rec.lun, error, copiedBytes: e.copy?.map.copiedBytes ?? 0, totalBytes: e.rec.size });
  }

  /** Starts a stopped copy again (after a failure). */
  resume(name: string): Promise<CloneView> {
    return this.mutations.run(async () => {
      const e = this.entryOrThrow(name);
      if (e.rec.state !== 'copying' || !e.copy) throw new CloneError('busy', `clone ${name} is ${e.rec.state}: there is no copy to resume`);
      if (this.host.readOnly) throw new CloneError('read-only', 'the array is read-only: nothing can be copied');
      if (e.copier?.active) throw new CloneError('busy', `clone ${name} is copying already`);
      if (e.copy.broken) throw new CloneError('busy', `clone ${name}: ${e.copy.broken}`);
      if (!e.copy.source) throw new CloneError('busy', `clone ${name}: its source snapshot ${sourceExport(e.rec.source)} is gone; delete the clone`);
      const before = e.rec.error;
      await this.records.update(e.rec, {}, ['error']);
      this.startCopier(e);
      this.host.event('clone.resumed', { clone: name, lun: e.rec.lun, source: sourceExport(e.rec.source), copiedBytes: e.copy.map.copiedBytes, totalBytes: e.rec.size, after: `the failure: ${before ?? 'none'}` });
      return this.view(e);
    });
  }

  /** Changes the rate of the background copy (at once, and for later restarts). */
  setRate(name: string, rateBytesPerSec: number): Promise<CloneView> {
    return this.mutations.run(async () => {
      const e = this.entryOrThrow(name);
      if (!Number.isSafeInteger(rateBytesPerSec) || rateBytesPerSec <= 0) throw new CloneError('invalid-argument', `rate ${JSON.stringify(rateBytesPerSec)} must be a positive number of bytes per second`);
      if (e.rec.state === 'completed') throw new CloneError('busy', `clone ${name} has completed: nothing is left to copy`);
      const previous = e.rec.rateBytesPerSec;
      await this.records.update(e.rec, { rateBytesPerSec });
      e.copier?.setRate(rateBytesPerSec);
      this.host.event('clone.rate-changed', { clone: name, lun: e.rec.lun, rateBytesPerSec, previousBytesPerSec: previous });
      return this.view(e);
    });
  }

  /** Every region is copied: the record says completed, then the source snapshot (internal) and the map go. */
  private async complete(e: CloneEntry): Promise<void> {
    const rec = e.rec;
    if (this.closed || e.deleting || this.entries.get(rec.name) !== e || rec.state !== 'copying' || !e.copy) return;
    await e.copy.commit();
    const completed = new Date().toISOString();
    e.finishing = true;
    try {
      await this.records.update(rec, { state: 'completed', completed, copyMs: Date.parse(completed) - Date.parse(rec.created) }, ['error']);
      if (rec.lun !== undefined) this.active.delete(rec.lun);
      const copy = e.copy;
      e.copy = undefined;
      e.copier = undefined;
      await this.cleanUp(e, 'completed', copy.map);
    } finally {
      e.finishing = false;
    }
    this.host.event('clone.completed', { clone: rec.name, lun: rec.lun, source: sourceExport(rec.source), bytes: rec.size, copyMs: rec.copyMs });
  }

  /** Removes what a clone that no longer copies leaves: its internal source snapshot and its copied map. */
  private async cleanUp(e: CloneEntry, why: string, map?: CopiedMap): Promise<void> {
    const rec = e.rec;
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        this.host.event('clone.cleanup-failed', { clone: rec.name, step: what, error: (err as Error).message, after: why });
      }
    };
    if (rec.source.internal && this.sourceExists(rec.source)) {
      await step('delete the source snapshot', () => this.snapshots.delete(rec.source.lun, rec.source.snapshot, { force: true }));
    }
    if (map) await step('remove the copied map', () => map.remove());
    else if (rec.lun !== undefined) await step('remove the copied map', () => fsp.rm(this.mapPath(rec.lun!), { force: true }));
  }

  /** Forgets a clone whose LUN is gone or never came to be (at open), cleaning up after it. */
  private async forget(e: CloneEntry, reason: string): Promise<void> {
    e.deleting = true;
    await this.records.remove(e.rec);
    this.entries.delete(e.rec.name);
    await this.cleanUp(e, reason);
    this.host.event('clone.deleted', { clone: e.rec.name, lun: e.rec.lun, state: e.rec.state, keptLun: false, reason });
  }

  // ---- delete ----

  /**
   * Deletes a clone: stops its copy, deletes its LUN (refused while NBD sessions are open unless
   * `force`), its internal source snapshot and its copied map. `keepLun` (a completed clone
   * only) forgets the record and keeps the LUN, which is independent already.
   */
  delete(name: string, opts: { force?: boolean; keepLun?: boolean } = {}): Promise<CloneView> {
    return this.mutations.run(async () => {
      const e = this.entryOrThrow(name);
      const rec = e.rec;
      const view = this.view(e);
      if (opts.keepLun) {
        if (rec.state !== 'completed') throw new CloneError('busy', `clone ${name} is still copying: an incomplete clone is no usable LUN; delete it whole (without keep-lun) or wait for the copy`);
        await this.records.remove(rec);
        this.entries.delete(name);
        this.host.event('clone.deleted', { clone: name, lun: rec.lun, state: rec.state, keptLun: true });
        return view;
      }
      e.deleting = true;
      const copying = e.copier?.active === true;
      await e.copier?.stop();
      try {
        if (rec.lun !== undefined && this.host.lun(rec.lun)?.name === name) await this.host.deleteLun(rec.lun, { force: opts.force === true });
      } catch (err) {
        e.deleting = false;
        if (copying) this.startCopier(e);
        throw err;
      }
      if (rec.lun !== undefined) this.active.delete(rec.lun);
      await this.records.remove(rec);
      this.entries.delete(name);
      await this.cleanUp(e, 'deleted', e.copy?.map);
      this.host.event('clone.deleted', { clone: name, lun: rec.lun, state: view.state, keptLun: false, forced: opts.force === true });
      return view;
    });
  }

  /** A LUN was deleted (`lun delete` of a completed clone): its record goes too. */
  lunDeleted(lunId: number): Promise<void> {
    return this.mutations.run(async () => {
      const e = [...this.entries.values()].find((x) => x.rec.lun === lunId && !x.deleting);
      if (!e) return;
      e.deleting = true;
      await this.records.remove(e.rec);
      this.entries.delete(e.rec.name);
      this.active.delete(lunId);
      this.host.event('clone.deleted', { clone: e.rec.name, lun: lunId, state: e.rec.state, keptLun: false, reason: 'its LUN was deleted' });
    });
  }

  /** Stops every copy (each resumes at the next open) and puts the copied maps on disk. */
  async close(): Promise<void> {
    this.closed = true;
    for (const e of this.entries.values()) await e.copier?.stop();
    await this.mutations.drained();
    for (const e of this.active.values()) await e.copy?.commit().catch(() => undefined);
  }
}
