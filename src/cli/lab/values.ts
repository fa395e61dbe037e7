/** Scalar values of a lab file: rates, durations, shared secrets, wildcard addresses. */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseSize } from '../../array/index.js';
import type { Obj } from './types.js';

export const isWildcard = (h: string) => h === '0.0.0.0' || h === '::';

/** Shortest shared secret accepted for a remote link. */
export const MIN_SECRET = 16;

/**
 * `secret:` (the string itself) or `secretFile:` (a file holding it, relative to the lab file;
 * surrounding whitespace is dropped) of a link or of an array on another host.
 */
export function parseSecret(o: Obj, at: string, file: string, problems: string[]): string | undefined {
  if (o.secret !== undefined && o.secretFile !== undefined) {
    problems.push(`${at}: give secret or secretFile, not both`);
    return undefined;
  }
  let secret: string;
  if (o.secret !== undefined) {
    if (typeof o.secret !== 'string') {
      problems.push(`${at}.secret must be a string (quote it if it looks like a number)`);
      return undefined;
    }
    secret = o.secret;
  } else if (o.secretFile !== undefined) {
    if (typeof o.secretFile !== 'string' || o.secretFile === '') {
      problems.push(`${at}.secretFile must be a path`);
      return undefined;
    }
    const path = resolve(dirname(file), o.secretFile);
    try {
      secret = readFileSync(path, 'utf8').trim();
    } catch (e) {
      problems.push(`${at}.secretFile: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return undefined;
    }
  } else return undefined;
  if (secret.length < MIN_SECRET) {
    problems.push(`${at}.${o.secret !== undefined ? 'secret' : 'secretFile'}: the shared secret must have at least ${MIN_SECRET} characters (has ${secret.length})`);
    return undefined;
  }
  return secret;
}

/** Parses a bandwidth: bytes per second (`100M`, `1.5G`, `1048576`, with an optional `/s`), 0/off/unlimited: no cap. */
export function parseRate(v: unknown): number | undefined {
  if (v === 0 || v === 'off' || v === 'unlimited' || v === '0') return 0;
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const n = parseSize(v.replace(/(B)?\/s$/i, ''));
  return n !== undefined && n > 0 ? n : undefined;
}

/**
 * A duration in milliseconds: `10s`, `500ms`, `2m`, `1h`, `1.5s`; a bare number is seconds.
 * Undefined when it is not one.
 */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.round(v * 1000) : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$/i.exec(v);
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 }[(m[2] ?? 's').toLowerCase() as 'ms'];
  const ms = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(ms) ? ms : undefined;
}
