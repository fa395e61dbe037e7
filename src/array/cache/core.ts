import { BlockError, type BlockDevice } from '../../block/device.js';
import type { BudgetMember, CacheBudget } from './budget.js';
import { PageLocks } from './locks.js';
import type { CacheMirror, MirrorPage, PageRef } from './mirror.js';
import { slabFor, type PageSlab } from './slab.js';

export type CacheMode = 'write-back' | 'write-through';

export type CacheEvent =
  | { type: 'mode'; lun: number; from: CacheMode; to: CacheMode }
  | { type: 'mirror-error'; lun: number; op: 'mirror' | 'release' | 'discard' | 'reset'; error: string }
  | { type: 'destage-error'; lun: number; error: string }
  | { type: 'write-through-fallback'; lun: number; reason: 'large-write' | 'no-mirror' };

/** One cached (always dirty) page. */
export interface Page {
  readonly index: number;
  /** A page of the budget's slab, owned by this page until it is dropped (nobody keeps it after). */
  readonly data: Buffer;
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

export interface CacheCoreOptions {
  lun: number;
  lower: BlockDevice;
  budget: CacheBudget;
  /** The WriteCache: what the budget accounts this cache's bytes to. */
  member: BudgetMember;
  pageSize: number;
  mode: CacheMode;
  requireMirror: boolean;
  initialGeneration: number;
  onEvent: ((e: CacheEvent) => void) | undefined;
}

/**
 * The state of one LUN's write cache, shared by its read path, write paths and destager: the
 * page index (dirty pages by index, oldest first), the generation counter, the budget
 * accounting, what the peer may hold, and the invariants over all of them.
 */
export class CacheCore {
  readonly lun: number;
  readonly lower: BlockDevice;
  readonly budget: CacheBudget;
  readonly member: BudgetMember;
  readonly pageSize: number;
  readonly readOnly: boolean;
  readonly requireMirror: boolean;
  private readonly onEvent: ((e: CacheEvent) => void) | undefined;

  mode: CacheMode;
  mirror: CacheMirror | null = null;
  /** Dirty pages, oldest first (Map keeps first-dirty order). Only dirty pages are cached. */
  readonly dirty = new Map<number, Page>();
  readonly locks = new PageLocks();
  /** Where page memory comes from and goes back to (shared by the caches of the budget). */
  readonly slab: PageSlab;
  generation: number;
  /** Pages the peer may hold a copy of, with the newest generation sent (until released). */
  readonly peerHeld = new Map<number, number>();
  /** Releases that failed; retried after the next destage batch. */
  pendingRelease: PageRef[] = [];
  /** Granted budget not yet turned into pages, and budget requested but not yet granted. */
  reservedBytes = 0;
  requestedBytes = 0;
  /** No write for the idle time: destage everything (reset when the cache empties). */
  idle = false;
  /** A trim/zero went below without FUA since the last flush below. */
  lowerUnflushed = false;
  closed = false;
  private changesSinceWalk = 0;

  constructor(o: CacheCoreOptions) {
    this.lun = o.lun;
    this.lower = o.lower;
    this.budget = o.budget;
    this.member = o.member;
    this.pageSize = o.pageSize;
    this.readOnly = o.lower.readOnly;
    this.mode = o.mode;
    this.requireMirror = o.requireMirror;
    this.generation = o.initialGeneration;
    this.onEvent = o.onEvent;
    this.slab = slabFor(o.budget, o.pageSize);
  }

  /** The LUN's size: the lower device's, which grows with the LUN. */
  get size(): number {
    return this.lower.size;
  }

  get dirtyBytes(): number {
    return this.dirty.size * this.pageSize;
  }

  writeBackAllowed(): boolean {
    return this.mode === 'write-back' && (this.mirror !== null || !this.requireMirror);
  }

  /** First and last page index of a non-empty byte range. */
  pageSpan(offset: number, length: number): { p0: number; p1: number } {
    return { p0: Math.floor(offset / this.pageSize), p1: Math.floor((offset + length - 1) / this.pageSize) };
  }

  // ---- pages -----------------------------------------------------------------------------------

  /**
   * Makes page `index` dirty in a slab page holding a copy of `init` (a whole page), zeroes, or
   * (`'uninit'`: only for a write that overwrites all of it before anything can see it) whatever
   * the slab page held. `fromWrite`: the write installing it bumps it to `gen` next.
   */
  installPage(index: number, init: Buffer | 'zero' | 'uninit', gen: number, fromWrite = false): Page {
    if (this.dirty.has(index)) throw new Error(`WriteCache bug: page ${index} of LUN ${this.lun} installed twice`);
    if (this.reservedBytes < this.pageSize) throw new Error(`WriteCache invariant (LUN ${this.lun}): installing page ${index} without budget`);
    if (!fromWrite && gen <= 0) throw new Error(`WriteCache: loaded page ${index} has generation ${gen}`);
    if (typeof init !== 'string' && init.length !== this.pageSize) throw new Error(`WriteCache bug: page ${index} of LUN ${this.lun} installed from ${init.length} bytes`);
    this.reservedBytes -= this.pageSize;
    const data = this.slab.take();
    if (init === 'zero') data.fill(0);
    else if (init !== 'uninit') init.copy(data);
    const page: Page = { index, data, gen: fromWrite ? 0 : gen, destaging: false, durableGen: 0 };
    this.dirty.set(index, page);
    return page;
  }

  bumpGen(page: Page, gen: number): void {
    if (gen <= page.gen) throw new Error(`WriteCache invariant (LUN ${this.lun}): page ${page.index} generation ${page.gen} -> ${gen} is not increasing`);
    page.gen = gen;
  }

  dropPage(page: Page): void {
    if (this.dirty.get(page.index) !== page) return;
    this.dirty.delete(page.index);
    this.slab.give(page.data);
    this.budget.release(this.member, this.pageSize);
    if (this.dirty.size === 0) this.idle = false;
  }

  /** Forgets every dirty page without writing it, and what the peer holds. */
  dropEverything(): void {
    for (const page of [...this.dirty.values()]) this.dropPage(page);
    this.forgetPeer();
  }

  /** Copies of every dirty page, by index (in one allocation). */
  snapshotPages(): MirrorPage[] {
    const pages = [...this.dirty.values()].sort((a, b) => a.index - b.index);
    const ps = this.pageSize;
    const all = Buffer.allocUnsafeSlow(pages.length * ps);
    return pages.map((p, i) => {
      const data = all.subarray(i * ps, (i + 1) * ps);
      p.data.copy(data);
      return { index: p.index, generation: p.gen, data };
    });
  }

  /** A page's bytes that lie inside the device (the last page may be short). */
  clip(index: number, data: Buffer): Buffer {
    const a = index * this.pageSize;
    const b = Math.min(this.size, a + this.pageSize);
    return b - a === data.length ? data : data.subarray(0, b - a);
  }

  unlockList(list: number[]): void {
    for (const i of list) this.locks.unlock(i);
    list.length = 0;
  }

  // ---- budget ----------------------------------------------------------------------------------

  /** Takes `bytes` of budget now if it is free (kept as reserved until turned into pages). */
  tryReserve(bytes: number): boolean {
    if (!this.budget.tryReserve(this.member, bytes)) return false;
    this.reservedBytes += bytes;
    return true;
  }

  giveBack(bytes: number): void {
    if (bytes <= 0) return;
    if (bytes > this.reservedBytes) throw new Error(`WriteCache invariant (LUN ${this.lun}): giving back ${bytes} of ${this.reservedBytes} reserved`);
    this.reservedBytes -= bytes;
    this.budget.release(this.member, bytes);
  }

  // ---- the peer's copy -------------------------------------------------------------------------

  notePeerHeld(index: number, gen: number): void {
    const cur = this.peerHeld.get(index);
    if (cur === undefined || cur < gen) this.peerHeld.set(index, gen);
  }

  notePeerReleased(refs: readonly PageRef[]): void {
    for (const r of refs) {
      const cur = this.peerHeld.get(r.index);
      if (cur !== undefined && cur <= r.generation) this.peerHeld.delete(r.index);
    }
  }

  forgetPeer(): void {
    this.peerHeld.clear();
    this.pendingRelease = [];
  }

  // ---- events and checks -----------------------------------------------------------------------

  emit(e: CacheEvent): void {
    try {
      this.onEvent?.(e);
    } catch {
      // A listener's failure must not break I/O.
    }
  }

  assertOpen(): void {
    if (this.closed) throw new BlockError('ESHUTDOWN', `cache of LUN ${this.lun} is closed`);
  }

  assertWritable(): void {
    this.assertOpen();
    if (this.readOnly) throw new BlockError('EPERM', `LUN ${this.lun} is read-only`);
  }

  /**
   * After every change: the accounting at once (O(1)); the walk over every dirty page on one
   * change in PAGE_WALK_EVERY (amortized O(1) per write), or on every change with
   * SANBOX_PARANOID=1 (the test suites set it).
   */
  afterChange(): void {
    this.checkAccounting();
    if (PARANOID || ++this.changesSinceWalk >= PAGE_WALK_EVERY) this.checkInvariants();
  }

  private checkAccounting(): void {
    this.budget.assertInvariant();
    const held = this.budget.heldBy(this.member);
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
}

export function range(a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = a; i <= b; i++) out.push(i);
  return out;
}
