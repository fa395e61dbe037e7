import {
  assertRange,
  BlockError,
  errnoOf,
  type BlockDevice,
  type DeviceCapabilities,
  type Extent,
  type WriteOptions,
  type ZeroOptions,
} from '../../block/device.js';
import type { BudgetMember, CacheBudget } from './budget.js';
import { PageLocks } from './locks.js';
import type { CacheMirror, MirrorPage, PageRef } from './mirror.js';

export type CacheMode = 'write-back' | 'write-through';

export type CacheEvent =
  | { type: 'mode'; lun: number; from: CacheMode; to: CacheMode }
  | { type: 'mirror-error'; lun: number; op: 'mirror' | 'release' | 'discard' | 'reset'; error: string }
  | { type: 'destage-error'; lun: number; error: string }
  | { type: 'write-through-fallback'; lun: number; reason: 'large-write' | 'no-mirror' };

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
  /** Pages per destage batch (adjacent pages are coalesced into one write). Default 64. */
  destageBatchPages?: number;
  /** Destage batches in flight at once. Default 2. */
  destageConcurrency?: number;
  /** Flush below after each destage batch before the peer may drop its copy. Default true. */
  durableDestage?: boolean;
  /** Generations of this cache start above this (takeover: above anything the peer held). */
  initialGeneration?: number;
  /** Wait this long before retrying background destaging after a failure. Default 50 ms. */
  retryMs?: number;
  onEvent?: (e: CacheEvent) => void;
}

interface Page {
  readonly index: number;
  data: Buffer;
  /** Generation of the newest write applied to `data`. */
  gen: number;
  /** A destage batch holds a snapshot of this page. */
  destaging: boolean;
  /** Newest generation known to be on disk. */
  durableGen: number;
}

/** Assert every invariant on every change (tests); otherwise the page walk is amortized. */
const PARANOID = process.env.SANBOX_PARANOID === '1';
const PAGE_WALK_EVERY = 1024;

/**
 * Write cache of one LUN on one SP: a BlockDevice layer over the LUN's backing store.
 * See ./index.ts for the semantics (modes, FUA/FLUSH, ordering, invariants).
 */
export class WriteCache implements BlockDevice, BudgetMember {
  readonly lun: number;
  /** The LUN's size: the lower device's, which grows with the LUN. */
  get size(): number {
    return this.lower.size;
  }
  readonly blockSize: number;
  readonly readOnly: boolean;
  readonly capabilities: DeviceCapabilities;
  readonly pageSize: number;

  private readonly lower: BlockDevice;
  private readonly budget: CacheBudget;
  private modeValue: CacheMode;
  private mirrorRef: CacheMirror | null = null;
  private readonly requireMirror: boolean;
  private readonly autoDestage: boolean;
  private readonly idleMs: number;
  private readonly batchPages: number;
  private readonly concurrency: number;
  private readonly durableDestage: boolean;
  private readonly retryMs: number;
  private readonly onEvent: ((e: CacheEvent) => void) | undefined;

  /** Dirty pages, oldest first (Map keeps first-dirty order). Only dirty pages are cached. */
  private readonly dirty = new Map<number, Page>();
  private readonly locks = new PageLocks();
  private generation: number;
  /** Pages the peer may hold a copy of, with the newest generation sent (until released). */
  private readonly peerHeld = new Map<number, number>();
  /** Releases that failed; retried after the next destage batch. */
  private pendingRelease: PageRef[] = [];
  /** Granted budget not yet turned into pages, and budget requested but not yet granted. */
  private reservedBytes = 0;
  private requestedBytes = 0;
  private inflightBatches = 0;
  private drainRequests = 0;
  private idle = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private scheduled = false;
  private batchFailures = 0;
  private lastDestageError: Error | null = null;
  private progressWaiters: (() => void)[] = [];
  /** A trim/zero went below without FUA since the last flush below. */
  private lowerUnflushed = false;
  private closed = false;

  constructor(opts: WriteCacheOptions) {
    const { lower } = opts;
    this.lun = opts.lun;
    this.lower = lower;
    this.budget = opts.budget;
    this.blockSize = lower.blockSize;
    this.readOnly = lower.readOnly;
    this.pageSize = opts.pageSize ?? Math.max(4096, lower.blockSize);
    if (!Number.isSafeInteger(this.pageSize) || this.pageSize < lower.blockSize || this.pageSize % lower.blockSize !== 0 || (this.pageSize & (this.pageSize - 1)) !== 0) {
      throw new BlockError('EINVAL', `page size ${this.pageSize} must be a power of two multiple of the block size ${lower.blockSize}`);
    }
    this.modeValue = opts.mode ?? 'write-through';
    this.requireMirror = opts.requireMirror ?? true;
    this.autoDestage = opts.autoDestage ?? true;
    this.idleMs = opts.idleMs ?? 200;
    this.batchPages = Math.max(1, opts.destageBatchPages ?? 64);
    this.concurrency = Math.max(1, opts.destageConcurrency ?? 2);
    this.durableDestage = opts.durableDestage ?? true;
    this.retryMs = opts.retryMs ?? 50;
    this.generation = opts.initialGeneration ?? 0;
    this.onEvent = opts.onEvent;
    this.capabilities = { ...lower.capabilities };
    this.budget.register(this);
  }

  // ---- state ---------------------------------------------------------------------------------

  get mode(): CacheMode {
    return this.modeValue;
  }
  get mirror(): CacheMirror | null {
    return this.mirrorRef;
  }
  get dirtyBytes(): number {
    return this.dirty.size * this.pageSize;
  }
  get dirtyPageCount(): number {
    return this.dirty.size;
  }
  /** Newest generation handed out. */
  get currentGeneration(): number {
    return this.generation;
  }
  /** Last background destage failure (cleared by the next successful batch). */
  get destageError(): Error | null {
    return this.lastDestageError;
  }
  /** True when write-back writes are currently cached (mode and mirror allow it). */
  get writeBackActive(): boolean {
    return this.writeBackAllowed();
  }

  /**
   * Switches mode. Switching to write-through starts draining every dirty page; writes already
   * past their mode check finish in the mode they started in.
   */
  setMode(mode: CacheMode): void {
    if (mode !== 'write-back' && mode !== 'write-through') throw new BlockError('EINVAL', `unknown cache mode ${String(mode)}`);
    if (mode === this.modeValue) return;
    const from = this.modeValue;
    this.modeValue = mode;
    this.emit({ type: 'mode', lun: this.lun, from, to: mode });
    this.schedule();
  }

  /**
   * Connects the peer: tells it to forget whatever it held for this LUN and sends the whole
   * current dirty set, so every dirty page is held on both SPs once this resolves. On failure
   * the cache is left without a mirror and the error is rethrown.
   */
  async attachMirror(m: CacheMirror): Promise<void> {
    this.assertOpen();
    this.mirrorRef = m;
    this.peerHeld.clear();
    this.pendingRelease = [];
    const pages = this.snapshotPages();
    try {
      await Promise.all([m.reset(this.lun), pages.length ? m.mirror(this.lun, pages) : Promise.resolve()]);
    } catch (e) {
      if (this.mirrorRef === m) this.mirrorRef = null;
      this.emit({ type: 'mirror-error', lun: this.lun, op: 'reset', error: (e as Error).message });
      throw new BlockError('EIO', `attaching the peer mirror of LUN ${this.lun}: ${(e as Error).message}`);
    }
    for (const p of pages) this.notePeerHeld(p.index, p.generation);
  }

  /**
   * The peer is gone (dead, or it will drop its cache before it serves again): stop mirroring.
   * Write-back is refused from now on unless `requireMirror` is false.
   */
  detachMirror(): void {
    this.mirrorRef = null;
    this.peerHeld.clear();
    this.pendingRelease = [];
    this.schedule();
  }

  // ---- BlockDevice ---------------------------------------------------------------------------

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.assertOpen();
    assertRange(this, offset, length);
    if (length === 0) return into ? into.subarray(0, 0) : Buffer.alloc(0);
    // Snapshot the cached bytes now: a page may be destaged and dropped while the read below
    // is in flight, and the read below may have started before the destage landed.
    const overlay: { at: number; bytes: Buffer }[] = [];
    let covered = 0;
    if (this.dirty.size > 0) {
      const ps = this.pageSize;
      const end = offset + length;
      const p0 = Math.floor(offset / ps);
      const p1 = Math.floor((end - 1) / ps);
      const visit = (page: Page): void => {
        const ps0 = page.index * ps;
        const a = Math.max(offset, ps0);
        const b = Math.min(end, ps0 + ps);
        overlay.push({ at: a - offset, bytes: Buffer.from(page.data.subarray(a - ps0, b - ps0)) });
        covered += b - a;
      };
      if (p1 - p0 + 1 <= this.dirty.size) {
        for (let i = p0; i <= p1; i++) {
          const page = this.dirty.get(i);
          if (page) visit(page);
        }
      } else {
        for (const page of this.dirty.values()) if (page.index >= p0 && page.index <= p1) visit(page);
      }
    }
    let buf: Buffer;
    if (covered === length) buf = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    else buf = await this.lower.read(offset, length, into);
    for (const o of overlay) o.bytes.copy(buf, o.at);
    return buf;
  }

  async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    this.assertWritable();
    assertRange(this, offset, data.length);
    if (data.length === 0) {
      if (opts?.fua) await this.flush();
      return;
    }
    this.touch();
    if (!this.writeBackAllowed()) {
      if (this.modeValue === 'write-back') this.emit({ type: 'write-through-fallback', lun: this.lun, reason: 'no-mirror' });
      return this.writeThrough(offset, data);
    }
    if (opts?.fua && !this.mirrorRef) return this.writeThrough(offset, data);
    return this.writeBack(offset, data);
  }

  /**
   * Write-back: every completed write is already in both SPs' caches, so this only makes
   * durable the trims/zeroes that went below without FUA. Write-through (or no mirror): writes
   * every page that was dirty when called, then flushes below.
   */
  async flush(): Promise<void> {
    this.assertOpen();
    if (this.readOnly) return;
    if (this.writeBackAllowed() && this.mirrorRef) {
      if (this.lowerUnflushed) {
        this.lowerUnflushed = false;
        await this.lower.flush();
      }
      return;
    }
    await this.destageSnapshot();
    this.lowerUnflushed = false;
    await this.lower.flush();
  }

  trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    return this.discardRange('trim', offset, length, opts ?? {});
  }

  writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    return this.discardRange('zero', offset, length, opts ?? {});
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.assertOpen();
    assertRange(this, offset, length);
    const ps = this.pageSize;
    const end = offset + length;
    const runs: [number, number][] = [];
    if (length > 0) {
      const idx = [...this.dirty.keys()].filter((i) => i * ps < end && (i + 1) * ps > offset).sort((a, b) => a - b);
      for (const i of idx) {
        const a = Math.max(offset, i * ps);
        const b = Math.min(end, (i + 1) * ps);
        const last = runs[runs.length - 1];
        if (last && last[1] === a) last[1] = b;
        else runs.push([a, b]);
      }
    }
    const ext = await this.lower.blockStatus(offset, length);
    if (runs.length === 0) return ext;
    return overlayData(offset, ext, runs);
  }

  async cache(offset: number, length: number): Promise<void> {
    this.assertOpen();
    assertRange(this, offset, length);
    await this.lower.cache(offset, length);
  }

  /** Destages everything, stops background work, leaves the budget and closes the device below. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.readOnly) await this.destageAll();
    this.closed = true;
    this.clearTimers();
    this.budget.unregister(this);
    await this.lower.close();
  }

  // ---- cache management ----------------------------------------------------------------------

  /**
   * Writes every dirty page below and flushes, until the cache is empty (the caller quiesces
   * host I/O first: before trespass or shutdown). Rejects if a destage fails.
   */
  async destageAll(): Promise<void> {
    this.assertOpen();
    this.drainRequests++;
    const failuresAtStart = this.batchFailures;
    try {
      while (this.dirty.size > 0) {
        if (this.batchFailures !== failuresAtStart) throw new BlockError('EIO', `destage of LUN ${this.lun} failed: ${this.lastDestageError?.message ?? 'unknown'}`);
        const progress = this.nextProgress();
        this.pump();
        await progress;
      }
      if (this.batchFailures !== failuresAtStart) throw new BlockError('EIO', `destage of LUN ${this.lun} failed: ${this.lastDestageError?.message ?? 'unknown'}`);
      this.lowerUnflushed = false;
      await this.lower.flush();
    } finally {
      this.drainRequests--;
    }
  }

  /**
   * Runs one destage batch of up to `maxPages` oldest unlocked dirty pages now, whatever the
   * watermarks say (tests and callers that schedule destaging themselves). Resolves with the
   * number of pages written.
   */
  async destageStep(maxPages = this.batchPages): Promise<number> {
    this.assertOpen();
    const batch = this.pickBatch(maxPages);
    if (batch.length === 0) return 0;
    this.inflightBatches++;
    try {
      await this.destageBatch(batch);
    } finally {
      this.inflightBatches--;
      this.progress();
    }
    return batch.length;
  }

  /** Copies of every dirty page, by index (for the vault). */
  dirtyPages(): MirrorPage[] {
    return this.snapshotPages();
  }

  /**
   * Installs pages as dirty (vault restore, or the peer's mirror copy on takeover). Must run
   * before host I/O to these pages; throws if any page is already cached. Pages that do not fit
   * the budget are written below at once. When a mirror is attached, the loaded pages are
   * mirrored before this resolves.
   */
  async loadDirty(pages: readonly MirrorPage[]): Promise<void> {
    this.assertWritable();
    const sorted = [...pages].sort((a, b) => a.index - b.index);
    const maxIndex = Math.ceil(this.size / this.pageSize) - 1;
    for (let i = 0; i < sorted.length; i++) {
      const p = sorted[i]!;
      if (p.data.length !== this.pageSize) throw new BlockError('EINVAL', `loaded page ${p.index} is ${p.data.length} bytes, page size is ${this.pageSize}`);
      if (!Number.isSafeInteger(p.index) || p.index < 0 || p.index > maxIndex) throw new BlockError('EINVAL', `loaded page ${p.index} outside LUN ${this.lun}`);
      if (i > 0 && sorted[i - 1]!.index === p.index) throw new BlockError('EINVAL', `page ${p.index} loaded twice`);
      if (this.dirty.has(p.index)) throw new BlockError('EINVAL', `page ${p.index} of LUN ${this.lun} is already cached; load before serving I/O`);
    }
    if (sorted.length === 0) return;
    const indexes = sorted.map((p) => p.index);
    await this.locks.lockAll(indexes);
    try {
      for (const p of sorted) if (this.dirty.has(p.index)) throw new BlockError('EINVAL', `page ${p.index} of LUN ${this.lun} was written while loading`);
      const maxGen = Math.max(...sorted.map((p) => p.generation));
      if (maxGen > this.generation) this.generation = maxGen;
      const overflow: MirrorPage[] = [];
      const installed: MirrorPage[] = [];
      for (const p of sorted) {
        if (this.budget.tryReserve(this, this.pageSize)) {
          this.reservedBytes += this.pageSize;
          const data = Buffer.from(p.data);
          this.installPage(p.index, data, p.generation);
          installed.push({ index: p.index, generation: p.generation, data: Buffer.from(data) });
        } else {
          overflow.push(p);
        }
      }
      for (const p of overflow) await this.lower.write(p.index * this.pageSize, this.clip(p.index, p.data));
      if (overflow.length) await this.lower.flush();
      const m = this.mirrorRef;
      if (m && installed.length) {
        try {
          await m.mirror(this.lun, installed);
        } catch (e) {
          this.emit({ type: 'mirror-error', lun: this.lun, op: 'mirror', error: (e as Error).message });
          throw new BlockError('EIO', `mirroring loaded pages of LUN ${this.lun}: ${(e as Error).message}`);
        }
        if (this.mirrorRef === m) for (const p of installed) this.notePeerHeld(p.index, p.generation);
      }
    } finally {
      this.locks.unlockAll(indexes);
    }
    this.afterChange();
    this.schedule();
  }

  /**
   * Forgets every dirty page without writing it (a rebooted SP's stale cache). Waits for
   * destage batches in flight to finish first.
   */
  async dropAll(): Promise<void> {
    while (this.inflightBatches > 0) await this.nextProgress();
    for (const page of [...this.dirty.values()]) this.dropPage(page);
    this.peerHeld.clear();
    this.pendingRelease = [];
    this.afterChange();
  }

  /** Destage batches in flight right now. */
  get destagesInFlight(): number {
    return this.inflightBatches;
  }

  /**
   * In-process emulation of the SP dying: stops all background work, waits for destage writes
   * already issued (a killed process's issued pwrites land or not; here they land), then
   * forgets every page, leaves the budget and refuses further I/O. The device below is left
   * open (the peer's takeover cache wraps it next). Callers must not have host I/O in flight.
   */
  async halt(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clearTimers();
    while (this.inflightBatches > 0) await this.nextProgress();
    for (const page of [...this.dirty.values()]) this.dropPage(page);
    this.peerHeld.clear();
    this.pendingRelease = [];
    this.mirrorRef = null;
    if (this.reservedBytes === 0 && this.requestedBytes === 0) this.budget.unregister(this);
  }

  /** Throws if any invariant is broken (also checked after every state change). */
  /**
   * After every change: the accounting at once (O(1)); the walk over every dirty page on one
   * change in PAGE_WALK_EVERY (amortized O(1) per write), or on every change with
   * SANBOX_PARANOID=1 (the test suites set it).
   */
  private afterChange(): void {
    this.checkAccounting();
    if (PARANOID || ++this.changesSinceWalk >= PAGE_WALK_EVERY) this.checkInvariants();
  }
  private changesSinceWalk = 0;

  private checkAccounting(): void {
    this.budget.assertInvariant();
    const held = this.budget.heldBy(this);
    const mine = this.dirtyBytes + this.reservedBytes;
    if (mine > held || held > mine + this.requestedBytes) {
      throw new Error(`WriteCache invariant (LUN ${this.lun}): dirty ${this.dirtyBytes} + reserved ${this.reservedBytes} vs budget held ${held} (+${this.requestedBytes} requested)`);
    }
  }

  /** Every invariant, including a walk over all dirty pages. */
  checkInvariants(): void {
    this.changesSinceWalk = 0;
    this.checkAccounting();
    for (const [i, p] of this.dirty) {
      if (p.index !== i) throw new Error(`WriteCache invariant (LUN ${this.lun}): page ${p.index} filed under ${i}`);
      if (p.data.length !== this.pageSize) throw new Error(`WriteCache invariant (LUN ${this.lun}): page ${i} is ${p.data.length} bytes`);
      if (p.durableGen >= p.gen) throw new Error(`WriteCache invariant (LUN ${this.lun}): page ${i} is clean (gen ${p.gen} on disk) but still dirty`);
      if (p.gen > this.generation) throw new Error(`WriteCache invariant (LUN ${this.lun}): page ${i} gen ${p.gen} above the counter ${this.generation}`);
    }
  }

  // ---- BudgetMember --------------------------------------------------------------------------

  onPressure(): void {
    this.schedule();
  }

  // ---- write paths ---------------------------------------------------------------------------

  private async writeBack(offset: number, data: Buffer): Promise<void> {
    const ps = this.pageSize;
    const end = offset + data.length;
    const p0 = Math.floor(offset / ps);
    const p1 = Math.floor((end - 1) / ps);
    // Pages the write covers only in part (the last page of the LUN may be short).
    const partial = (i: number): boolean => {
      const a = i * ps;
      const b = Math.min(this.size, a + ps);
      return offset > a || end < b;
    };
    const partialEdges = [...new Set([p0, p1])].filter(partial);

    let locked: number[] = [];
    const fills = new Map<number, Buffer>();
    /** Budget granted to this write and not yet turned into pages. */
    let mine = 0;
    const giveBackMine = (): void => {
      this.giveBack(mine);
      mine = 0;
    };
    try {
      for (;;) {
        if (this.closed) throw new BlockError('ESHUTDOWN', `cache of LUN ${this.lun} is closed`);
        if (!this.writeBackAllowed()) {
          this.unlockList(locked);
          giveBackMine();
          return await this.writeThrough(offset, data);
        }
        let missing = 0;
        for (let i = p0; i <= p1; i++) if (!this.dirty.has(i)) missing++;
        const needBytes = missing * ps;
        if (needBytes > this.budget.capacity) {
          this.unlockList(locked);
          giveBackMine();
          this.emit({ type: 'write-through-fallback', lun: this.lun, reason: 'large-write' });
          return await this.writeThrough(offset, data);
        }
        if (needBytes > mine) {
          const more = needBytes - mine;
          if (this.budget.tryReserve(this, more)) {
            this.reservedBytes += more;
            mine += more;
          } else {
            // Never wait for budget while holding page locks (destaging needs them) or part of
            // a reservation (two writers each holding half could wait for each other forever).
            this.unlockList(locked);
            fills.clear();
            giveBackMine();
            this.requestedBytes += needBytes;
            try {
              await this.budget.reserve(this, needBytes);
            } finally {
              this.requestedBytes -= needBytes;
            }
            this.reservedBytes += needBytes;
            mine = needBytes;
            continue;
          }
        }
        const needFill = partialEdges.filter((i) => !this.dirty.has(i));
        if (!needFill.every((i) => locked.includes(i) && fills.has(i))) {
          this.unlockList(locked);
          fills.clear();
          const want = needFill.slice().sort((a, b) => a - b);
          await this.locks.lockAll(want);
          locked = want;
          for (const i of want) {
            if (this.dirty.has(i)) continue;
            const a = i * ps;
            const b = Math.min(this.size, a + ps);
            const buf = Buffer.alloc(ps);
            await this.lower.read(a, b - a, buf);
            fills.set(i, buf);
          }
          continue;
        }
        break;
      }

      // Install synchronously: nothing from here awaits until the mirror call.
      const gen = ++this.generation;
      // Snapshots for the peer only when there is one (taken in this same synchronous block).
      const mirroring = this.mirrorRef !== null;
      const out: MirrorPage[] = [];
      for (let i = p0; i <= p1; i++) {
        const a = i * ps;
        let page = this.dirty.get(i);
        if (!page) {
          const fill = fills.get(i);
          if (!fill && partial(i)) throw new Error(`WriteCache bug: partial page ${i} of LUN ${this.lun} has no fill`);
          if (mine < ps) throw new Error(`WriteCache bug: installing page ${i} of LUN ${this.lun} beyond the reservation`);
          mine -= ps;
          // A page the write covers whole needs no zeroing, unless it runs past the LUN's end.
          page = this.installPage(i, fill ?? (a + ps <= this.size ? Buffer.allocUnsafe(ps) : Buffer.alloc(ps)), gen, true);
        }
        const s = Math.max(offset, a);
        const e = Math.min(end, a + ps);
        data.copy(page.data, s - a, s - offset, e - offset);
        this.bumpGen(page, gen);
        if (mirroring) out.push({ index: i, generation: gen, data: Buffer.from(page.data) });
      }
      this.unlockList(locked);
      giveBackMine();
      this.afterChange();
      this.schedule();

      const m = this.mirrorRef;
      if (m) {
        try {
          await m.mirror(this.lun, out);
        } catch (e) {
          this.emit({ type: 'mirror-error', lun: this.lun, op: 'mirror', error: (e as Error).message });
          throw new BlockError('EIO', `mirroring write of LUN ${this.lun} to the peer SP failed: ${(e as Error).message}`);
        }
        if (this.mirrorRef === m) for (const p of out) this.notePeerHeld(p.index, p.generation);
      }
    } finally {
      this.unlockList(locked);
      giveBackMine();
    }
  }

  private async writeThrough(offset: number, data: Buffer): Promise<void> {
    const ps = this.pageSize;
    const end = offset + data.length;
    const p0 = Math.floor(offset / ps);
    const p1 = Math.floor((end - 1) / ps);
    const indexes = range(p0, p1);
    await this.locks.lockAll(indexes);
    try {
      this.assertWritable();
      const gen = ++this.generation;
      const touched: Page[] = [];
      for (let i = p0; i <= p1; i++) {
        const page = this.dirty.get(i);
        if (!page) continue;
        const a = i * ps;
        const s = Math.max(offset, a);
        const e = Math.min(end, a + ps);
        data.copy(page.data, s - a, s - offset, e - offset);
        this.bumpGen(page, gen);
        touched.push(page);
      }
      // Cached edge pages go down whole, so afterwards every touched page equals the disk.
      const first = this.dirty.get(p0);
      const last = this.dirty.get(p1);
      const lo = first ? p0 * ps : offset;
      const hi = last ? Math.min(this.size, (p1 + 1) * ps) : end;
      let buf = data;
      if (lo !== offset || hi !== end) {
        buf = Buffer.allocUnsafe(hi - lo);
        if (first) first.data.copy(buf, 0, 0, Math.min(ps, hi - lo));
        if (last) last.data.copy(buf, p1 * ps - lo, 0, hi - p1 * ps);
        data.copy(buf, offset - lo);
      }
      await this.lower.write(lo, buf, { fua: true });
      for (const page of touched) {
        if (page.gen === gen) page.durableGen = gen;
        if (page.gen === gen) this.dropPage(page);
      }
      const m = this.mirrorRef;
      const refs: PageRef[] = indexes.filter((i) => this.peerHeld.has(i)).map((i) => ({ index: i, generation: gen }));
      if (m && refs.length) {
        try {
          await m.release(this.lun, refs);
        } catch (e) {
          this.emit({ type: 'mirror-error', lun: this.lun, op: 'release', error: (e as Error).message });
          throw new BlockError('EIO', `write-through of LUN ${this.lun}: the peer still holds older copies (${(e as Error).message})`);
        }
        if (this.mirrorRef === m) this.notePeerReleased(refs);
      }
      this.afterChange();
    } finally {
      this.locks.unlockAll(indexes);
    }
  }

  private async discardRange(kind: 'trim' | 'zero', offset: number, length: number, opts: ZeroOptions): Promise<void> {
    this.assertWritable();
    assertRange(this, offset, length);
    if (length === 0) return;
    if (kind === 'zero' && opts.fastZero && !this.lower.capabilities.fastZero) throw new BlockError('ENOTSUP', 'zeroing would write data');
    this.touch();
    const ps = this.pageSize;
    const end = offset + length;
    const p0 = Math.floor(offset / ps);
    const p1 = Math.floor((end - 1) / ps);
    const indexes = range(p0, p1);
    await this.locks.lockAll(indexes);
    try {
      this.assertWritable();
      const gen = ++this.generation;
      const full: Page[] = [];
      for (let i = p0; i <= p1; i++) {
        const page = this.dirty.get(i);
        if (!page) continue;
        const a = i * ps;
        const b = Math.min(this.size, a + ps);
        if (offset <= a && end >= b) full.push(page);
        page.data.fill(0, Math.max(offset, a) - a, Math.min(end, b) - a);
        this.bumpGen(page, gen);
      }
      const m = this.mirrorRef;
      if (m && indexes.some((i) => this.peerHeld.has(i))) {
        try {
          await m.discard(this.lun, offset, length, gen);
        } catch (e) {
          this.emit({ type: 'mirror-error', lun: this.lun, op: 'discard', error: (e as Error).message });
          throw new BlockError('EIO', `discarding ${kind} range of LUN ${this.lun} on the peer SP failed: ${(e as Error).message}`);
        }
        if (this.mirrorRef === m) {
          for (const i of indexes) {
            if (!this.peerHeld.has(i)) continue;
            const a = i * ps;
            const b = Math.min(this.size, a + ps);
            if (offset <= a && end >= b) this.peerHeld.delete(i);
            else this.peerHeld.set(i, gen);
          }
        }
      }
      const fua = opts.fua === true || !this.writeBackAllowed();
      const lowerOpts: ZeroOptions = { ...opts, fua };
      if (kind === 'trim') await this.lower.trim(offset, length, { fua });
      else await this.lower.writeZeroes(offset, length, lowerOpts);
      if (!fua) this.lowerUnflushed = true;
      for (const page of full) {
        if (page.gen === gen) {
          page.durableGen = gen;
          this.dropPage(page);
        }
      }
      this.afterChange();
    } finally {
      this.locks.unlockAll(indexes);
    }
  }

  // ---- destaging -----------------------------------------------------------------------------

  private shouldDestage(): boolean {
    if (this.closed || this.dirty.size === 0) return false;
    if (this.drainRequests > 0) return true;
    if (this.retryTimer) return false;
    // A writer blocked on the budget always gets destaging, even without autoDestage.
    if (this.budget.waiting > 0) return true;
    if (!this.autoDestage) return false;
    if (!this.writeBackAllowed()) return true;
    if (this.idle) return true;
    return this.budget.pressure;
  }

  /** Schedules a pump on a later microtask (never re-enters the caller). */
  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.inflightBatches < this.concurrency && this.shouldDestage()) {
      const batch = this.pickBatch(this.batchPages);
      if (batch.length === 0) break;
      this.inflightBatches++;
      void this.destageBatch(batch).finally(() => {
        this.inflightBatches--;
        this.progress();
        this.pump();
      });
    }
  }

  /** Oldest dirty pages that nobody holds (try-lock: destaging never waits for a lock). */
  private pickBatch(max: number): Page[] {
    const out: Page[] = [];
    for (const page of this.dirty.values()) {
      if (out.length >= max) break;
      if (page.destaging) continue;
      if (!this.locks.tryLock(page.index)) continue;
      out.push(page);
    }
    return out;
  }

  private async destageBatch(batch: Page[]): Promise<void> {
    const ps = this.pageSize;
    const snaps = batch
      .map((page) => {
        page.destaging = true;
        return { page, gen: page.gen, data: this.clip(page.index, Buffer.from(page.data)) };
      })
      .sort((a, b) => a.page.index - b.page.index);
    try {
      // Coalesce adjacent pages into one write each.
      const writes: Promise<void>[] = [];
      let i = 0;
      while (i < snaps.length) {
        let j = i + 1;
        while (j < snaps.length && snaps[j]!.page.index === snaps[j - 1]!.page.index + 1) j++;
        const run = snaps.slice(i, j);
        const buf = run.length === 1 ? run[0]!.data : Buffer.concat(run.map((s) => s.data));
        writes.push(this.lower.write(run[0]!.page.index * ps, buf));
        i = j;
      }
      const results = await Promise.allSettled(writes);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      if (this.durableDestage) await this.lower.flush();
    } catch (e) {
      for (const s of snaps) {
        s.page.destaging = false;
        this.locks.unlock(s.page.index);
      }
      this.batchFailures++;
      this.lastDestageError = e instanceof Error ? e : new Error(String(e));
      this.emit({ type: 'destage-error', lun: this.lun, error: `${errnoOf(e)}: ${this.lastDestageError.message}` });
      if (!this.retryTimer && !this.closed) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.schedule();
        }, this.retryMs);
        this.retryTimer.unref();
      }
      return;
    }
    this.lastDestageError = null;
    const refs: PageRef[] = [];
    for (const s of snaps) {
      const page = s.page;
      page.destaging = false;
      if (s.gen > page.durableGen) page.durableGen = s.gen;
      if (page.gen === s.gen) this.dropPage(page);
      if (this.peerHeld.has(page.index)) refs.push({ index: page.index, generation: s.gen });
      this.locks.unlock(page.index);
    }
    this.afterChange();
    const m = this.mirrorRef;
    const toRelease = this.pendingRelease.concat(refs);
    this.pendingRelease = [];
    if (m && toRelease.length) {
      try {
        await m.release(this.lun, toRelease);
        if (this.mirrorRef === m) this.notePeerReleased(toRelease);
      } catch (e) {
        // Not fatal: peerHeld still lists the pages, so a write-through over them tells the peer.
        if (this.mirrorRef === m) this.pendingRelease.push(...toRelease);
        this.emit({ type: 'mirror-error', lun: this.lun, op: 'release', error: (e as Error).message });
      }
    }
  }

  /** Destages every page dirty now (pages dirtied later may stay dirty). */
  private async destageSnapshot(): Promise<void> {
    const targets = [...this.dirty.values()].map((p) => ({ page: p, gen: p.gen }));
    const done = (): boolean => targets.every((t) => this.dirty.get(t.page.index) !== t.page || t.page.durableGen >= t.gen);
    if (done()) return;
    this.drainRequests++;
    const failuresAtStart = this.batchFailures;
    try {
      while (!done()) {
        if (this.batchFailures !== failuresAtStart) throw new BlockError('EIO', `destage of LUN ${this.lun} failed: ${this.lastDestageError?.message ?? 'unknown'}`);
        const progress = this.nextProgress();
        this.pump();
        await progress;
      }
    } finally {
      this.drainRequests--;
    }
  }

  private nextProgress(): Promise<void> {
    return Promise.race([new Promise<void>((resolve) => this.progressWaiters.push(resolve)), this.locks.nextUnlock()]);
  }

  private progress(): void {
    if (this.progressWaiters.length) for (const w of this.progressWaiters.splice(0)) w();
  }

  // ---- helpers -------------------------------------------------------------------------------

  private writeBackAllowed(): boolean {
    return this.modeValue === 'write-back' && (this.mirrorRef !== null || !this.requireMirror);
  }

  private installPage(index: number, data: Buffer, gen: number, fromWrite = false): Page {
    if (this.dirty.has(index)) throw new Error(`WriteCache bug: page ${index} of LUN ${this.lun} installed twice`);
    if (this.reservedBytes < this.pageSize) throw new Error(`WriteCache invariant (LUN ${this.lun}): installing page ${index} without budget`);
    this.reservedBytes -= this.pageSize;
    const page: Page = { index, data, gen: fromWrite ? 0 : gen, destaging: false, durableGen: 0 };
    if (!fromWrite && gen <= 0) throw new Error(`WriteCache: loaded page ${index} has generation ${gen}`);
    this.dirty.set(index, page);
    return page;
  }

  private bumpGen(page: Page, gen: number): void {
    if (gen <= page.gen) throw new Error(`WriteCache invariant (LUN ${this.lun}): page ${page.index} generation ${page.gen} -> ${gen} is not increasing`);
    page.gen = gen;
  }

  private dropPage(page: Page): void {
    if (this.dirty.get(page.index) !== page) return;
    this.dirty.delete(page.index);
    this.budget.release(this, this.pageSize);
    if (this.dirty.size === 0) this.idle = false;
  }

  private giveBack(bytes: number): void {
    if (bytes <= 0) return;
    if (bytes > this.reservedBytes) throw new Error(`WriteCache invariant (LUN ${this.lun}): giving back ${bytes} of ${this.reservedBytes} reserved`);
    this.reservedBytes -= bytes;
    this.budget.release(this, bytes);
  }

  private unlockList(list: number[]): void {
    for (const i of list) this.locks.unlock(i);
    list.length = 0;
  }

  private notePeerHeld(index: number, gen: number): void {
    const cur = this.peerHeld.get(index);
    if (cur === undefined || cur < gen) this.peerHeld.set(index, gen);
  }

  private notePeerReleased(refs: readonly PageRef[]): void {
    for (const r of refs) {
      const cur = this.peerHeld.get(r.index);
      if (cur !== undefined && cur <= r.generation) this.peerHeld.delete(r.index);
    }
  }

  private snapshotPages(): MirrorPage[] {
    return [...this.dirty.values()].sort((a, b) => a.index - b.index).map((p) => ({ index: p.index, generation: p.gen, data: Buffer.from(p.data) }));
  }

  /** A page's bytes that lie inside the device (the last page may be short). */
  private clip(index: number, data: Buffer): Buffer {
    const a = index * this.pageSize;
    const b = Math.min(this.size, a + this.pageSize);
    return b - a === data.length ? data : data.subarray(0, b - a);
  }

  private touch(): void {
    this.idle = false;
    if (!this.autoDestage || this.idleMs <= 0 || this.closed) return;
    if (this.idleTimer) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(() => {
        this.idle = true;
        this.schedule();
      }, this.idleMs);
      this.idleTimer.unref();
    }
  }

  private clearTimers(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.idleTimer = null;
    this.retryTimer = null;
  }

  private emit(e: CacheEvent): void {
    try {
      this.onEvent?.(e);
    } catch {
      // A listener's failure must not break I/O.
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new BlockError('ESHUTDOWN', `cache of LUN ${this.lun} is closed`);
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.readOnly) throw new BlockError('EPERM', `LUN ${this.lun} is read-only`);
  }
}

function range(a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = a; i <= b; i++) out.push(i);
  return out;
}

/** Marks `runs` (sorted, disjoint [start, end) byte ranges) as data in the extents from `offset`. */
function overlayData(offset: number, ext: Extent[], runs: [number, number][]): Extent[] {
  const out: Extent[] = [];
  const push = (length: number, hole: boolean, zero: boolean): void => {
    if (length <= 0) return;
    const last = out[out.length - 1];
    if (last && last.hole === hole && last.zero === zero) last.length += length;
    else out.push({ length, hole, zero });
  };
  let pos = offset;
  let r = 0;
  for (const e of ext) {
    const eEnd = pos + e.length;
    let p = pos;
    while (p < eEnd) {
      while (r < runs.length && runs[r]![1] <= p) r++;
      const run = runs[r];
      if (!run || run[0] >= eEnd) {
        push(eEnd - p, e.hole, e.zero);
        p = eEnd;
      } else if (run[0] > p) {
        push(run[0] - p, e.hole, e.zero);
        p = run[0];
      } else {
        const to = Math.min(run[1], eEnd);
        push(to - p, false, false);
        p = to;
      }
    }
    pos = eEnd;
  }
  return out;
}
