import { CMD, LIMITS } from './constants.js';
import { budgetBug, type BudgetWaiter, type MemoryBudget } from './memory-budget.js';

export interface SessionLimits {
  /** Requests being served at once per connection; past it we stop reading the socket. */
  maxInflight: number;
  /** Payload bytes (write data held, read data being produced) in flight per connection. */
  maxInflightBytes: number;
  /** Reply bytes queued in the socket before we stop reading requests. */
  maxQueuedReplyBytes: number;
  /** A client must finish negotiating within this time. */
  handshakeTimeoutMs: number;
}

export const DEFAULT_LIMITS: SessionLimits = {
  maxInflight: 256,
  maxInflightBytes: 96 * 1024 * 1024,
  maxQueuedReplyBytes: 32 * 1024 * 1024,
  handshakeTimeoutMs: 30_000,
};

/**
 * What one connection holds, and whether it may read its next request (back-pressure): its
 * requests in flight and their data against its own limits, and its bytes charged to the
 * server's memory budget (payload in flight, replies queued) against its share of that. The
 * session stops reading its socket while `congested` says so; the budget wakes it.
 */
export class Admission {
  inflight = 0;
  inflightBytes = 0;
  /** Bytes charged to the server's memory budget: payload in flight plus replies not yet written. */
  held = 0;
  /** Counted among the budget's connections (in transmission, not yet ended). */
  private joined = false;

  constructor(
    private readonly sessionId: number,
    private readonly limits: SessionLimits,
    private readonly budget: MemoryBudget,
    private readonly waiter: BudgetWaiter,
    /** reply bytes queued: in the outbox and in the socket */
    private readonly queuedReplyBytes: () => number,
  ) {}

  /**
   * True when reading a request that will hold `cost` bytes would grow memory past the limits:
   * this connection's own, or its share of the server's budget (then it waits on the budget).
   */
  congested(cost: number): boolean {
    if (this.queuedReplyBytes() >= this.limits.maxQueuedReplyBytes) return true;
    // One request is always admitted, however large, so progress never depends on the limits.
    if (this.inflight > 0 && (this.inflight >= this.limits.maxInflight || this.inflightBytes >= this.limits.maxInflightBytes)) return true;
    if (this.budget.admits(this.held, cost)) return false;
    this.budget.wait(this.waiter);
    return true;
  }

  charge(n: number): void {
    if (this.held === 0 && n > 0) this.budget.holding++;
    this.held += n;
    this.budget.charge(n);
  }

  uncharge(n: number): void {
    if (n === 0) return;
    this.held -= n;
    if (this.held < 0) {
      const held = this.held;
      this.held = 0;
      budgetBug(`NBD session ${this.sessionId} released more budget than it held (${held})`);
    }
    if (this.held === 0) this.budget.holding--;
    this.budget.release(n);
  }

  /** A request starts: in flight with its data (a read's is charged now, a write's was charged when its payload was allocated). */
  begin(type: number, bytes: number): void {
    this.inflight++;
    this.inflightBytes += bytes;
    if (type === CMD.READ) this.charge(bytes);
  }

  /** A request settled: a write's payload is released (a read's charge went to its reply). */
  end(type: number, bytes: number): void {
    this.inflight--;
    this.inflightBytes -= bytes;
    if (type !== CMD.READ) this.uncharge(bytes);
  }

  /** The connection entered transmission: one more among the budget's connections. */
  join(): void {
    this.budget.join();
    this.joined = true;
  }

  /** The connection ended: it waits no more, and leaves the budget if it joined. */
  leave(): void {
    this.budget.unwait(this.waiter);
    if (!this.joined) return;
    this.joined = false;
    this.budget.leave(this.waiter);
  }

  /** It goes on: no longer waiting on the budget. */
  resumed(): void {
    this.budget.unwait(this.waiter);
  }
}

/** What a request holds while it runs: its payload (write) or its data (read); the rest hold no data. */
export function costOf(type: number, length: number): number {
  // An oversized request is refused without reading or producing its payload.
  return (type === CMD.READ || type === CMD.WRITE) && length <= LIMITS.MAX_PAYLOAD ? length : 0;
}
