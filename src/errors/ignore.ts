/**
 * Errors that may be dropped, said so where they are dropped.
 *
 * `ignoreOnClose(p, why)`: on a shutdown path a failure of `p` changes nothing (the thing is going
 * away); the caller says why. Never throws, never leaves an unhandled rejection; with
 * SANBOX_PARANOID or SANBOX_DEBUG set the error goes to stderr so a test run can see it.
 */
export function ignoreOnClose(p: Promise<unknown>, why: string): void {
  p.then(undefined, (e: unknown) => {
    if (process.env.SANBOX_PARANOID || process.env.SANBOX_DEBUG) {
      try {
        process.stderr.write(`sanbox: ignored on close (${why}): ${e instanceof Error ? e.message : String(e)}\n`);
      } catch {
        // stderr closed: nothing left to tell
      }
    }
  });
}
