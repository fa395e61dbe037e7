/**
 * Errors that are deliberately not acted upon, named as such. On a shutdown path (closing a
 * server, a socket, a device that is going away) a failure changes nothing the caller could do:
 * the step is awaited and its error dropped with a reason, shown when SANBOX_DEBUG is set (not
 * under SANBOX_PARANOID: tests compare the stderr of the commands they run). Everywhere else an error is reported (an event, a log line) or thrown.
 */
export function ignoreOnClose(p: Promise<unknown> | undefined, why: string): Promise<void> {
  // undefined: a step that does not exist this time (no listener, no resync running).
  if (!p) return Promise.resolve();
  return p.then(
    () => undefined,
    (e: unknown) => {
      if (process.env.SANBOX_DEBUG) process.stderr.write(`sanbox: ignored while ${why}: ${(e as Error)?.message ?? String(e)}\n`);
    },
  );
}
