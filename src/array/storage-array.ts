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
 */
import { EventEmitter } from 'node:events';
import { promises as fsp, constants as fsc } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { FileBackingStore, type BlockDevice } from '../block/index.js';
import { MetadataStore, MetadataError, type LoadResult } from '../metadata/index.js';
import { formatSize } from './size.js';

export const METADATA_FORMAT = 'sanbox-array/1';
export const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
export const BLOCK_SIZES = [512, 4096] as const;
export type BlockSizeValue = (typeof BLOCK_SIZES)[number];
/** Largest LUN: 2^53 - 2^12 would be the safe-integer bound; keep to 1 PiB, far beyond any lab. */
export const MAX_LUN_SIZE = 2 ** 50;
/** How many recent events are kept for replay. */
export const EVENT_HISTORY = 1000;

export interface LunRecord {
  id: number;
  name: string;
  /** Bytes, a positive multiple of blockSize. */
  size: number;
  blockSize: BlockSizeValue;
  /** Image file, relative to the array directory (or absolute if outside it). */
  image: string;
  /** ISO 8601. */
  created: string;
}

export interface ArrayMetadata {
  format: typeof METADATA_FORMAT;
  array: string;
  nextLunId: number;
  luns: LunRecord[];
}

export type LunState = 'online' | 'missing' | 'error';

export interface LunInfo extends LunRecord {
  /** Absolute path of the image file. */
  imagePath: string;
  /** online: exported; missing: the image file is gone; error: it could not be opened. */
  state: LunState;
  /** Why the LUN is not online. */
  problem?: string;
  readOnly: boolean;
  /** Open NBD sessions on this LUN (0 when no session tracker is attached). */
  sessions: number;
}

export interface ArrayEvent {
  seq: number;
  time: string;
  array: string;
  type: string;
  [key: string]: unknown;
}

/** What the array needs from the NBD server (NbdServer satisfies it). */
export interface SessionControl {
  sessionCount(exportName?: string): number;
  disconnectExport(name: string): Promise<void>;
  on?(event: string, listener: (...args: any[]) => void): unknown;
  off?(event: string, listener: (...args: any[]) => void): unknown;
}

/** Structurally the NBD server's `NbdExport` / `ExportCatalog`. */
export interface ArrayExport {
  name: string;
  description?: string;
  device: BlockDevice;
  readOnly?: boolean;
}
export interface ArrayCatalog {
  lookup(name: string): ArrayExport | undefined;
  list(): ArrayExport[];
}

export type ArrayErrorCode =
  | 'invalid-argument'
  | 'not-found'
  | 'exists'
  | 'busy'
  | 'read-only'
  | 'metadata-corrupt'
  | 'metadata-mismatch'
  | 'io'
  | 'closed';

export class ArrayError extends Error {
  constructor(
    readonly code: ArrayErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ArrayError';
  }
}

export interface OpenArrayOptions {
  /** Array name (validated like a LUN name). */
  name: string;
  /** Array directory: metadata copies, lock file and (by default) image files. */
  dir: string;
  /** Export every LUN read-only and refuse management changes (create/delete/grow). */
  readOnly?: boolean;
  /** Skip fsync of metadata (tests only). */
  noSync?: boolean;
}

export interface CreateLunOptions {
  name: string;
  size: number;
  blockSize?: number;
  /** Let a read-only array create LUNs (startup provisioning by `serve`/`up`). */
  provision?: boolean;
}

export interface DeleteLunOptions {
  /** Disconnect open NBD sessions instead of refusing. */
  force?: boolean;
}

interface Lun {
  rec: LunRecord;
  device?: FileBackingStore;
  state: LunState;
  problem?: string;
  /** Being deleted: not exported any more. */
  deleting?: boolean;
}

/** Validates a LUN or array name; returns an error message or undefined. */
export function checkName(name: unknown, what = 'LUN name'): string | undefined {
  if (typeof name !== 'string') return `${what} must be a string`;
  if (!NAME_RE.test(name)) return `${what} ${JSON.stringify(name)} is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ -`;
  return undefined;
}

/** Validates a size for a given block size; returns an error message or undefined. */
export function checkSize(size: unknown, blockSize: number): string | undefined {
  if (typeof size !== 'number' || !Number.isSafeInteger(size)) return `size must be an integer number of bytes`;
  if (size <= 0) return `size must be greater than 0`;
  if (size > MAX_LUN_SIZE) return `size ${size} exceeds the maximum of ${MAX_LUN_SIZE} bytes (1P)`;
  if (size % blockSize !== 0) return `size ${size} is not a multiple of the block size ${blockSize}`;
  return undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class StorageArray extends EventEmitter {
  readonly name: string;
  readonly dir: string;
  readonly readOnly: boolean;
  private readonly store: MetadataStore<ArrayMetadata>;
  private meta: ArrayMetadata;
  private readonly luns = new Map<number, Lun>();
  private sessions: SessionControl | undefined;
  private sessionListeners: Array<[string, (...args: any[]) => void]> = [];
  private seq = 0;
  private readonly history: ArrayEvent[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly lockPath: string;
  /** Problems found while opening (corrupt metadata copy, missing images...). */
  readonly openProblems: string[] = [];
  /** Upper layers of each LUN's stack (the replication layer), composed by the service. */
  private layer: ((lunId: number, device: BlockDevice) => BlockDevice) | undefined;
  private readonly layered = new Map<number, { lower: BlockDevice; upper: BlockDevice }>();
  /** Says why a LUN may not be deleted or grown right now (e.g. it is a mirror image). */
  private guard: ((lunId: number, action: 'delete' | 'grow') => string | undefined) | undefined;

  private constructor(opts: OpenArrayOptions, store: MetadataStore<ArrayMetadata>, meta: ArrayMetadata) {
    super();
    this.name = opts.name;
    this.dir = opts.dir;
    this.readOnly = opts.readOnly ?? false;
    this.store = store;
    this.meta = meta;
    this.lockPath = join(opts.dir, 'array.lock');
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
    await StorageArray.lock(dir, opts.name);
    const store = new MetadataStore<ArrayMetadata>(dir, { noSync: opts.noSync });
    let loaded: LoadResult<ArrayMetadata>;
    try {
      try {
        loaded = await store.load();
      } catch (e) {
        if (e instanceof MetadataError) throw new ArrayError('metadata-corrupt', `array ${opts.name}: ${e.message}`);
        throw e;
      }
      let meta = loaded.data;
      if (meta === undefined) {
        const images = (await fsp.readdir(dir)).filter((f) => /^lun\d+\.img$/.test(f));
        if (images.length > 0) {
          throw new ArrayError(
            'metadata-corrupt',
            `array ${opts.name}: ${dir} holds image files (${images.join(', ')}) but no metadata (meta.A/meta.B); ` +
              `refusing to start an empty array over them. Restore the metadata or move the images aside.`,
          );
        }
        meta = { format: METADATA_FORMAT, array: opts.name, nextLunId: 0, luns: [] };
      } else {
        StorageArray.checkMeta(meta, opts.name, dir);
      }
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
      await fsp.rm(join(dir, 'array.lock'), { force: true }).catch(() => undefined);
      throw e;
    }
  }

  private static async lock(dir: string, name: string): Promise<void> {
    const path = join(dir, 'array.lock');
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fh = await fsp.open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644);
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const pid = Number((await fsp.readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isSafeInteger(pid) && pid > 0 && pidAlive(pid)) {
        throw new ArrayError('busy', `array ${name} in ${dir} is already open by process ${pid} (lock file ${path})`);
      }
      await fsp.rm(path, { force: true }); // stale lock of a dead process
    }
    throw new ArrayError('busy', `cannot take the lock ${path}`);
  }

  private static checkMeta(meta: ArrayMetadata, name: string, dir: string): void {
    const m = meta as unknown as Record<string, unknown>;
    if (m === null || typeof m !== 'object' || m.format !== METADATA_FORMAT) {
      throw new ArrayError('metadata-mismatch', `${dir}: metadata format ${JSON.stringify(m?.format)} is not ${METADATA_FORMAT}`);
    }
    if (m.array !== name) {
      throw new ArrayError('metadata-mismatch', `${dir} holds array ${JSON.stringify(m.array)}, not ${JSON.stringify(name)}`);
    }
    if (!Array.isArray(m.luns) || !Number.isSafeInteger(m.nextLunId)) {
      throw new ArrayError('metadata-mismatch', `${dir}: metadata has no LUN table`);
    }
    const ids = new Set<number>();
    const names = new Set<string>();
    for (const l of meta.luns) {
      const problem =
        checkName(l.name) ??
        (BLOCK_SIZES.includes(l.blockSize) ? undefined : `bad block size ${l.blockSize}`) ??
        checkSize(l.size, l.blockSize) ??
        (Number.isSafeInteger(l.id) && l.id >= 0 ? undefined : `bad id ${l.id}`) ??
        (typeof l.image === 'string' && l.image.length > 0 ? undefined : 'no image path') ??
        (ids.has(l.id) ? `duplicate id ${l.id}` : undefined) ??
        (names.has(l.name) ? `duplicate name ${l.name}` : undefined);
      if (problem) throw new ArrayError('metadata-mismatch', `${dir}: LUN ${JSON.stringify(l.name)} in metadata: ${problem}`);
      ids.add(l.id);
      names.add(l.name);
    }
  }

  private imagePathOf(rec: LunRecord): string {
    return isAbsolute(rec.image) ? rec.image : join(this.dir, rec.image);
  }

  private async openLuns(): Promise<void> {
    let changed = false;
    for (const rec of this.meta.luns) {
      const lun: Lun = { rec, state: 'online' };
      this.luns.set(rec.id, lun);
      const path = this.imagePathOf(rec);
      let st;
      try {
        st = await fsp.stat(path);
      } catch (e) {
        lun.state = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'error';
        lun.problem = `image ${path}: ${(e as Error).message}`;
        this.openProblems.push(`LUN ${rec.name}: ${lun.problem}`);
        this.record('lun.offline', { lun: rec.id, name: rec.name, state: lun.state, problem: lun.problem });
        continue;
      }
      if (st.size < rec.size) {
        // A grow commits the metadata before extending the file; a crash in between leaves the
        // file short. Extending a sparse file only adds zeroes, so finish the grow.
        await fsp.truncate(path, rec.size);
        this.record('lun.repaired', { lun: rec.id, name: rec.name, problem: `image was ${st.size} bytes, extended to ${rec.size}` });
      } else if (st.size > rec.size) {
        if (st.size % rec.blockSize === 0 && st.size <= MAX_LUN_SIZE) {
          // Metadata older than the image (a rolled-back copy): the data is in the image; keep it.
          this.record('lun.repaired', { lun: rec.id, name: rec.name, problem: `image is ${st.size} bytes, metadata said ${rec.size}; adopting the image size` });
          rec.size = st.size;
          changed = true;
        } else {
          lun.state = 'error';
          lun.problem = `image ${path} is ${st.size} bytes, not a multiple of the block size ${rec.blockSize}`;
          this.openProblems.push(`LUN ${rec.name}: ${lun.problem}`);
          this.record('lun.offline', { lun: rec.id, name: rec.name, state: lun.state, problem: lun.problem });
          continue;
        }
      }
      try {
        lun.device = await FileBackingStore.open(path, { readOnly: this.readOnly, blockSize: rec.blockSize });
      } catch (e) {
        lun.state = 'error';
        lun.problem = `cannot open image ${path}: ${(e as Error).message}`;
        this.openProblems.push(`LUN ${rec.name}: ${lun.problem}`);
        this.record('lun.offline', { lun: rec.id, name: rec.name, state: lun.state, problem: lun.problem });
      }
    }
    if (changed) await this.store.save(this.meta);
  }

  // ---- events ----

  private record(type: string, details: Record<string, unknown> = {}): ArrayEvent {
    const ev: ArrayEvent = { seq: ++this.seq, time: new Date().toISOString(), array: this.name, type, ...details };
    this.history.push(ev);
    if (this.history.length > EVENT_HISTORY) this.history.shift();
    this.emit('event', ev);
    return ev;
  }

  /** Records an event on behalf of a composing layer (NBD server, control plane). */
  publish(type: string, details: Record<string, unknown> = {}): ArrayEvent {
    return this.record(type, details);
  }

  /** Recent events with seq > `afterSeq` (all kept ones when afterSeq is beyond the last). */
  eventsSince(afterSeq: number): ArrayEvent[] {
    if (!Number.isFinite(afterSeq) || afterSeq > this.seq) return [...this.history];
    return this.history.filter((e) => e.seq > afterSeq);
  }

  get lastSeq(): number {
    return this.seq;
  }

  // ---- sessions ----

  /** Attaches the NBD server: session counts, forced disconnects, session events. */
  attachSessions(sessions: SessionControl): void {
    this.detachSessions();
    this.sessions = sessions;
    if (sessions.on) {
      const open = (s: { id?: unknown; remote?: unknown; export?: unknown }) =>
        this.record('session.opened', { session: s?.id, remote: s?.remote, export: s?.export });
      const close = (s: { id?: unknown; export?: unknown; reason?: unknown }) =>
        this.record('session.closed', { session: s?.id, export: s?.export, reason: s?.reason });
      sessions.on('session-open', open);
      sessions.on('session-close', close);
      this.sessionListeners = [
        ['session-open', open],
        ['session-close', close],
      ];
    }
  }

  private detachSessions(): void {
    if (this.sessions?.off) for (const [ev, fn] of this.sessionListeners) this.sessions.off(ev, fn);
    this.sessionListeners = [];
    this.sessions = undefined;
  }

  // ---- queries ----

  private info(lun: Lun): LunInfo {
    return {
      ...lun.rec,
      imagePath: this.imagePathOf(lun.rec),
      state: lun.state,
      ...(lun.problem ? { problem: lun.problem } : {}),
      readOnly: this.readOnly,
      sessions: this.sessions && lun.state === 'online' ? this.sessions.sessionCount(lun.rec.name) : 0,
    };
  }

  listLuns(): LunInfo[] {
    return [...this.luns.values()].filter((l) => !l.deleting).sort((a, b) => a.rec.id - b.rec.id).map((l) => this.info(l));
  }

  /** Finds a LUN by id (a number or a string of digits) or by name. */
  private find(ref: number | string): Lun | undefined {
    let lun: Lun | undefined;
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

  private hostDevice(l: Lun): BlockDevice {
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
    const toExport = (l: Lun): ArrayExport => ({
      name: l.rec.name,
      description: `sanbox array ${this.name} LUN ${l.rec.id} (${formatSize(l.rec.size)})`,
      device: this.hostDevice(l),
      readOnly: this.readOnly,
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
    const run = this.chain.then(() => {
      if (this.closed) throw new ArrayError('closed', `array ${this.name} is closed`);
      return fn();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private refuseReadOnly(what: string): void {
    if (this.readOnly) throw new ArrayError('read-only', `array ${this.name} is read-only: cannot ${what}`);
  }

  createLun(opts: CreateLunOptions): Promise<LunInfo> {
    return this.exclusive(async () => {
      if (!opts.provision) this.refuseReadOnly('create LUNs');
      const o = (opts ?? {}) as Partial<CreateLunOptions>;
      const nameErr = checkName(o.name);
      if (nameErr) throw new ArrayError('invalid-argument', nameErr);
      const blockSize = o.blockSize ?? 512;
      if (!BLOCK_SIZES.includes(blockSize as BlockSizeValue)) {
        throw new ArrayError('invalid-argument', `block size ${JSON.stringify(blockSize)} must be 512 or 4096`);
      }
      const sizeErr = checkSize(o.size, blockSize);
      if (sizeErr) throw new ArrayError('invalid-argument', sizeErr);
      const name = o.name!;
      const size = o.size!;
      if ([...this.luns.values()].some((l) => l.rec.name === name)) {
        throw new ArrayError('exists', `LUN ${JSON.stringify(name)} already exists in array ${this.name}`);
      }
      // Never overwrite an image that exists without a LUN (left by an interrupted create or a
      // rolled-back metadata copy): skip to the next free id instead.
      let id = this.meta.nextLunId;
      let path: string;
      for (;;) {
        path = join(this.dir, `lun${id}.img`);
        if (!this.luns.has(id) && !(await exists(path))) break;
        if (!this.luns.has(id)) this.record('array.orphan-image', { path, problem: 'image file without a LUN; left untouched' });
        id++;
      }
      try {
        await FileBackingStore.create(path, size);
      } catch (e) {
        throw new ArrayError('io', `cannot create image ${path}: ${(e as Error).message}`);
      }
      let device: FileBackingStore;
      try {
        device = await FileBackingStore.open(path, { readOnly: this.readOnly, blockSize });
      } catch (e) {
        await fsp.rm(path, { force: true });
        throw new ArrayError('io', `cannot open image ${path}: ${(e as Error).message}`);
      }
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
        await device.close().catch(() => undefined);
        await fsp.rm(path, { force: true });
        throw new ArrayError('io', `cannot save metadata: ${(e as Error).message}`);
      }
      this.meta = next;
      const lun: Lun = { rec, device, state: 'online' };
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
      const sessions = this.sessions && lun.state === 'online' ? this.sessions.sessionCount(name) : 0;
      if (sessions > 0 && !opts.force) {
        throw new ArrayError('busy', `LUN ${name} has ${sessions} open NBD session(s); disconnect them or force the delete`);
      }
      const info = this.info(lun);
      lun.deleting = true; // no new sessions from here on
      try {
        if (sessions > 0) await this.sessions!.disconnectExport(name);
        const next: ArrayMetadata = { ...this.meta, luns: this.meta.luns.filter((r) => r.id !== lun.rec.id) };
        await this.store.save(next);
        this.meta = next;
      } catch (e) {
        lun.deleting = false;
        throw new ArrayError('io', `cannot delete LUN ${name}: ${(e as Error).message}`);
      }
      this.luns.delete(lun.rec.id);
      await lun.device?.close().catch(() => undefined);
      const path = this.imagePathOf(lun.rec);
      try {
        await fsp.rm(path, { force: true });
      } catch (e) {
        this.record('array.orphan-image', { path, problem: `could not remove the image of deleted LUN ${name}: ${(e as Error).message}` });
      }
      this.record('lun.deleted', { lun: lun.rec.id, name, forced: sessions > 0, sessionsDisconnected: sessions });
      return { ...info, sessions: 0 };
    });
  }

  growLun(ref: number | string, newSize: number): Promise<LunInfo> {
    return this.exclusive(async () => {
      this.refuseReadOnly('grow LUNs');
      const lun = this.findOrThrow(ref);
      const rec = lun.rec;
      const why = this.guard?.(rec.id, 'grow');
      if (why) throw new ArrayError('busy', `LUN ${rec.name} cannot be grown: ${why}`);
      const sizeErr = checkSize(newSize, rec.blockSize);
      if (sizeErr) throw new ArrayError('invalid-argument', sizeErr);
      if (newSize <= rec.size) {
        throw new ArrayError('invalid-argument', `LUN ${rec.name} is ${rec.size} bytes; it can only grow (asked ${newSize})`);
      }
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
        // Roll the metadata back so it matches the image again.
        await this.store.save(this.meta).catch(() => undefined);
        throw new ArrayError('io', `cannot grow image of LUN ${rec.name}: ${(e as Error).message}`);
      }
      this.meta = next;
      lun.rec = grown;
      this.record('lun.grown', { lun: rec.id, name: rec.name, oldSize, size: newSize });
      return this.info(lun);
    });
  }

  private findOrThrow(ref: number | string): Lun {
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
    await this.chain;
    this.closed = true;
    for (const lun of this.luns.values()) {
      if (lun.device) {
        await lun.device.flush().catch(() => undefined);
        await lun.device.close().catch(() => undefined);
      }
    }
    this.detachSessions();
    this.record('array.closed', {});
    await fsp.rm(this.lockPath, { force: true }).catch(() => undefined);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.lstat(path);
    return true;
  } catch {
    return false;
  }
}

function relOrAbs(dir: string, path: string): string {
  const rel = relative(dir, path);
  return rel.startsWith('..' + sep) || rel === '..' || isAbsolute(rel) ? path : rel;
}
