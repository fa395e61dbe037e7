/**
 * Runs tasks one at a time, in call order (a LUN table's mutations, a cache mirror's calls, a group's
 * record changes). Each caller gets its own task's result or error; a failed task does not stop the
 * tasks queued after it (the queue itself never rejects).
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Queues `fn`; it runs once every task queued before it has settled. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn);
    this.tail = p.then(settled, settled);
    return p;
  }

  /** Resolves once every task queued so far has settled. */
  drained(): Promise<void> {
    return this.tail.then(settled);
  }
}

function settled(): void {
  // The caller of the task got its result or error; the queue only waits for it.
}
