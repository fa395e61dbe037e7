/** What every verb's command definition shares: the target options and the exit-code runner. */
import type { Command } from 'commander';

/** Wraps a verb so that its resolved exit code becomes the CLI's (main() owns the code). */
export type Run = <A extends unknown[]>(fn: (...args: A) => Promise<number>) => (...args: A) => Promise<void>;

/** The options that pick the array a client verb talks to (see target.ts), and --json. */
export function targetOptions(cmd: Command): Command {
  return cmd
    .option('--api <url>', 'management API base URL (default: $SANBOX_API, else the running lab)')
    .option('--token-file <file>', 'API bearer token: the first line of FILE (default: $SANBOX_TOKEN, else the lab state file)')
    .option('--token <token>', 'the token itself: visible to other users in ps, prefer --token-file or $SANBOX_TOKEN')
    .option('--lab <name>', 'lab whose array to use (default: $SANBOX_LAB, else the only running lab)')
    .option('--array <name>', "array of the lab (default: the lab's first)")
    .option('--json', 'machine-readable output');
}

