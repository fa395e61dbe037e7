/**
 * Bearer tokens from a file. A token given on the command line (`--api-token`, `--token`) is
 * visible to every user of the host in `ps` and /proc; `--api-token-file FILE` / `--token-file
 * FILE` (its first line) and the environment variables are not.
 */
import { readFileSync } from 'node:fs';
import { usage } from './common.js';

/** The first line of `file`, trimmed; a usage error (exit 2) when it cannot be read or is empty. */
export function readTokenFile(file: string, flag: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw usage(`${flag} ${file} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const first = (text.split(/\r?\n/, 1)[0] ?? '').trim();
  if (!first) throw usage(`${flag} ${file} is empty: its first line must be the token`);
  return first;
}

/**
 * The token of a command: `--X-token` (given), else the first line of `--X-token-file`, else the
 * environment variable `env`; undefined when none. Both flags at once is a usage error.
 */
export function resolveToken(given: { token?: string; file?: string }, flags: { token: string; file: string }, env: string): string | undefined {
  if (given.token !== undefined && given.file !== undefined) throw usage(`${flags.token} and ${flags.file} both given: give one`);
  if (given.token !== undefined) return given.token;
  if (given.file !== undefined) return readTokenFile(given.file, flags.file);
  return process.env[env] || undefined;
}
