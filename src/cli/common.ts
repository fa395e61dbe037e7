/** Shared pieces of the `sanbox` command: exit codes, errors, output, well-known paths. */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Exit codes of every `sanbox` verb (stable; documented in README.md):
 * 0 ok · 1 the array refused or failed the request, or a server could not start ·
 * 2 usage error (bad arguments, bad lab file): nothing was done · 3 cannot reach the array
 * (no API found, connection refused, lab not running).
 */
export const EXIT = { OK: 0, ERROR: 1, USAGE: 2, UNREACHABLE: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usage = (message: string): CliError => new CliError(EXIT.USAGE, 'usage', message);

/** Root of the sanbox package (holds package.json, bin/, lab/, images/). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(PACKAGE_ROOT, 'bin', 'sanbox.js');

/** Default home of array directories and lab state: $SANBOX_IMAGES, else <package>/images. */
export function imagesDir(): string {
  return resolve(process.env.SANBOX_IMAGES || join(PACKAGE_ROOT, 'images'));
}
export function labsDir(): string {
  return join(imagesDir(), '.labs');
}

export interface Output {
  json: boolean;
  out(text: string): void;
  err(text: string): void;
}

export function makeOutput(json: boolean): Output {
  return {
    json,
    out: (t) => process.stdout.write(t.endsWith('\n') ? t : t + '\n'),
    err: (t) => process.stderr.write(t.endsWith('\n') ? t : t + '\n'),
  };
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Renders rows as an aligned text table. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** Whether a process runs (a zombie waiting for its parent to reap it counts as gone). */
export function pidAlive(pid: number | undefined): boolean {
  if (!pid || !Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
