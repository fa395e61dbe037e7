/** Why a host resource did not reach the state asked for, with the command result that shows it. */
import type { CommandResult } from './command.js';

export type ResourceErrorCode = 'start-failed' | 'stop-failed' | 'monitor-timeout';

export class ResourceError extends Error {
  override readonly name = 'ResourceError';

  constructor(
    readonly code: ResourceErrorCode,
    readonly resource: string,
    /** the command that failed: start or stop, or the last monitor run for monitor-timeout */
    readonly result: CommandResult,
    message: string,
  ) {
    super(message);
  }
}

/** "exit 3", "killed by SIGTERM", "timed out after 500 ms": how a command ended, for a message. */
export function describeEnd(r: CommandResult, timeoutMs: number): string {
  if (r.timedOut) return `timed out after ${timeoutMs} ms`;
  if (r.signal !== null) return `killed by ${r.signal}`;
  return `exit ${r.exitCode}`;
}

/** The last non-empty line of a command's output, quoted, for a one-line message. */
export function lastLine(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines.length === 0 ? '(no output)' : JSON.stringify(lines[lines.length - 1]);
}
