/**
 * Per-page FIFO locks. Every operation that touches the lower device for a page (partial-page
 * fill, write-through, trim/zeroes, destage) holds that page's lock, so at most one of them is in
 * flight per page and they land below in lock order. Multi-page holders lock in ascending page
 * order; destaging only ever try-locks, so there is no lock cycle.
 */
export class PageLocks {
  private readonly held = new Map<number, (() => void)[]>();
  private readonly listeners: (() => void)[] = [];

  isLocked(index: number): boolean {
    return this.held.has(index);
  }

  tryLock(index: number): boolean {
    if (this.held.has(index)) return false;
    this.held.set(index, []);
    return true;
  }

  lock(index: number): Promise<void> {
    const q = this.held.get(index);
    if (!q) {
      this.held.set(index, []);
      return Promise.resolve();
    }
    return new Promise((resolve) => q.push(resolve));
  }

  /** Locks every index (sorted ascending, duplicates removed by the caller). */
  async lockAll(indexes: readonly number[]): Promise<void> {
    for (let i = 1; i < indexes.length; i++) {
      if (indexes[i]! <= indexes[i - 1]!) throw new Error('PageLocks: indexes must be strictly ascending');
    }
    for (const i of indexes) await this.lock(i);
  }

  unlock(index: number): void {
    const q = this.held.get(index);
    if (!q) throw new Error(`PageLocks: unlocking page ${index} which is not locked`);
    const next = q.shift();
    if (next) next();
    else this.held.delete(index);
    if (this.listeners.length) for (const l of this.listeners.splice(0)) l();
  }

  unlockAll(indexes: readonly number[]): void {
    for (const i of indexes) this.unlock(i);
  }

  /** Resolves at the next unlock of any page. */
  nextUnlock(): Promise<void> {
    return new Promise((resolve) => this.listeners.push(resolve));
  }
}
