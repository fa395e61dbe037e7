/**
 * Closed pipes and other output errors, for every verb of `sanbox`, `prmd` and `chkmon` (their
 * mains call `handleOutputErrors` first; docs/cli.md, "Pipes").
 *
 * `sanbox link status | head -1`: head reads one line and exits, and the next write of the verb
 * fails with EPIPE. Node reports that asynchronously, as an 'error' event on process.stdout,
 * which without a listener crashes the process with a stack trace. Here a reader closing the
 * pipe is the reader's choice, not a failure: the process stops at once, quietly (no message),
 * like `git log | head` stopped by SIGPIPE, but with an ordinary exit code instead of a signal
 * (141 in a shell), so that `set -o pipefail` scripts do not fail because of their own `head`:
 * the verb's own exit code when it has already returned (bin/*.js has set process.exitCode),
 * otherwise 0. The same on standard error (`2>&1 | head`). A `--watch` loop or `monitor events
 * --follow` ends with it.
 *
 * Any other write error (a full disk: ENOSPC, EIO) is a failure: one line on standard error
 * (when it can still be written), never a stack trace, and exit `failCode` (1 for sanbox; the
 * monitor tools' "internal error", 10).
 */

let installed = false;

/** Installs the stdout and stderr 'error' handlers, once per process (later calls do nothing). */
export function handleOutputErrors(name: string, failCode: number): void {
  if (installed) return;
  installed = true;
  const handler = (stream: 'standard output' | 'standard error') => (e: NodeJS.ErrnoException) => {
    if (e?.code === 'EPIPE') process.exit(knownExitCode());
    if (stream === 'standard output') {
      try {
        process.stderr.write(`${name}: cannot write to ${stream}: ${e?.message ?? e}\n`);
      } catch {
        /* standard error is gone too: the exit code says it */
      }
    }
    process.exit(failCode);
  };
  process.stdout.on('error', handler('standard output'));
  process.stderr.on('error', handler('standard error'));
}

/** The exit code the bin script set once the verb returned; 0 while it still runs. */
function knownExitCode(): number {
  const c = process.exitCode;
  if (typeof c === 'number') return c;
  if (typeof c === 'string' && /^\d+$/.test(c)) return Number(c);
  return 0;
}
