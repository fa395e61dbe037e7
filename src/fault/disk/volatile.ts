/**
 * A disk with a volatile write cache, for the lose-unflushed mode of a disk fault: what a host
 * write, trim or write-zeroes without FUA leaves is held in an in-memory overlay (./overlay.ts)
 * that reads see, and reaches the device below only when a flush completes (everything held
 * written down, then the device below flushed, then the flush answered), when the overlay grows
 * past its limit (its oldest content written down, like a disk destaging on its own), or when the
 * mode is turned off. A FUA request goes straight down and supersedes what the overlay holds for
 * its range. The overlay is memory of the array process: a SIGKILL loses it, which is the point
 * (the way dm-log-writes replays or Jepsen's lose-unfsynced-writes model a page cache that never
 * reached the platters).
 *
 * One per LUN and process (DiskFaultState.volatileOver): every DiskFaultLayer over the LUN's
 * image shares it, so the host path and the mirror driver's path see the same overlay.
 *
 * Writes to the device below (written-down pieces, FUA and pass-through writes while anything is
 * held or going down) are ordered per byte range in the order they were issued, so older content
 * never lands over newer.
 */
import { assertRange, BlockError, type BlockDevice, type Extent, type WriteOptions, type ZeroOptions } from '../../block/index.js';
import { Overlay, type Piece } from './overlay.js';

export interface UnflushedCounters {
  /** Writes, trims and write-zeroes held in the overlay (not FUA). */
  held: number;
  /** Bytes written down by flushes (and by turning the mode off or clearing the fault). */
  flushedBytes: number;
  /** Bytes written down because the overlay was over its limit. */
  destagedBytes: number;
}

export const zeroUnflushed = (): UnflushedCounters => ({ held: 0, flushedBytes: 0, destagedBytes: 0 });

/** What the fault says right now: hold unflushed writes or not, and the overlay's limit. */
export interface VolatileMode {
  hold: boolean;
  maxBytes: number;
}

interface InFlight {
  offset: number;
  end: number;
  /** Settles (never rejects) when the write below has finished. */
  done: Promise<void>;
}

/** A copy the overlay owns (the caller may reuse its buffer once the write is answered). */
function own(data: Buffer): Buffer {
  const b = Buffer.allocUnsafeSlow(data.length);
  data.copy(b);
  return b;
}

/** Pieces written down at once by a flush or a destage. */
const WRITE_DOWN_CONCURRENCY = 8;

const sum = (ps: Piece[]) => ps.reduce((n, p) => n + p.length, 0);

export class VolatileDisk {
  private readonly overlay = new Overlay();
  private inflight: InFlight[] = [];
  private seq = 0;
  private bounding: Promise<void> | undefined;
  counters: UnflushedCounters = zeroUnflushed();

  constructor(
    readonly lower: BlockDevice,
    private readonly mode: () => VolatileMode,
  ) {}

  /** Nothing held and nothing going down: a request may pass straight through. */
  get idle(): boolean {
    return this.overlay.empty && this.inflight.length === 0;
  }

  /** Bytes only in memory: what a crash now would lose. */
  get unflushedBytes(): number {
    return this.overlay.bytes;
  }

  resetCounters(): void {
    this.counters = zeroUnflushed();
  }

  /** Forgets what is held (the LUN is deleted: its image goes too). */
  drop(): void {
    this.overlay.drop();
  }

  /**
   * The device's bytes with the overlay over them. The overlay is looked at before the device is
   * read: a piece written down (and removed) meanwhile is then still merged, never missed.
   */
  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const over = this.overlay.overlapping(offset, length);
    const got = await this.lower.read(offset, length, into);
    if (over.length === 0) return got;
    Overlay.merge(over, got, offset);
    if (into && (into.buffer !== got.buffer || into.byteOffset !== got.byteOffset)) got.copy(into);
    return got;
  }

  write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    if (data.length > 0 && this.holds(opts)) return this.hold({ offset, length: data.length, data: own(data) });
    return this.direct(offset, data.length, data, () => this.lower.write(offset, data, opts));
  }

  /**
   * A trim or write-zeroes. Held, it reads as zeroes and is written down as write-zeroes (so
   * what a read returned never changes when it goes down, whatever a trim below would leave).
   */
  discard(kind: 'trim' | 'zero', offset: number, length: number, opts: ZeroOptions = {}): Promise<void> {
    if (length > 0 && this.holds(opts)) {
      // FAST_ZERO: answer as the device below would (the overlay itself is always fast)
      if (opts.fastZero && !this.lower.capabilities.fastZero) return Promise.reject(new BlockError('ENOTSUP', 'fast zero is not supported by the device below'));
      return this.hold({ offset, length, noHole: opts.noHole });
    }
    const down = kind === 'trim' ? () => this.lower.trim(offset, length, opts) : () => this.lower.writeZeroes(offset, length, opts);
    return this.direct(offset, length, undefined, down);
  }

  /**
   * Writes down everything held now and waits for every write going down, then flushes the
   * device below: every write answered before the flush is then on it.
   */
  async flush(): Promise<void> {
    const going = this.inflight.map((w) => w.done);
    const pieces = this.overlay.held();
    const started = sum(pieces.filter((p) => !p.writing));
    await this.writeAll(pieces);
    await Promise.all(going);
    this.counters.flushedBytes += started;
    await this.lower.flush();
  }

  /** Block status with what the overlay holds: data (or zeroes) where it has a piece. */
  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    assertRange(this.lower, offset, length);
    const [p] = this.overlay.overlapping(offset, length);
    if (!p) return this.lower.blockStatus(offset, length);
    if (p.offset > offset) return this.lower.blockStatus(offset, p.offset - offset);
    return [{ length: Math.min(p.offset + p.length, offset + length) - offset, hole: false, zero: !p.data }];
  }

  private holds(opts: WriteOptions | undefined): boolean {
    return this.mode().hold && !opts?.fua;
  }

  private async hold(p: Pick<Piece, 'offset' | 'length' | 'data' | 'noHole'>): Promise<void> {
    this.overlay.put({ ...p, seq: ++this.seq, held: true });
    this.counters.held++;
    // Past the limit the write waits for the oldest content to go down: memory stays bounded.
    if (this.overlay.bytes > this.mode().maxBytes) await this.bound();
  }

  /**
   * A request that goes down now (FUA, or the mode is off). While it is on its way, reads of its
   * range must see it rather than older held content, and that content must never go down after
   * it: so it replaces that content in the overlay until it has landed.
   */
  private async direct(offset: number, length: number, data: Buffer | undefined, down: () => Promise<void>): Promise<void> {
    if (this.idle || length === 0) return down();
    const seq = ++this.seq;
    if (this.overlay.overlapping(offset, length).length > 0) this.overlay.put({ offset, length, data: data && own(data), seq, held: false });
    try {
      await this.ordered(offset, length, down);
    } finally {
      this.overlay.remove(offset, length, seq);
    }
  }

  /** Runs a write to the device below after every earlier one that overlaps it. */
  private async ordered(offset: number, length: number, down: () => Promise<void>): Promise<void> {
    const end = offset + length;
    const before = this.inflight.filter((w) => w.offset < end && offset < w.end).map((w) => w.done);
    let settle!: () => void;
    const me: InFlight = { offset, end, done: new Promise<void>((r) => (settle = r)) };
    this.inflight.push(me);
    try {
      if (before.length > 0) await Promise.all(before);
      await down();
    } finally {
      this.inflight.splice(this.inflight.indexOf(me), 1);
      settle();
    }
  }

  /**
   * Writes pieces down, a few at a time (the device below gains nothing from thousands at once,
   * and each write is ordered against those in flight); rejects with the first failure once
   * every one has settled.
   */
  private async writeAll(pieces: Piece[]): Promise<void> {
    let next = 0;
    const failures: unknown[] = [];
    const worker = async (): Promise<void> => {
      while (next < pieces.length) await this.writeDown(pieces[next++]!).catch((e: unknown) => void failures.push(e));
    };
    await Promise.all(Array.from({ length: Math.min(WRITE_DOWN_CONCURRENCY, pieces.length) }, worker));
    if (failures.length > 0) throw failures[0];
  }

  /**
   * Writes down what is left of a held piece now: it may have been cut by newer writes since it
   * was picked, and its old bytes must never land over theirs.
   */
  private async writeDown(p: Piece): Promise<void> {
    const left = this.overlay.overlapping(p.offset, p.length).filter((q) => q.seq === p.seq);
    await Promise.all(left.map((q) => this.writeOne(q)));
  }

  /** Writes one piece down (or joins the write already taking it down); it leaves the overlay once below. */
  private writeOne(p: Piece): Promise<void> {
    if (p.writing) return p.writing;
    const { offset, length, seq, data, noHole } = p;
    const down = data ? () => this.lower.write(offset, data) : () => this.lower.writeZeroes(offset, length, { noHole });
    p.writing = this.ordered(offset, length, down).then(
      () => this.overlay.remove(offset, length, seq),
      (e: unknown) => {
        this.overlay.unmarkWriting(offset, length, seq);
        throw e;
      },
    );
    return p.writing;
  }

  /** One destage at a time for every write that finds the overlay over its limit. */
  private bound(): Promise<void> {
    this.bounding ??= this.destageOldest().finally(() => (this.bounding = undefined));
    return this.bounding;
  }

  /** Writes the oldest content down until the overlay is at three quarters of its limit. */
  private async destageOldest(): Promise<void> {
    for (let max = this.mode().maxBytes; this.overlay.bytes > max; max = this.mode().maxBytes) {
      const pieces = this.overlay.oldest(this.overlay.bytes - Math.floor((max * 3) / 4));
      // Nothing left to start: everything held is already going down; wait for it.
      if (pieces.length === 0) await Promise.allSettled(this.overlay.held().map((p) => p.writing));
      else {
        await this.writeAll(pieces);
        this.counters.destagedBytes += sum(pieces);
      }
    }
  }
}
