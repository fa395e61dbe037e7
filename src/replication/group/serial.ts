/**
 * One-at-a-time sections: `run(fn)` starts `fn` after everything queued before it has settled.
 * The caller gets `fn`'s result or error; the queue itself only orders, so one failure never
 * blocks the next section.
 */
export class Serial {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    // run's error goes to the caller, who holds `run`; the queue goes on either way.
    const next = (): void => undefined;
    this.tail = run.then(next, next);
    return run;
  }

  /** Resolves once everything queued so far has settled; never rejects. */
  idle(): Promise<void> {
    return this.tail;
  }
}
