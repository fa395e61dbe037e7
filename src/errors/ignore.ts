/**
 * Shutdown paths may drop an error on purpose (closing what is already broken or gone): say so
 * with `ignoreOnClose(promise, why)` instead of a bare `.catch(() => undefined)`, so the reason
 * is written down and, in tests and debugging, visible.
 */

/** Debug output only when asked for (the test suites set SANBOX_PARANOID=1). */
function verbose(): boolean {
  return Boolean(process.env.SANBOX_PARANOID || process.env.SANBOX_DEBUG);
}

/**
 * Lets `p` settle without anyone waiting for it, its rejection ignored on purpose (`why` says
 * why that is safe). Never throws; logs the error to stderr when SANBOX_PARANOID or SANBOX_DEBUG
 * is set.
 */
export function ignoreOnClose(p: Promise<unknown>, why: string): void {
  p.then(undefined, (e: unknown) => {
    if (!verbose()) return;
    try {
      process.stderr.write(`sanbox: ignored on close (${why}): ${e instanceof Error ? e.message : String(e)}\n`);
    } catch {
      // stderr itself is gone: nothing left to tell.
    }
  });
}
