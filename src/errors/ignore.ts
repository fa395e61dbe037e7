/**
 * Deliberately ignored failures, said out loud.
 *
 * On a shutdown path (closing a socket, stopping a child, removing a temp file after the real
 * error) a second failure changes nothing the caller could act on: the object is going away.
 * `ignoreOnClose()` marks such a promise as handled, with the reason, instead of a silent
 * `.catch(() => undefined)`. With SANBOX_PARANOID or SANBOX_DEBUG set the ignored error is
 * printed to stderr, so a close that fails every time does not go unseen in tests.
 */

/** Whether ignored errors are printed (read at each call: tests set the variables late). */
function verbose(): boolean {
  return Boolean(process.env.SANBOX_PARANOID || process.env.SANBOX_DEBUG);
}

/** Lets `p` fail without an unhandled rejection; `why` says why its failure does not matter. Never throws. */
export function ignoreOnClose(p: Promise<unknown>, why: string): void {
  p.then(undefined, (e: unknown) => {
    if (!verbose()) return;
    try {
      const detail = e instanceof Error ? e.message : String(e);
      process.stderr.write(`sanbox: ignored on close (${why}): ${detail}\n`);
    } catch {
      // stderr itself is gone (closed pipe at exit): nothing left to tell.
    }
  });
}
