import {
  assertRange,
  BlockError,
  type BlockDevice,
  type DeviceCapabilities,
  type Extent,
  type WriteOptions,
  type ZeroOptions,
} from '../../block/device.js';
import type { BudgetMember, CacheBudget } from './budget.js';
import { CacheCore, type CacheEvent, type CacheMode } from './core.js';
import { Destager } from './destage.js';
import type { CacheMirror, MirrorPage } from './mirror.js';
import { blockStatusCached, readCached } from './read-path.js';
import { discardRange, writeBack, writeThrough } from './write-path.js';

export type { CacheEvent, CacheMode } from './core.js';

/** Defaults of the options below. */
export const DEFAULT_IDLE_MS = 200;
export const DEFAULT_DESTAGE_BATCH_PAGES = 128;
export const DEFAULT_DESTAGE_CONCURRENCY = 4;
export const DEFAULT_DESTAGE_RETRY_MS = 50;
const MIN_PAGE_BYTES = 4096;

export interface WriteCacheOptions {
  lun: number;
  /** The device below (the LUN's backing store). Closed by `close()`. */
  lower: BlockDevice;
  /** The SP's shared cache memory. */
  budget: CacheBudget;
  /** Initial mode (default write-through: nothing is cached until the policy says so). */
  mode?: CacheMode;
  /** Page size: default max(4096, lower.blockSize); a power of two multiple of the block size. */
  pageSize?: number;
  /**
   * Write-back without a mirror is refused (the write goes through instead) unless this is
   * false (benchmarks of single-SP write-back only). Default true.
   */
  requireMirror?: boolean;
  /** Background destaging (watermarks, idle timer, write-through drain). Default true. */
  autoDestage?: boolean;
  /** Destage everything after this long without a write; 0 disables. Default 200 ms. */
  idleMs?: number;
  /** Pages per destage batch (adjacent pages are coalesced into one write). Default 128. */
  destageBatchPages?: number;
  /** Destage batches writing at once (each may then wait for its flush: 4x as many in flight). Default 4. */
  destageConcurrency?: number;
  /** Flush below after each destage batch before the peer may drop its copy. Default true. */
  durableDestage?: boolean;
  /** Generations of this cache start above this (takeover: above anything the peer held). */
  initialGeneration?: number;
  /** Wait this long before retrying background destaging after a failure. Default 50 ms. */
  retryMs?: number;
  onEvent?: (e: CacheEvent) => void;
}


/**
 * Write cache of one LUN on one SP: a BlockDevice layer over the LUN's backing store.
 * See ./index.ts for the semantics (modes, FUA/FLUSH, ordering, invariants). The state and
 * page index are ./core.ts, the read path ./read-path.ts, the write paths ./write-path.ts,
 * destaging ./destage.ts; this class is the device, mode switching and cache management.
 */
export class WriteCache implements BlockDevice, BudgetMember {
  readonly lun: number;
  readonly blockSize: number;
  readonly readOnly: boolean;
  readonly capabilities: DeviceCapabilities;
  readonly pageSize: number;

  private readonly c: CacheCore;
  private readonly destager: Destager;

  constructor(opts: WriteCacheOptions) {
    const { lower } = opts;
    this.lun = opts.lun;
    this.blockSize = lower.blockSize;
    this.readOnly = lower.readOnly;
    this.pageSize = opts.pageSize ?? Math.max(MIN_PAGE_BYTES, lower.blockSize);
    if (!Number.isSafeInteger(this.pageSize) || this.pageSize < lower.blockSize || this.pageSize % lower.blockSize !== 0 || (this.pageSize & (this.pageSize - 1)) !== 0) {
      throw new BlockError('EINVAL', `page size ${this.pageSize} must be a power of two multiple of the block size ${lower.blockSize}`);
    }
    this.c = new CacheCore({
      lun: opts.lun,
      lower,
      budget: opts.budget,
      member: this,
      pageSize: this.pageSize,
      mode: opts.mode ?? 'write-through',
      requireMirror: opts.requireMirror ?? true,
      initialGeneration: opts.initialGeneration ?? 0,
      onEvent: opts.onEvent,
    });
    this.destager = new Destager(this.c, {
      autoDestage: opts.autoDestage ?? true,
      idleMs: opts.idleMs ?? DEFAULT_IDLE_MS,
      batchPages: Math.max(1, opts.destageBatchPages ?? DEFAULT_DESTAGE_BATCH_PAGES),
      concurrency: Math.max(1, opts.destageConcurrency ?? DEFAULT_DESTAGE_CONCURRENCY),
      durableDestage: opts.durableDestage ?? true,
      retryMs: opts.retryMs ?? DEFAULT_DESTAGE_RETRY_MS,
    });
    this.capabilities = { ...lower.capabilities };
    opts.budget.register(this);
  }

  // ---- state ---------------------------------------------------------------------------------

  /** The LUN's size: the lower device's, which grows with the LUN. */
  get size(): number {
    return this.c.size;
  }
  get mode(): CacheMode {
    return this.c.mode;
  }
  get mirror(): CacheMirror | null {
    return this.c.mirror;
  }
  get dirtyBytes(): number {
    return this.c.dirtyBytes;
  }
  get dirtyPageCount(): number {
    return this.c.dirty.size;
  }
  /** Newest generation handed out. */
  get currentGeneration(): number {
    return this.c.generation;
  }
  /** Last background destage failure (cleared by the next successful batch). */
  get destageError(): Error | null {
    return this.destager.lastError;
  }
  /** True when write-back writes are currently cached (mode and mirror allow it). */
  get writeBackActive(): boolean {
    return this.c.writeBackAllowed();
  }
  /** Destage batches in flight right now. */
  get destagesInFlight(): number {
    return this.destager.inFlight;
  }

  // ---- mode switching ------------------------------------------------------------------------

  /**
   * Switches mode. Switching to write-through starts draining every dirty page; writes already
   * past their mode check finish in the mode they started in.
   */
  setMode(mode: CacheMode): void {
    if (mode !== 'write-back' && mode !== 'write-through') throw new BlockError('EINVAL', `unknown cache mode ${String(mode)}`);
    if (mode === this.c.mode) return;
    const from = this.c.mode;
    this.c.mode = mode;
    this.c.emit({ type: 'mode', lun: this.lun, from, to: mode });
    this.destager.schedule();
  }

  /**
   * Connects the peer: tells it to forget whatever it held for this LUN and sends the whole
   * current dirty set, so every dirty page is held on both SPs once this resolves. On failure
   * the cache is left without a mirror and the error is rethrown.
   */
  async attachMirror(m: CacheMirror): Promise<void> {
    const c = this.c;
    c.assertOpen();
    c.mirror = m;
    c.forgetPeer();
    const pages = c.snapshotPages();
    try {
      await Promise.all([m.reset(this.lun), pages.length ? m.mirror(this.lun, pages) : Promise.resolve()]);
    } catch (e) {
      if (c.mirror === m) c.mirror = null;
      c.emit({ type: 'mirror-error', lun: this.lun, op: 'reset', error: (e as Error).message });
      throw new BlockError('EIO', `attaching the peer mirror of LUN ${this.lun}: ${(e as Error).message}`);
    }
    for (const p of pages) c.notePeerHeld(p.index, p.generation);
  }

  /**
   * The peer is gone (dead, or it will drop its cache before it serves again): stop mirroring.
   * Write-back is refused from now on unless `requireMirror` is false.
   */
  detachMirror(): void {
    this.c.mirror = null;
    this.c.forgetPeer();
    this.destager.schedule();
  }

  // ---- BlockDevice ---------------------------------------------------------------------------

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.c.assertOpen();
    assertRange(this, offset, length);
    return readCached(this.c, offset, length, into);
  }

  async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    const c = this.c;
    c.assertWritable();
    assertRange(this, offset, data.length);
    if (data.length === 0) {
      if (opts?.fua) await this.flush();
      return;
    }
    this.destager.touch();
    if (!c.writeBackAllowed()) {
      if (c.mode === 'write-back') c.emit({ type: 'write-through-fallback', lun: this.lun, reason: 'no-mirror' });
      return writeThrough(c, offset, data);
    }
    if (opts?.fua && !c.mirror) return writeThrough(c, offset, data);
    return writeBack(c, this.destager, offset, data);
  }

  /**
   * Write-back: every completed write is already in both SPs' caches, so this only makes
   * durable the trims/zeroes that went below without FUA. Write-through (or no mirror): writes
   * every page that was dirty when called, then flushes below.
   */
  async flush(): Promise<void> {
    const c = this.c;
    c.assertOpen();
    if (this.readOnly) return;
    if (c.writeBackAllowed() && c.mirror) {
      if (c.lowerUnflushed) {
        c.lowerUnflushed = false;
        await c.lower.flush();
      }
      return;
    }
    await this.destager.destageSnapshot();
    c.lowerUnflushed = false;
    await c.lower.flush();
  }

  trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    return discardRange(this.c, this.destager, 'trim', offset, length, opts ?? {});
  }

  writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    return discardRange(this.c, this.destager, 'zero', offset, length, opts ?? {});
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.c.assertOpen();
    assertRange(this, offset, length);
    return blockStatusCached(this.c, offset, length);
  }

  async cache(offset: number, length: number): Promise<void> {
    this.c.assertOpen();
    assertRange(this, offset, length);
    await this.c.lower.cache(offset, length);
  }

  /** Destages everything, stops background work, leaves the budget and closes the device below. */
  async close(): Promise<void> {
    const c = this.c;
    if (c.closed) return;
    if (!this.readOnly) await this.destageAll();
    c.closed = true;
    this.destager.clearTimers();
    c.budget.unregister(this);
    await c.lower.close();
  }

  // ---- cache management ----------------------------------------------------------------------

  /**
   * Writes every dirty page below and flushes, until the cache is empty (the caller quiesces
   * host I/O first: before trespass or shutdown). Rejects if a destage fails.
   */
  async destageAll(): Promise<void> {
    this.c.assertOpen();
    await this.destager.destageAll();
  }

  /**
   * Runs one destage batch of up to `maxPages` oldest unlocked dirty pages now, whatever the
   * watermarks say (tests and callers that schedule destaging themselves). Resolves with the
   * number of pages written.
   */
  async destageStep(maxPages = this.destager.o.batchPages): Promise<number> {
    this.c.assertOpen();
    return this.destager.step(maxPages);
  }

  /** Copies of every dirty page, by index (for the vault). */
  dirtyPages(): MirrorPage[] {
    return this.c.snapshotPages();
  }

  /**
   * Installs pages as dirty (vault restore, or the peer's mirror copy on takeover). Must run
   * before host I/O to these pages; throws if any page is already cached. Pages that do not fit
   * the budget are written below at once. When a mirror is attached, the loaded pages are
   * mirrored before this resolves.
   */
  async loadDirty(pages: readonly MirrorPage[]): Promise<void> {
    const c = this.c;
    c.assertWritable();
    const sorted = [...pages].sort((a, b) => a.index - b.index);
    this.checkLoadable(sorted);
    if (sorted.length === 0) return;
    const indexes = sorted.map((p) => p.index);
    await c.locks.lockAll(indexes);
    try {
      for (const p of sorted) if (c.dirty.has(p.index)) throw new BlockError('EINVAL', `page ${p.index} of LUN ${this.lun} was written while loading`);
      const maxGen = Math.max(...sorted.map((p) => p.generation));
      if (maxGen > c.generation) c.generation = maxGen;
      const overflow: MirrorPage[] = [];
      const installed: MirrorPage[] = [];
      for (const p of sorted) {
        if (c.tryReserve(this.pageSize)) {
          c.installPage(p.index, p.data, p.generation);
          // The caller's buffer (unchanged during the call) is what the mirror copies from.
          installed.push({ index: p.index, generation: p.generation, data: p.data });
        } else {
          overflow.push(p);
        }
      }
      for (const p of overflow) await c.lower.write(p.index * this.pageSize, c.clip(p.index, p.data));
      if (overflow.length) await c.lower.flush();
      await this.mirrorLoaded(installed);
    } finally {
      c.locks.unlockAll(indexes);
    }
    c.afterChange();
    this.destager.schedule();
  }

  private checkLoadable(sorted: readonly MirrorPage[]): void {
    const maxIndex = Math.ceil(this.size / this.pageSize) - 1;
    for (let i = 0; i < sorted.length; i++) {
      const p = sorted[i]!;
      if (p.data.length !== this.pageSize) throw new BlockError('EINVAL', `loaded page ${p.index} is ${p.data.length} bytes, page size is ${this.pageSize}`);
      if (!Number.isSafeInteger(p.index) || p.index < 0 || p.index > maxIndex) throw new BlockError('EINVAL', `loaded page ${p.index} outside LUN ${this.lun}`);
      if (i > 0 && sorted[i - 1]!.index === p.index) throw new BlockError('EINVAL', `page ${p.index} loaded twice`);
      if (this.c.dirty.has(p.index)) throw new BlockError('EINVAL', `page ${p.index} of LUN ${this.lun} is already cached; load before serving I/O`);
    }
  }

  private async mirrorLoaded(installed: MirrorPage[]): Promise<void> {
    const c = this.c;
    const m = c.mirror;
    if (!m || !installed.length) return;
    try {
      await m.mirror(this.lun, installed);
    } catch (e) {
      c.emit({ type: 'mirror-error', lun: this.lun, op: 'mirror', error: (e as Error).message });
      throw new BlockError('EIO', `mirroring loaded pages of LUN ${this.lun}: ${(e as Error).message}`);
    }
    if (c.mirror === m) for (const p of installed) c.notePeerHeld(p.index, p.generation);
  }

  /**
   * Forgets every dirty page without writing it (a rebooted SP's stale cache). Waits for
   * destage batches in flight to finish first.
   */
  async dropAll(): Promise<void> {
    await this.destager.settle();
    this.c.dropEverything();
    this.c.afterChange();
  }

  /**
   * In-process emulation of the SP dying: stops all background work, waits for destage writes
   * already issued (a killed process's issued pwrites land or not; here they land), then
   * forgets every page, leaves the budget and refuses further I/O. The device below is left
   * open (the peer's takeover cache wraps it next). Callers must not have host I/O in flight.
   */
  async halt(): Promise<void> {
    const c = this.c;
    if (c.closed) return;
    c.closed = true;
    this.destager.clearTimers();
    await this.destager.settle();
    c.dropEverything();
    c.mirror = null;
    if (c.reservedBytes === 0 && c.requestedBytes === 0) c.budget.unregister(this);
  }

  /** Throws if any invariant is broken (also checked after every state change). */
  checkInvariants(): void {
    this.c.checkInvariants();
  }

  // ---- BudgetMember --------------------------------------------------------------------------

  onPressure(): void {
    this.destager.schedule();
  }
}
