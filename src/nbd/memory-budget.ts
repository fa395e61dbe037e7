/**
 * The server-wide NBD memory budget: payload bytes in flight (write data held, read data being
 * produced) and reply bytes queued for the sockets, summed over every connection of one server
 * (one per process: `sanbox serve`, and each SP process of a two-SP array, has its own).
 *
 * The per-connection limits (session.ts) bound one connection; this bounds all of them together.
 * A connection is charged when it admits a request (its payload size) and when it queues a reply
 * (the reply's size), and released when the request has settled and when the socket has written
 * the reply. Before admitting a request of `size` bytes, a connection holding `held` bytes asks
 * `admits(held, size)`:
 *
 * - `held + size <= guarantee`: yes, whatever the others hold. Every connection may always have
 *   this much (1/64 of the budget, at least 1 MiB), so clients that read their replies keep being
 *   served while others hoard: that is the one place the total may pass the budget, by at most
 *   connections x guarantee.
 * - otherwise only while the budget has room (`used + size <= total`), and only up to the
 *   connection's fair share (`total / connections holding memory`) or, for a connection holding
 *   nothing, one request of any size: a request larger than the share still goes, one at a time.
 *
 * A connection refused stops reading its socket and waits here; it is woken whenever memory is
 * released anywhere (and with it, perhaps, one fewer connection holds memory: the shares grow).
 * A client that never reads its replies therefore stays charged with them and paused, and never
 * takes the others' share. A request larger than the whole budget goes when nothing else is
 * charged. Each reply's header (16 to 32 bytes) is charged on top of its admitted data.
 */
export interface NbdMemoryStats {
  /** The budget (bytes). */
  budget: number;
  /** Bytes charged now (payload in flight + replies queued), every connection together. */
  used: number;
  /** The most ever charged at once. */
  peak: number;
  /** What each connection may always hold, whatever the others hold. */
  guarantee: number;
  /** Connections in transmission. */
  connections: number;
  /** Connections holding memory now (the fair share is budget / holding). */
  holding: number;
  /** Connections paused because they are over their share or the budget is full. */
  waiting: number;
}

/** Default budget for one NBD server (one process). */
export const DEFAULT_NBD_MEMORY = 256 * 1024 * 1024;
/** The smallest budget accepted: the guarantee of one connection. */
export const MIN_NBD_MEMORY = 1024 * 1024;

/** Why `bytes` cannot be an NBD memory budget, or null. */
export function nbdMemoryProblem(bytes: number | undefined): string | null {
  if (bytes === undefined || !Number.isSafeInteger(bytes)) return 'must be a size, e.g. 256M or 1G';
  return bytes < MIN_NBD_MEMORY ? 'must be at least 1M' : null;
}

/** Something paused on the budget: `wake` re-checks and resumes it if it may go on. */
export interface BudgetWaiter {
  wake(): void;
}

/**
 * A broken invariant of the books: thrown under SANBOX_PARANOID (the tests), else reported once
 * on stderr and the books clamped, since a socket callback that throws would take the process
 * and every other connection down.
 */
export function budgetBug(message: string): void {
  if (process.env.SANBOX_PARANOID === '1') throw new Error(message);
  if (reported) return;
  reported = true;
  process.stderr.write(`sanbox: internal error (reported once): ${message}\n`);
}
let reported = false;

export class MemoryBudget {
  used = 0;
  peak = 0;
  /**
   * Connections holding something now (kept by the sessions as their charge leaves and returns
   * to 0): the fair share is the budget divided by them, so idle connections dilute nothing.
   */
  holding = 0;
  private connections = 0;
  readonly guarantee: number;
  private readonly waiters = new Set<BudgetWaiter>();
  private waking = false;

  constructor(readonly total: number = DEFAULT_NBD_MEMORY) {
    if (!(Number.isSafeInteger(total) && total > 0)) throw new RangeError(`NBD memory budget must be a positive number of bytes, not ${total}`);
    this.guarantee = Math.min(total, Math.max(1024 * 1024, Math.floor(total / 64)));
  }

  /** May a connection holding `held` bytes admit a request that will hold `size` more? */
  admits(held: number, size: number): boolean {
    if (held + size <= this.guarantee) return true;
    // A request larger than the whole budget goes when nothing else is charged.
    if (held === 0) return this.used + Math.min(size, this.total) <= this.total;
    return this.used + size <= this.total && (held + size) * this.holding <= this.total;
  }

  charge(n: number): void {
    this.used += n;
    if (this.used > this.peak) this.peak = this.used;
  }

  release(n: number): void {
    this.used -= n;
    if (this.used < 0) {
      const used = this.used;
      this.used = 0;
      budgetBug(`NBD memory budget released more than charged (used ${used})`);
    }
    if (this.waiters.size > 0) this.wakeAll();
  }

  /** A connection entered transmission. */
  join(): void {
    this.connections++;
  }

  /** A connection that joined has ended. */
  leave(w: BudgetWaiter): void {
    this.connections--;
    this.waiters.delete(w);
    if (this.waiters.size > 0) this.wakeAll();
  }

  wait(w: BudgetWaiter): void {
    this.waiters.add(w);
  }

  unwait(w: BudgetWaiter): void {
    this.waiters.delete(w);
  }

  private wakeAll(): void {
    // A woken connection admits requests and may release memory itself: no re-entrant rounds.
    if (this.waking) return;
    this.waking = true;
    try {
      for (const w of [...this.waiters]) w.wake();
    } finally {
      this.waking = false;
    }
  }

  stats(): NbdMemoryStats {
    return { budget: this.total, used: this.used, peak: this.peak, guarantee: this.guarantee, connections: this.connections, holding: this.holding, waiting: this.waiters.size };
  }
}
