/**
 * One emulated array's LUN table: create, list, delete and grow LUNs stored in sparse image
 * files, persisted through the array's metadata store, every change emitted as an event.
 *
 * The array opens one backing store per LUN and shares it among every NBD connection to that
 * LUN (its `catalog()` is what the NBD server looks exports up in). It knows nothing of the NBD
 * server itself: whoever composes the two hands it a `SessionControl` so that deleting an
 * exported LUN can be refused, or forced by disconnecting its sessions.
 *
 * Every mutation validates first and changes nothing on bad input. Mutations run one at a time.
 *
 * The parts: ./lun-table.ts (records, validation, opening images), ./events.ts (the event log),
 * ./exports.ts (what the NBD server sees), ./array-lock.ts (one process per array directory),
 * ./open-metadata.ts (the metadata at open), ./requests.ts (the options, and the checks of a
 * create or grow), ./lun-images.ts (a new LUN's image file).
 */
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import { resolve } from 'node:path';
import type { BlockDevice, LunFence } from '../block/index.js';
import { MetadataStore } from '../metadata/index.js';
import { ArrayError } from './array-error.js';
import { lockPathOf, takeLock } from './array-lock.js';
import { ArrayEventLog, type ArrayEvent } from './events.js';
import { SessionAttachment, type ArrayCatalog, type ArrayExport, type SessionControl } from './exports.js';
import { checkName, fenceChange, imagePathOf, openLunImage, relOrAbs, type ArrayMetadata, type BlockSizeValue, type LunEntry, type LunInfo, type LunRecord } from './lun-table.js';
import { createLunImage, tooLarge } from './lun-images.js';
import { loadArrayMetadata } from './open-metadata.js';
import { checkCreateRequest, growTarget, type CreateLunOptions, type DeleteLunOptions, type OpenArrayOptions } from './requests.js';
import { ignoreOnClose } from '../errors/index.js';
import { SerialQueue } from '../serial/index.js';
import { formatSize } from './size.js';

export { ArrayError, type ArrayErrorCode } from './array-error.js';
export { EVENT_HISTORY, type ArrayEvent } from './events.js';
export type { ArrayCatalog, ArrayExport, SessionControl } from './exports.js';
export type { CreateLunOptions, DeleteLunOptions, OpenArrayOptions } from './requests.js';
export {
  BLOCK_SIZES,
  checkName,
  checkSize,
  isPlainName,
  MAX_LUN_SIZE,
  METADATA_FORMAT,
  NAME_RE,
  type ArrayMetadata,
  type BlockSizeValue,
  type LunInfo,
  type LunRecord,
  type LunState,
} from './lun-table.js';

export class StorageArray extends EventEmitter {
  readonly name: string;
  readonly dir: string;
  readonly readOnly: boolean;
  private readonly store: MetadataStore<ArrayMetadata>;
  private meta: ArrayMetadata;
  private readonly luns = new Map<number, LunEntry>();
  private readonly events: ArrayEventLog;
  private readonly sessions: SessionAttachment;
  private readonly mutations = new SerialQueue();
  private closed = false;
  private readonly lockPath: string;
  /** Problems found while opening (corrupt metadata copy, missing images...). */
  readonly openProblems: string[] = [];
  /** Upper layers of each LUN's stack (the replication layer), composed by the service. */
  private layer: ((lunId: number, device: BlockDevice) => BlockDevice) | undefined;
  private readonly layered = new Map<number, { lower: BlockDevice; upper: BlockDevice }>();
  /** Says why a LUN may not be deleted or grown right now (e.g. it is a mirror image). */
  private guard: ((lunId: number, action: 'delete' | 'grow') => string | undefined) | undefined;
  /** Whether hosts are told a LUN is read-only when they open it (e.g. it is a mirror secondary). */
  private hostReadOnly: ((lunId: number) => boolean) | undefined;
  /** After a fence change, before it answers (a two-SP array: the SPs took the new routes). */
  private afterFence: (() => Promise<void>) | undefined;

  private constructor(opts: OpenArrayOptions, store: MetadataStore<ArrayMetadata>, meta: ArrayMetadata) {
    super();
    this.name = opts.name;
    this.dir = opts.dir;
    this.readOnly = opts.readOnly ?? false;
    this.store = store;
    this.meta = meta;
    this.lockPath = lockPathOf(opts.dir);
    this.events = new ArrayEventLog(opts.name, this);
    this.sessions = new SessionAttachment((type, details) => this.record(type, details));
  }

  /**
   * Opens (creating if needed) the array in `dir`. Fails clearly when the metadata is unusable
   * (both copies corrupt), belongs to another array, the directory is locked by a live process,
   * or image files exist without any metadata (never a silent reset).
   */
  static async open(opts: OpenArrayOptions): Promise<StorageArray> {
    const bad = checkName(opts.name, 'array name');
    if (bad) throw new ArrayError('invalid-argument', bad);
    const dir = resolve(opts.dir);
    await fsp.mkdir(dir, { recursive: true });
    await takeLock(dir, opts.name);
    const store = new MetadataStore<ArrayMetadata>(dir, { noSync: opts.noSync });
    try {
      const { loaded, meta } = await loadArrayMetadata(store, dir, opts.name);
      const arr = new StorageArray({ ...opts, dir }, store, meta);
      for (const p of loaded.problems) arr.openProblems.push(p);
      for (const p of loaded.problems) arr.record('metadata.copy-invalid', { problem: p });
      if (loaded.data === undefined) {
        await store.save(meta);
        arr.record('array.created', { dir });
      } else if (loaded.problems.length > 0) {
        // Rewrite the bad copy now so both copies are good again.
        const generation = await store.save(meta);
        arr.record('metadata.repaired', { generation });
      }
      await arr.openLuns();
      arr.record('array.opened', { dir, luns: arr.meta.luns.length, readOnly: arr.readOnly });
      return arr;
    } catch (e) {
      // The open's own error is what the caller gets; a lock left behind is taken over as stale.
      await ignoreOnClose(fsp.rm(lockPathOf(dir), { force: true }), 'cleaning up after a failed open: removing the lock file');
      throw e;
    }
  }

  private async openLuns(): Promise<void> {
    let changed = false;
    for (const rec of this.meta.luns) {
      const sizeBefore = rec.size;
      const lun = await openLunImage(rec, imagePathOf(this.dir, rec), this.readOnly, (type, details) => {
        if (type === 'lun.offline') this.openProblems.push(`LUN ${rec.name}: ${String(details.problem)}`);
        this.record(type, details);
      });
      this.luns.set(rec.id, lun);
      if (rec.size !== sizeBefore) changed = true;
    }
    if (changed) await this.store.save(this.meta);
  }

  // ---- events ----

  private record(type: string, details: Record<string, unknown> = {}): ArrayEvent {
    return this.events.record(type, details);
  }

  /** Records an event on behalf of a composing layer (NBD server, control plane). */
  publish(type: string, details: Record<string, unknown> = {}): ArrayEvent {
    return this.record(type, details);
  }

  /** Recent events with seq > `afterSeq` (all kept ones when afterSeq is beyond the last). */
  eventsSince(afterSeq: number): ArrayEvent[] {
    return this.events.since(afterSeq);
  }

  get lastSeq(): number {
    return this.events.lastSeq;
  }

  // ---- sessions ----

  /** Attaches the NBD server: session counts, forced disconnects, session events. */
  attachSessions(sessions: SessionControl): void {
    this.sessions.attach(sessions);
  }

  // ---- queries ----

  private info(lun: LunEntry): LunInfo {
    return {
      ...lun.rec,
      imagePath: imagePathOf(this.dir, lun.rec),
      state: lun.state,
      ...(lun.problem ? { problem: lun.problem } : {}),
      readOnly: this.readOnly,
      sessions: this.sessions.current && lun.state === 'online' ? this.sessions.current.sessionCount(lun.rec.name) : 0,
    };
  }

  listLuns(): LunInfo[] {
    return [...this.luns.values()].filter((l) => !l.deleting).sort((a, b) => a.rec.id - b.rec.id).map((l) => this.info(l));
  }

  /** Finds a LUN by id (a number or a string of digits) or by name. */
  private find(ref: number | string): LunEntry | undefined {
    let lun: LunEntry | undefined;
    if (typeof ref === 'number' || /^\d{1,9}$/.test(ref)) lun = this.luns.get(Number(ref));
    if (!lun && typeof ref === 'string') lun = [...this.luns.values()].find((l) => l.rec.name === ref);
    return lun && !lun.deleting ? lun : undefined;
  }

  /** Finds a LUN by name only (a name made of digits is not taken as an id). */
  getLunByName(name: string): LunInfo | undefined {
    const lun = [...this.luns.values()].find((l) => l.rec.name === name && !l.deleting);
    return lun ? this.info(lun) : undefined;
  }

  getLun(ref: number | string): LunInfo | undefined {
    const lun = this.find(ref);
    return lun ? this.info(lun) : undefined;
  }

  /** The shared backing device of an online LUN. */
  device(ref: number | string): BlockDevice | undefined {
    const lun = this.find(ref);
    return lun?.state === 'online' ? lun.device : undefined;
  }

  /**
   * Puts a layer on top of every LUN's device for host I/O (the NBD catalog); `device()` stays
   * the device below it. One upper device per LUN, kept while the LUN's device is the same.
   */
  setLayer(layer: (lunId: number, device: BlockDevice) => BlockDevice): void {
    this.layer = layer;
    this.layered.clear();
  }

  setGuard(guard: (lunId: number, action: 'delete' | 'grow') => string | undefined): void {
    this.guard = guard;
  }

  /**
   * Asked each time a host opens a LUN's export (the catalog's lookup, at NBD_OPT_GO or
   * EXPORT_NAME): true serves it read-only to that session, READ_ONLY in its transmission flags.
   */
  setHostReadOnly(fn: (lunId: number) => boolean): void {
    this.hostReadOnly = fn;
  }

  private hostDevice(l: LunEntry): BlockDevice {
    const lower = l.device!;
    if (!this.layer) return lower;
    const have = this.layered.get(l.rec.id);
    if (have && have.lower === lower) return have.upper;
    const upper = this.layer(l.rec.id, lower);
    this.layered.set(l.rec.id, { lower, upper });
    return upper;
  }

  /** Export catalog for the NBD server: exports named by LUN name; '' is the lowest-id LUN. */
  catalog(): ArrayCatalog {
    const toExport = (l: LunEntry): ArrayExport => ({
      name: l.rec.name,
      description: `sanbox array ${this.name} LUN ${l.rec.id} (${formatSize(l.rec.size)})`,
      device: this.hostDevice(l),
      // settled here, when the export is opened: a LUN promoted later is writable on a new session
      readOnly: this.readOnly || this.hostReadOnly?.(l.rec.id) === true,
    });
    const online = () =>
      [...this.luns.values()].filter((l) => l.state === 'online' && !l.deleting && l.device).sort((a, b) => a.rec.id - b.rec.id);
    return {
      lookup: (name: string) => {
        if (this.closed) return undefined;
        const l = name === '' ? online()[0] : online().find((x) => x.rec.name === name);
        return l ? toExport(l) : undefined;
      },
      list: () => (this.closed ? [] : online().map(toExport)),
    };
  }

  // ---- mutations ----

  private exclusive<R>(fn: () => Promise<R>): Promise<R> {
    return this.mutations.run(async () => {
      if (this.closed) throw new ArrayError('closed', `array ${this.name} is closed`);
      return fn();
    });
  }

  private refuseReadOnly(what: string): void {
    if (this.readOnly) throw new ArrayError('read-only', `array ${this.name} is read-only: cannot ${what}`);
  }

  createLun(opts: CreateLunOptions): Promise<LunInfo> {
    return this.exclusive(async () => {
      if (!opts.provision) this.refuseReadOnly('create LUNs');
      const { name, size, blockSize } = checkCreateRequest(opts);
      if ([...this.luns.values()].some((l) => l.rec.name === name)) {
        throw new ArrayError('exists', `LUN ${JSON.stringify(name)} already exists in array ${this.name}`);
      }
      const { id, path, device } = await createLunImage(this.dir, this.meta.nextLunId, (n) => this.luns.has(n), size, blockSize, this.readOnly, (type, details) => this.record(type, details));
      const rec: LunRecord = {
        id,
        name,
        size,
        blockSize: blockSize as BlockSizeValue,
        image: relOrAbs(this.dir, path),
        created: new Date().toISOString(),
      };
      const next: ArrayMetadata = { ...this.meta, nextLunId: id + 1, luns: [...this.meta.luns, rec] };
      try {
        await this.store.save(next);
      } catch (e) {
        await ignoreOnClose(device.close(), 'undoing a LUN create whose metadata save failed: closing its image');
        await fsp.rm(path, { force: true });
        throw new ArrayError('io', `cannot save metadata: ${(e as Error).message}`);
      }
      this.meta = next;
      const lun: LunEntry = { rec, device, state: 'online' };
      this.luns.set(id, lun);
      const info = this.info(lun);
      this.record('lun.created', { lun: id, name, size, blockSize, image: info.imagePath });
      return info;
    });
  }

  deleteLun(ref: number | string, opts: DeleteLunOptions = {}): Promise<LunInfo> {
    return this.exclusive(async () => {
      this.refuseReadOnly('delete LUNs');
      const lun = this.findOrThrow(ref);
      const name = lun.rec.name;
      const why = this.guard?.(lun.rec.id, 'delete');
      if (why) throw new ArrayError('busy', `LUN ${name} cannot be deleted: ${why}`);
      const control = this.sessions.current;
      const sessions = control && lun.state === 'online' ? control.sessionCount(name) : 0;
      if (sessions > 0 && !opts.force) {
        throw new ArrayError('busy', `LUN ${name} has ${sessions} open NBD session(s); disconnect them or force the delete`);
      }
      const info = this.info(lun);
      lun.deleting = true; // no new sessions from here on
      try {
        if (sessions > 0) await control!.disconnectExport(name);
        const next: ArrayMetadata = { ...this.meta, luns: this.meta.luns.filter((r) => r.id !== lun.rec.id) };
        await this.store.save(next);
        this.meta = next;
      } catch (e) {
        lun.deleting = false;
        throw new ArrayError('io', `cannot delete LUN ${name}: ${(e as Error).message}`);
      }
      this.luns.delete(lun.rec.id);
      if (lun.device) await ignoreOnClose(lun.device.close(), 'deleting a LUN: closing its image before removing it');
      const path = imagePathOf(this.dir, lun.rec);
      try {
        await fsp.rm(path, { force: true });
      } catch (e) {
        this.record('array.orphan-image', { path, problem: `could not remove the image of deleted LUN ${name}: ${(e as Error).message}` });
      }
      this.record('lun.deleted', { lun: lun.rec.id, name, forced: sessions > 0, sessionsDisconnected: sessions });
      return { ...info, sessions: 0 };
    });
  }

  /**
   * Grows a LUN to `target` bytes, or by `{ by }` bytes: the relative grow reads the size inside
   * the array's serialization of LUN changes, so concurrent relative grows each add their amount.
   */
  growLun(ref: number | string, target: number | { by: number }): Promise<LunInfo> {
    return this.exclusive(async () => {
      this.refuseReadOnly('grow LUNs');
      const lun = this.findOrThrow(ref);
      const rec = lun.rec;
      const why = this.guard?.(rec.id, 'grow');
      if (why) throw new ArrayError('busy', `LUN ${rec.name} cannot be grown: ${why}`);
      const newSize = growTarget(rec, target);
      if (lun.state !== 'online' || !lun.device) {
        throw new ArrayError('io', `LUN ${rec.name} is ${lun.state}: ${lun.problem ?? 'not online'}`);
      }
      const oldSize = rec.size;
      // Metadata first: a crash before the file grows leaves a short file, which open() extends.
      const grown: LunRecord = { ...rec, size: newSize };
      const next: ArrayMetadata = { ...this.meta, luns: this.meta.luns.map((r) => (r.id === rec.id ? grown : r)) };
      try {
        await this.store.save(next);
      } catch (e) {
        throw new ArrayError('io', `cannot save metadata: ${(e as Error).message}`);
      }
      try {
        await lun.device.grow(newSize);
      } catch (e) {
        // Roll the metadata back so it matches the image again. Should that fail too, the
        // metadata says the larger size and the next open extends the short image file.
        const rollback = await this.store.save(this.meta).then(
          () => '',
          (e2: unknown) => `; the metadata still says ${newSize} bytes (rolling it back failed: ${(e2 as Error).message}), so the next open grows the image`,
        );
        if (tooLarge(e)) throw new ArrayError('refused', `size ${newSize} (${formatSize(newSize)}) is more than the file system holding ${this.dir} can hold in one image file (EFBIG); LUN ${rec.name} is left at ${oldSize} bytes${rollback}`);
        throw new ArrayError('io', `cannot grow image of LUN ${rec.name}: ${(e as Error).message}${rollback}`);
      }
      this.meta = next;
      lun.rec = grown;
      this.record('lun.grown', { lun: rec.id, name: rec.name, oldSize, size: newSize });
      return this.info(lun);
    });
  }

  /** The LUN's fence, looked up on every host write (src/block/fence.ts). */
  fenceOf(lunId: number): LunFence | undefined {
    return this.luns.get(lunId)?.rec.fenced;
  }

  setAfterFence(fn: () => Promise<void>): void {
    this.afterFence = fn;
  }

  /** Fences a LUN (host writes refused) or lifts its fence (`fence` null); persisted in its record. The same request again changes nothing. */
  fenceLun(ref: number | string, fence: { reason: string; by: string } | null, by: string): Promise<LunInfo> {
    return this.exclusive(async () => {
      this.refuseReadOnly('fence LUNs');
      const lun = this.findOrThrow(ref);
      const c = fenceChange(lun.rec, fence, by);
      if (!c) return this.info(lun);
      const next: ArrayMetadata = { ...this.meta, luns: this.meta.luns.map((r) => (r.id === c.next.id ? c.next : r)) };
      await this.store.save(next).catch((e: unknown) => Promise.reject(new ArrayError('io', `cannot save metadata: ${(e as Error).message}`)));
      this.meta = next;
      lun.rec = c.next;
      this.record(fence ? 'lun.fenced' : 'lun.unfenced', c.details);
      await ignoreOnClose(this.afterFence?.(), 'telling the SPs a fence change'); // they get it at their next push or boot
      return this.info(lun);
    });
  }

  private findOrThrow(ref: number | string): LunEntry {
    const lun = this.find(ref);
    if (!lun) throw new ArrayError('not-found', `no LUN ${JSON.stringify(ref)} in array ${this.name}`);
    return lun;
  }

  /** Metadata as stored (for status and tests). */
  metadata(): ArrayMetadata {
    return structuredClone(this.meta);
  }

  get metadataGeneration(): number {
    return this.store.currentGeneration;
  }

  /** Closes every LUN's backing store and releases the directory lock. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.mutations.drained();
    this.closed = true;
    for (const lun of this.luns.values()) {
      if (lun.device) {
        await ignoreOnClose(lun.device.flush(), 'closing the array: flushing a LUN image');
        await ignoreOnClose(lun.device.close(), 'closing the array: closing a LUN image');
      }
    }
    this.sessions.detach();
    this.record('array.closed', {});
    // A lock left behind is taken over as stale by the next open.
    await ignoreOnClose(fsp.rm(this.lockPath, { force: true }), 'closing the array: removing the lock file');
  }
}
