import { BlockError } from '../../block/device.js';

/** Something the budget can ask to destage when it runs short (a WriteCache). */
export interface BudgetMember {
  /** Called when dirty data should shrink: a writer waits, or the high watermark was crossed. */
  onPressure(): void;
}

export interface CacheBudgetOptions {
  /** Fraction of capacity at which background destaging starts (default 0.75). */
  highWatermark?: number;
  /** Fraction of capacity at which it stops again (default 0.5). */
  lowWatermark?: number;
}

/**
 * The write-cache memory of one SP, shared by the WriteCaches of all LUNs the SP owns.
 *
 * Invariant (asserted on every change): `used <= capacity`, and `used` equals the sum of what
 * each member holds (`heldBy(member)`: its dirty pages plus granted reservations it has not yet
 * turned into pages; each WriteCache asserts its dirty bytes never exceed what it holds). Reservations are served strictly in
 * FIFO order, so a large write cannot starve behind a stream of small ones.
 */
export class CacheBudget {
  private usedBytes = 0;
  private readonly waiters: { member: BudgetMember; bytes: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Bytes held by each member: its dirty pages plus reservations not yet turned into pages. */
  private readonly members = new Map<BudgetMember, number>();
  /** Between crossing the high watermark and falling to the low one. */
  private draining = false;
  readonly highBytes: number;
  readonly lowBytes: number;

  constructor(
    readonly capacity: number,
    opts: CacheBudgetOptions = {},
  ) {
    if (!Number.isSafeInteger(capacity) || capacity <= 0) throw new BlockError('EINVAL', `cache budget ${capacity} must be a positive integer`);
    const hi = opts.highWatermark ?? 0.75;
    const lo = opts.lowWatermark ?? 0.5;
    if (!(lo >= 0 && lo <= hi && hi <= 1)) throw new BlockError('EINVAL', `watermarks must satisfy 0 <= low (${lo}) <= high (${hi}) <= 1`);
    this.highBytes = Math.floor(capacity * hi);
    this.lowBytes = Math.floor(capacity * lo);
  }

  get used(): number {
    return this.usedBytes;
  }
  get free(): number {
    return this.capacity - this.usedBytes;
  }
  /** Writers currently blocked on the budget (back-pressure). */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * True while members should destage in the background: a writer is waiting, or usage crossed
   * the high watermark and has not yet fallen to the low one.
   */
  get pressure(): boolean {
    if (this.waiters.length > 0) return true;
    if (this.usedBytes >= this.highBytes && this.highBytes > 0) this.draining = true;
    else if (this.usedBytes <= this.lowBytes) this.draining = false;
    return this.draining;
  }

  register(m: BudgetMember): void {
    if (!this.members.has(m)) this.members.set(m, 0);
  }
  /** Removes a member; it must hold nothing (release its pages first). */
  unregister(m: BudgetMember): void {
    const held = this.members.get(m) ?? 0;
    if (held !== 0) throw new Error(`CacheBudget invariant: unregistering a member that still holds ${held} bytes`);
    if (this.waiters.some((w) => w.member === m)) throw new Error('CacheBudget: unregistering a member with a waiting reservation');
    this.members.delete(m);
  }

  /** What `m` holds: its dirty pages plus granted reservations. */
  heldBy(m: BudgetMember): number {
    return this.members.get(m) ?? 0;
  }

  /** Takes `bytes` now if they are free and nobody is queued ahead; never waits. */
  tryReserve(m: BudgetMember, bytes: number): boolean {
    this.checkBytes(bytes);
    this.checkMember(m);
    if (bytes === 0) return true;
    if (this.waiters.length > 0 || this.usedBytes + bytes > this.capacity) return false;
    this.grant(m, bytes);
    this.afterChange();
    return true;
  }

  /** Takes `bytes`, waiting (FIFO) for members to destage. Rejects at once if it can never fit. */
  reserve(m: BudgetMember, bytes: number): Promise<void> {
    this.checkBytes(bytes);
    this.checkMember(m);
    if (bytes > this.capacity) return Promise.reject(new BlockError('ENOSPC', `reservation of ${bytes} bytes exceeds the cache of ${this.capacity}`));
    if (this.tryReserve(m, bytes)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ member: m, bytes, resolve, reject });
      this.kick();
    });
  }

  /** Gives back `bytes` held by `m` (pages destaged or dropped, or an unused reservation). */
  release(m: BudgetMember, bytes: number): void {
    this.checkBytes(bytes);
    this.checkMember(m);
    if (bytes === 0) return;
    const held = this.members.get(m)!;
    if (bytes > held) throw new Error(`CacheBudget invariant: member releases ${bytes} bytes but holds ${held}`);
    this.members.set(m, held - bytes);
    this.usedBytes -= bytes;
    while (this.waiters.length > 0 && this.usedBytes + this.waiters[0]!.bytes <= this.capacity) {
      const w = this.waiters.shift()!;
      this.grant(w.member, w.bytes);
      w.resolve();
    }
    this.afterChange();
  }

  /** Asserts the accounting invariant across every member. */
  assertInvariant(): void {
    if (this.usedBytes < 0 || this.usedBytes > this.capacity) {
      throw new Error(`CacheBudget invariant: used ${this.usedBytes} outside 0..${this.capacity}`);
    }
    let sum = 0;
    for (const held of this.members.values()) sum += held;
    if (sum !== this.usedBytes) throw new Error(`CacheBudget invariant: members hold ${sum} bytes, budget says ${this.usedBytes}`);
  }

  private grant(m: BudgetMember, bytes: number): void {
    this.usedBytes += bytes;
    this.members.set(m, (this.members.get(m) ?? 0) + bytes);
  }

  private afterChange(): void {
    this.assertInvariant();
    if (this.pressure) this.kick();
  }

  private kick(): void {
    for (const m of this.members.keys()) m.onPressure();
  }

  private checkMember(m: BudgetMember): void {
    if (!this.members.has(m)) throw new Error('CacheBudget: member is not registered');
  }

  private checkBytes(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new Error(`CacheBudget: invalid byte count ${bytes}`);
  }
}
