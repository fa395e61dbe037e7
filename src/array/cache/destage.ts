import { BlockError, errnoOf } from '../../block/device.js';
import type { CacheCore, Page } from './core.js';
import type { PageRef } from './mirror.js';

export interface DestageOptions {
  /** Background destaging (watermarks, idle timer, write-through drain). */
  autoDestage: boolean;
  /** Destage everything after this long without a write; 0 disables. */
  idleMs: number;
  /** Pages per destage batch (adjacent pages are coalesced into one write). */
  batchPages: number;
  /**
   * Destage batches writing at once. A batch whose writes are done waits for the flush below
   * without counting here, so the next batches write while the device flushes (group commit:
   * every batch written during one fdatasync shares the next).
   */
  concurrency: number;
  /** Flush below after each destage batch before the peer may drop its copy. */
  durableDestage: boolean;
  /** Wait this long before retrying background destaging after a failure. */
  retryMs: number;
}

/** Batches in flight (writing or waiting for their flush) at most, per batch allowed to write. */
const FLUSH_WAITING_FACTOR = 4;

/**
 * Destaging of one LUN's cache: oldest dirty page first, in batches of adjacent-coalesced
 * writes with bounded concurrency, a flush below, then `release` on the peer. Decides when to
 * run (watermarks, waiting writers, idle timer, drains) and retries failed batches.
 */
export class Destager {
  private inflightBatches = 0;
  /** Batches of `pump` still in their write phase (what `concurrency` bounds). */
  private writingBatches = 0;
  /** Pages in the batches of `pump` in flight. */
  private destagingPages = 0;
  private drainRequests = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private scheduled = false;
  private batchFailures = 0;
  private lastDestageError: Error | null = null;
  private progressWaiters: (() => void)[] = [];

  constructor(
    private readonly c: CacheCore,
    readonly o: DestageOptions,
  ) {}

  /** Destage batches in flight right now. */
  get inFlight(): number {
    return this.inflightBatches;
  }

  /** Last background destage failure (cleared by the next successful batch). */
  get lastError(): Error | null {
    return this.lastDestageError;
  }

  /**
   * Writes every dirty page below and flushes, until the cache is empty. Rejects if a destage
   * fails.
   */
  async destageAll(): Promise<void> {
    const c = this.c;
    this.drainRequests++;
    const failuresAtStart = this.batchFailures;
    try {
      while (c.dirty.size > 0) {
        this.assertNoFailureSince(failuresAtStart);
        const progress = this.nextProgress();
        this.pump();
        await progress;
      }
      this.assertNoFailureSince(failuresAtStart);
      c.lowerUnflushed = false;
      await c.lower.flush();
    } finally {
      this.drainRequests--;
    }
  }

  /** Destages every page dirty now (pages dirtied later may stay dirty). */
  async destageSnapshot(): Promise<void> {
    const c = this.c;
    const targets = [...c.dirty.values()].map((p) => ({ page: p, gen: p.gen }));
    const done = (): boolean => targets.every((t) => c.dirty.get(t.page.index) !== t.page || t.page.durableGen >= t.gen);
    if (done()) return;
    this.drainRequests++;
    const failuresAtStart = this.batchFailures;
    try {
      while (!done()) {
        this.assertNoFailureSince(failuresAtStart);
        const progress = this.nextProgress();
        this.pump();
        await progress;
      }
    } finally {
      this.drainRequests--;
    }
  }

  /** One batch of up to `maxPages` oldest unlocked dirty pages now; resolves with its size. */
  async step(maxPages: number): Promise<number> {
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

  /** Waits for every destage batch in flight to finish. */
  async settle(): Promise<void> {
    while (this.inflightBatches > 0) await this.nextProgress();
  }

  /** Schedules a pump on a later microtask (never re-enters the caller). */
  schedule(): void {
    if (this.scheduled || this.c.closed) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** A write arrived: not idle; (re)start the idle timer. */
  touch(): void {
    const c = this.c;
    c.idle = false;
    if (!this.o.autoDestage || this.o.idleMs <= 0 || c.closed) return;
    if (this.idleTimer) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(() => {
        c.idle = true;
        this.schedule();
      }, this.o.idleMs);
      this.idleTimer.unref();
    }
  }

  clearTimers(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.idleTimer = null;
    this.retryTimer = null;
  }

  private assertNoFailureSince(failuresAtStart: number): void {
    if (this.batchFailures !== failuresAtStart) throw new BlockError('EIO', `destage of LUN ${this.c.lun} failed: ${this.lastDestageError?.message ?? 'unknown'}`);
  }

  private shouldDestage(): boolean {
    const c = this.c;
    if (c.closed || c.dirty.size === 0) return false;
    if (this.drainRequests > 0) return true;
    if (this.retryTimer) return false;
    // A writer blocked on the budget always gets destaging, even without autoDestage.
    if (c.budget.waiting > 0) return true;
    if (!this.o.autoDestage) return false;
    if (!c.writeBackAllowed()) return true;
    if (c.idle) return true;
    // Watermark destaging stops at the low watermark counting the pages already on their way
    // down (they free their budget only after their flush).
    return c.budget.pressure && c.budget.used - this.destagingPages * c.pageSize > c.budget.lowBytes;
  }

  private pump(): void {
    while (this.writingBatches < this.o.concurrency && this.inflightBatches < FLUSH_WAITING_FACTOR * this.o.concurrency && this.shouldDestage()) {
      const batch = this.pickBatch(this.o.batchPages);
      if (batch.length === 0) break;
      this.inflightBatches++;
      this.writingBatches++;
      this.destagingPages += batch.length;
      let writing = true;
      const written = (): void => {
        if (!writing) return;
        writing = false;
        this.writingBatches--;
        this.schedule();
      };
      void this.destageBatch(batch, written).finally(() => {
        written();
        this.destagingPages -= batch.length;
        this.inflightBatches--;
        this.progress();
        this.pump();
      });
    }
  }

  /** Oldest dirty pages that nobody holds (try-lock: destaging never waits for a lock). */
  private pickBatch(max: number): Page[] {
    const out: Page[] = [];
    for (const page of this.c.dirty.values()) {
      if (out.length >= max) break;
      if (page.destaging) continue;
      if (!this.c.locks.tryLock(page.index)) continue;
      out.push(page);
    }
    return out;
  }

  /** Writes, flushes, drops and releases one batch; `written` is called once its writes are done. */
  private async destageBatch(batch: Page[], written?: () => void): Promise<void> {
    const c = this.c;
    // Snapshots of the pages in one buffer, in index order: adjacent pages lie side by side, so
    // a run of them is one slice (the lower device may keep it: the buffer is never reused).
    batch.sort((a, b) => a.index - b.index);
    const ps = c.pageSize;
    const all = Buffer.allocUnsafeSlow(batch.length * ps);
    const snaps = batch.map((page, i) => {
      page.destaging = true;
      const data = all.subarray(i * ps, (i + 1) * ps);
      page.data.copy(data);
      return { page, gen: page.gen, data };
    });
    try {
      await this.writeCoalesced(snaps);
      written?.();
      if (this.o.durableDestage) await c.lower.flush();
    } catch (e) {
      this.batchFailed(snaps, e);
      return;
    }
    this.lastDestageError = null;
    const refs: PageRef[] = [];
    for (const s of snaps) {
      const page = s.page;
      page.destaging = false;
      if (s.gen > page.durableGen) page.durableGen = s.gen;
      if (page.gen === s.gen) c.dropPage(page);
      if (c.peerHeld.has(page.index)) refs.push({ index: page.index, generation: s.gen });
      c.locks.unlock(page.index);
    }
    c.afterChange();
    await this.releaseOnPeer(refs);
  }

  /**
   * Writes each run of adjacent pages (consecutive slices of one buffer, ascending) as one write,
   * off the event loop where the device can (`background`); rejects with the first failure.
   */
  private async writeCoalesced(snaps: { page: Page; data: Buffer }[]): Promise<void> {
    const c = this.c;
    const ps = c.pageSize;
    const writes: Promise<void>[] = [];
    let i = 0;
    while (i < snaps.length) {
      let j = i + 1;
      while (j < snaps.length && snaps[j]!.page.index === snaps[j - 1]!.page.index + 1) j++;
      const first = snaps[i]!.data;
      const last = snaps[j - 1]!;
      if (last.data.buffer !== first.buffer || last.data.byteOffset !== first.byteOffset + (j - 1 - i) * ps) throw new Error(`WriteCache bug: destage run of LUN ${c.lun} is not one slice`);
      const run = Buffer.from(first.buffer, first.byteOffset, (j - i) * ps);
      const at = snaps[i]!.page.index * ps;
      writes.push(c.lower.write(at, run.subarray(0, Math.min(run.length, c.size - at)), { background: true }));
      i = j;
    }
    const results = await Promise.allSettled(writes);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private batchFailed(snaps: { page: Page }[], e: unknown): void {
    const c = this.c;
    for (const s of snaps) {
      s.page.destaging = false;
      c.locks.unlock(s.page.index);
    }
    this.batchFailures++;
    this.lastDestageError = e instanceof Error ? e : new Error(String(e));
    c.emit({ type: 'destage-error', lun: c.lun, error: `${errnoOf(e)}: ${this.lastDestageError.message}` });
    if (!this.retryTimer && !c.closed) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.schedule();
      }, this.o.retryMs);
      this.retryTimer.unref();
    }
  }

  /** Tells the peer it may drop what is now on disk (with earlier releases that failed). */
  private async releaseOnPeer(refs: PageRef[]): Promise<void> {
    const c = this.c;
    const m = c.mirror;
    const toRelease = c.pendingRelease.concat(refs);
    c.pendingRelease = [];
    if (!m || !toRelease.length) return;
    try {
      await m.release(c.lun, toRelease);
      if (c.mirror === m) c.notePeerReleased(toRelease);
    } catch (e) {
      // Not fatal: peerHeld still lists the pages, so a write-through over them tells the peer.
      if (c.mirror === m) c.pendingRelease.push(...toRelease);
      c.emit({ type: 'mirror-error', lun: c.lun, op: 'release', error: (e as Error).message });
    }
  }

  nextProgress(): Promise<void> {
    return Promise.race([new Promise<void>((resolve) => this.progressWaiters.push(resolve)), this.c.locks.nextUnlock()]);
  }

  private progress(): void {
    if (this.progressWaiters.length) for (const w of this.progressWaiters.splice(0)) w();
  }
}
