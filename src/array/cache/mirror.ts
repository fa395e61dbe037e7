/**
 * The two ends of write-cache mirroring between the SPs of one array.
 *
 * The owner SP's WriteCache calls a `CacheMirror` (in the SP process: a CMI client); the peer SP
 * keeps what it receives in a `PeerMirrorStore`. Generations are per WriteCache (per LUN while
 * one SP owns it) and strictly increase; every page a write touches carries the write's
 * generation. The store keeps, per page, the copy with the highest generation, and
 * `release`/`discard` only ever drop copies at or below the generation they name, so a release
 * of an old destage can never drop a newer copy.
 *
 * Contract for implementations of CacheMirror: calls reach the peer in the order they were made
 * (one ordered channel, like a CMI socket), and a call resolves only once the peer has applied
 * it. `mirror` is what makes a write-back write protected; it must reject if the peer could not
 * store the pages. The pages' buffers are the caller's (a WriteCache passes its own cache pages,
 * which change with the next write): `mirror` takes what it sends before it returns (one copy:
 * into the CMI frame, or into the store) and keeps no reference to them.
 */
import { SerialQueue } from '../../serial/index.js';
import { PageSlab } from './slab.js';

/** One cache page: `index` in units of `data.length` (the page size). */
export interface MirrorPage {
  index: number;
  generation: number;
  data: Buffer;
}

/** A page the peer may drop when it holds it at or below `generation`. */
export interface PageRef {
  index: number;
  generation: number;
}

export interface CacheMirror {
  /** Forget everything held for `lun` (the owner is about to resend its whole dirty set). */
  reset(lun: number): Promise<void>;
  /** Store (replace) these pages of `lun`; resolves once the peer holds them. */
  mirror(lun: number, pages: readonly MirrorPage[]): Promise<void>;
  /** These pages are on disk; the peer may drop copies at or below the given generations. */
  release(lun: number, pages: readonly PageRef[]): Promise<void>;
  /**
   * The byte range was trimmed or zeroed at `generation`: drop pages entirely inside it and
   * zero the covered bytes of pages partly inside it (both only for copies at or below
   * `generation`; partly covered copies take `generation`).
   */
  discard(lun: number, offset: number, length: number, generation: number): Promise<void>;
}

/** What an SP holds for its peer's LUNs: the receiving side of `CacheMirror`. */
export class PeerMirrorStore {
  private readonly luns = new Map<number, Map<number, MirrorPage>>();
  /** Page memory by page size: a page's buffer is reused for its newer copies and recycled when dropped. */
  private readonly slabs = new Map<number, PageSlab>();
  private bytesHeld = 0;

  get bytes(): number {
    return this.bytesHeld;
  }

  /** LUNs with at least one page held. */
  lunIds(): number[] {
    return [...this.luns.entries()].filter(([, m]) => m.size > 0).map(([l]) => l).sort((a, b) => a - b);
  }

  reset(lun: number): void {
    const m = this.luns.get(lun);
    if (!m) return;
    for (const p of m.values()) this.drop(p);
    this.luns.delete(lun);
  }

  /** Stores copies of the pages (the caller's buffers are not kept). Older generations are ignored. */
  mirror(lun: number, pages: readonly MirrorPage[]): void {
    let m = this.luns.get(lun);
    if (!m) this.luns.set(lun, (m = new Map()));
    for (const p of pages) {
      checkPage(p);
      const cur = m.get(p.index);
      if (cur && cur.data.length !== p.data.length) throw new Error(`PeerMirrorStore: LUN ${lun} page ${p.index} changes size ${cur.data.length} -> ${p.data.length}`);
      if (cur && cur.generation >= p.generation) continue;
      if (cur) {
        p.data.copy(cur.data);
        cur.generation = p.generation;
        continue;
      }
      const data = this.slab(p.data.length).take();
      p.data.copy(data);
      m.set(p.index, { index: p.index, generation: p.generation, data });
      this.bytesHeld += data.length;
    }
  }

  release(lun: number, pages: readonly PageRef[]): void {
    const m = this.luns.get(lun);
    if (!m) return;
    for (const r of pages) {
      const cur = m.get(r.index);
      if (cur && cur.generation <= r.generation) {
        m.delete(r.index);
        this.drop(cur);
      }
    }
  }

  discard(lun: number, offset: number, length: number, generation: number): void {
    const m = this.luns.get(lun);
    if (!m || length <= 0) return;
    const end = offset + length;
    for (const p of [...m.values()]) {
      const ps = p.index * p.data.length;
      const pe = ps + p.data.length;
      if (pe <= offset || ps >= end || p.generation > generation) continue;
      if (ps >= offset && pe <= end) {
        m.delete(p.index);
        this.drop(p);
      } else {
        p.data.fill(0, Math.max(offset, ps) - ps, Math.min(end, pe) - ps);
        p.generation = generation;
      }
    }
  }

  /** Copies of the pages held for `lun`, by index (in one allocation per page size). */
  pages(lun: number): MirrorPage[] {
    const m = this.luns.get(lun);
    if (!m) return [];
    const held = [...m.values()].sort((a, b) => a.index - b.index);
    const all = Buffer.allocUnsafeSlow(held.reduce((n, p) => n + p.data.length, 0));
    let at = 0;
    return held.map((p) => {
      const data = all.subarray(at, at + p.data.length);
      at += p.data.length;
      p.data.copy(data);
      return { index: p.index, generation: p.generation, data };
    });
  }

  /** Removes and returns everything held for `lun` (takeover: the pages go into a WriteCache). */
  take(lun: number): MirrorPage[] {
    const pages = this.pages(lun);
    this.reset(lun);
    return pages;
  }

  /** Drops everything (a rebooted SP's stale mirror). */
  clear(): void {
    for (const lun of [...this.luns.keys()]) this.reset(lun);
    if (this.bytesHeld !== 0) throw new Error(`PeerMirrorStore invariant: ${this.bytesHeld} bytes held after clearing`);
  }

  private slab(pageSize: number): PageSlab {
    let s = this.slabs.get(pageSize);
    if (!s) this.slabs.set(pageSize, (s = new PageSlab(pageSize)));
    return s;
  }

  private drop(p: MirrorPage): void {
    this.slab(p.data.length).give(p.data);
    this.bytesHeld -= p.data.length;
  }
}

function checkPage(p: MirrorPage): void {
  if (!Number.isSafeInteger(p.index) || p.index < 0 || !Number.isSafeInteger(p.generation) || p.generation < 0 || p.data.length === 0) {
    throw new Error(`PeerMirrorStore: malformed page ${p.index} gen ${p.generation} (${p.data.length} bytes)`);
  }
}

/**
 * An in-process CacheMirror delivering to a PeerMirrorStore (single-process arrays, tests).
 * `delay` (optional) is awaited before each call is applied; calls stay in order regardless.
 * Without a delay, a call made while no earlier call is pending applies at once (the store takes
 * its one copy of the pages then); otherwise the pages are copied now and applied in turn.
 */
export class LocalCacheMirror implements CacheMirror {
  /** Calls apply in order (like one CMI socket); each caller gets its own call's error. */
  private readonly calls = new SerialQueue();
  /** Calls queued and not yet settled. */
  private queued = 0;
  /** When set, every call rejects with this error (a dead peer or a cut CMI). */
  failWith: Error | null = null;

  constructor(
    readonly store: PeerMirrorStore,
    private readonly delay?: () => Promise<void>,
  ) {}

  reset(lun: number): Promise<void> {
    return this.call(() => this.store.reset(lun));
  }
  mirror(lun: number, pages: readonly MirrorPage[]): Promise<void> {
    if (this.immediate()) return this.applyNow(() => this.store.mirror(lun, pages));
    const copy = pages.map((p) => ({ index: p.index, generation: p.generation, data: Buffer.from(p.data) }));
    return this.call(() => this.store.mirror(lun, copy));
  }
  release(lun: number, pages: readonly PageRef[]): Promise<void> {
    const copy = pages.map((p) => ({ ...p }));
    return this.call(() => this.store.release(lun, copy));
  }
  discard(lun: number, offset: number, length: number, generation: number): Promise<void> {
    return this.call(() => this.store.discard(lun, offset, length, generation));
  }

  /** No delay and nothing queued ahead: applying now keeps the call order. */
  private immediate(): boolean {
    return !this.delay && this.queued === 0;
  }

  private applyNow(apply: () => void): Promise<void> {
    if (this.failWith) return Promise.reject(this.failWith);
    try {
      apply();
    } catch (e) {
      return Promise.reject(e);
    }
    return Promise.resolve();
  }

  private call(apply: () => void): Promise<void> {
    if (this.immediate()) return this.applyNow(apply);
    const failure = this.failWith;
    const run = async (): Promise<void> => {
      try {
        if (this.delay) await this.delay();
        if (failure) throw failure;
        apply();
      } finally {
        this.queued--;
      }
    };
    this.queued++;
    return this.calls.run(run);
  }
}
