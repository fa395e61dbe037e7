/** Shared pieces of the `sanbox` command: exit codes, errors, output, well-known paths. */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPlainName } from '../array/index.js';

/**
 * Exit codes of every `sanbox` verb (stable; documented in docs/cli.md):
 * 0 ok · 1 the array (or the lab, the link emulator, the monitor) answered and refused or
 * failed the request, including a well-formed name that names nothing, or a server could not
 * start · 2 usage error: what the command line or its files say is wrong by themselves
 * (malformed option, size, URL or name, bad lab file), found before anything is sent ·
 * 3 cannot reach the array (no API found, connection refused, lab not running, array down).
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

/**
 * A name (array, LUN, mirror, group, link, snapshot) or a LUN id as given; a usage error when it
 * breaks the arrays' name rules (docs/cli.md), so that a malformed name is never sent.
 */
export function nameArg(text: string, what: string): string {
  if (!isPlainName(text)) {
    throw usage(`${what} ${JSON.stringify(text)} is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)`);
  }
  return text;
}

/** An API base URL (http://HOST:PORT); a usage error otherwise: a malformed URL is not an unreachable array. */
export function apiUrlArg(text: string, what: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw usage(`${what} must be an API URL like http://127.0.0.1:8470, not ${JSON.stringify(text)}`);
  }
  if (u.protocol !== 'http:') throw usage(`${what} must be an http:// URL, not ${JSON.stringify(text)}`);
  return text;
}

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

/** Default pause between two status fetches of --watch. */
export const WATCH_INTERVAL_MS = 1000;
/** One frame of the spinner of a long verb with no progress to count (mirror verify) on a terminal. */
export const SPINNER_FRAME_MS = 250;
/** Requests `sanbox up` makes to set up a lab's mirrors and groups (each may wait on the array). */
export const LAB_SETUP_REQUEST_TIMEOUT_MS = 15_000;

export interface WatchFlags {
  watch?: boolean;
  count?: string;
  interval?: string;
  json?: boolean;
}

/**
 * A status verb: fetch and print once, or with --watch every --interval seconds until Ctrl-C,
 * --count rounds, or a closed pipe (`| head`). While watching, a failed fetch is printed, not
 * fatal. JSON: `once` is printed alone; while watching, one `line` per round with the time.
 */
export async function watchStatus<T>(
  f: WatchFlags,
  fetch: () => Promise<T>,
  out: { json: (v: T) => { once: unknown; line: Record<string, unknown> }; text: (v: T) => Promise<string> | string },
): Promise<number> {
  let count = f.watch ? Infinity : 1;
  if (f.count !== undefined) {
    if (!/^\d+$/.test(f.count) || Number(f.count) < 1) throw usage(`--count must be a positive integer, not ${JSON.stringify(f.count)}`);
    if (!f.watch) throw usage('--count goes with --watch');
    count = Number(f.count);
  }
  let intervalMs = WATCH_INTERVAL_MS;
  if (f.interval !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(f.interval) || Number(f.interval) < 0.1) throw usage(`--interval must be seconds >= 0.1, not ${JSON.stringify(f.interval)}`);
    if (!f.watch) throw usage('--interval goes with --watch');
    intervalMs = Number(f.interval) * 1000;
  }
  let stop = false;
  const onInt = () => (stop = true);
  const onPipe = (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') stop = true;
  };
  if (f.watch) {
    process.once('SIGINT', onInt);
    process.stdout.on('error', onPipe);
  }
  try {
    for (let i = 0; i < count && !stop; i++) {
      if (i > 0) await sleep(intervalMs);
      if (stop) break;
      let v: T;
      try {
        v = await fetch();
      } catch (e) {
        if (!f.watch || i === 0) throw e;
        const msg = (e as Error).message;
        if (f.json) process.stdout.write(JSON.stringify({ time: new Date().toISOString(), error: { code: (e as CliError).code, message: msg } }) + '\n');
        else process.stdout.write(`${new Date().toISOString()}  ${msg}\n`);
        continue;
      }
      if (f.json) {
        const doc = out.json(v);
        if (f.watch) process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...doc.line }) + '\n');
        else printJson(doc.once);
        continue;
      }
      const text = await out.text(v);
      if (f.watch && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
      process.stdout.write((f.watch ? `${new Date().toISOString()}\n` : '') + text + '\n');
    }
  } finally {
    process.off('SIGINT', onInt);
    process.stdout.off('error', onPipe);
  }
  return EXIT.OK;
}

/** An integer option in [min, max] (its text as given), or `fallback` when absent; a usage error otherwise. */
export function intArg(text: string | undefined, what: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (text === undefined) return fallback;
  const t = text.trim();
  if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t)) || Number(t) < min || Number(t) > max) {
    throw usage(`${what} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, not ${JSON.stringify(text)}`);
  }
  return Number(t);
}
