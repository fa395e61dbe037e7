/**
 * Errors a shutdown path may drop on purpose: closing a file or a link that is going away, waiting
 * for a task that was told to stop. `ignoreOnClose(p, why)` names the decision at the call site,
 * never throws, and still prints the error when SANBOX_PARANOID or SANBOX_DEBUG is set (a close
 * that fails in tests is worth seeing). Anything whose failure matters belongs in an event or a
 * log entry instead.
 */
export function ignoreOnClose(p: Promise<unknown>, why: string): void {
  p.catch((err: unknown) => {
    if (!loud()) return;
    try {
      console.error(`sanbox: ignored on close (${why}):`, err);
    } catch {
      // a closed stderr must not turn an ignored error into a thrown one
    }
  });
}

function loud(): boolean {
  return Boolean(process.env.SANBOX_PARANOID) || Boolean(process.env.SANBOX_DEBUG);
}
