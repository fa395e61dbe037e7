/**
 * Arguments of `sanbox group ...`: modes, counts, sizes, durations, near-synchronous bounds and
 * throttle files. Each is checked before anything is sent: a bad one is a usage error (exit 2).
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { formatSize, isPlainName, parseSize } from '../array/index.js';
import type { GroupNearSyncRequest, GroupSettableRequest } from '../control/index.js';
import { parseThrottles, type GroupMode } from '../replication/group/index.js';
import { CliError, EXIT, usage } from './common.js';
import { parseDuration } from './lab.js';

const MODES: readonly GroupMode[] = ['asynchronous', 'near-synchronous', 'synchronous'];

export function modeArg(text: string, what = 'MODE'): GroupMode {
  if (!MODES.includes(text as GroupMode)) throw usage(`${what} must be asynchronous, near-synchronous or synchronous, not ${JSON.stringify(text)}`);
  return text as GroupMode;
}

/** `--freeze armed|off`: the armed freeze of a synchronous group (docs/group.md#freeze). */
export function freezeArg(text: string, what = '--freeze'): 'armed' | 'off' {
  if (text !== 'armed' && text !== 'off') throw usage(`${what} must be armed or off, not ${JSON.stringify(text)}`);
  return text;
}

export function countArg(text: string, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const t = text.trim();
  if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t)) || Number(t) < min || Number(t) > max) {
    throw usage(`${what} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, not ${JSON.stringify(text)}`);
  }
  return Number(t);
}

export function sizeArg(text: string, what: string, min = 0, multipleOf = 1): number {
  const n = parseSize(text);
  if (n === undefined || n < min || n % multipleOf !== 0) {
    throw usage(`${what} must be a size like 64M${min > 0 ? ` of at least ${formatSize(min)}` : ''}${multipleOf > 1 ? ` (a multiple of ${multipleOf} bytes)` : ''}, not ${JSON.stringify(text)}`);
  }
  return n;
}

export function durationArg(text: string, what: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms < 100) throw usage(`${what} must be a duration of at least 100ms like 10s, 500ms or 1m (a bare number is seconds), not ${JSON.stringify(text)}`);
  return ms;
}

export function onOff(text: string, what: string): boolean {
  const t = text.toLowerCase();
  if (['on', 'true', 'yes', '1'].includes(t)) return true;
  if (['off', 'false', 'no', '0'].includes(t)) return false;
  throw usage(`${what} must be on or off, not ${JSON.stringify(text)}`);
}

export function arrayNameArg(text: string, what: string): string {
  if (!isPlainName(text)) throw usage(`${what} must be an array name, not ${JSON.stringify(text)}`);
  return text;
}

/** Near-synchronous bounds from --max-entries / --max-bytes / --low-entries / --low-bytes (undefined: none given). */
export interface BoundFlags {
  maxEntries?: string;
  maxBytes?: string;
  lowEntries?: string;
  lowBytes?: string;
}

export function boundsArg(f: BoundFlags): GroupNearSyncRequest | undefined {
  const n: { maxEntries?: number; maxBytes?: number; lowEntries?: number; lowBytes?: number } = {};
  if (f.maxEntries !== undefined) n.maxEntries = countArg(f.maxEntries, '--max-entries');
  if (f.maxBytes !== undefined) n.maxBytes = sizeArg(f.maxBytes, '--max-bytes');
  if (f.lowEntries !== undefined) n.lowEntries = countArg(f.lowEntries, '--low-entries');
  if (f.lowBytes !== undefined) n.lowBytes = sizeArg(f.lowBytes, '--low-bytes');
  if (!Object.keys(n).length) return undefined;
  if (n.maxEntries !== undefined && n.lowEntries !== undefined && n.maxEntries > 0 && n.lowEntries >= n.maxEntries) throw usage(`--low-entries (${n.lowEntries}) must be below --max-entries (${n.maxEntries})`);
  if (n.maxBytes !== undefined && n.lowBytes !== undefined && n.maxBytes > 0 && n.lowBytes >= n.maxBytes) throw usage(`--low-bytes (${formatSize(n.lowBytes)}) must be below --max-bytes (${formatSize(n.maxBytes)})`);
  if (n.maxEntries === 0 && n.maxBytes === 0) throw usage('--max-entries 0 and --max-bytes 0 leave near-synchronous without a bound');
  // A new bound without its low mark: half of it (not the old low mark, which may be above it).
  if (n.maxEntries !== undefined && n.lowEntries === undefined) n.lowEntries = Math.floor(n.maxEntries / 2);
  if (n.maxBytes !== undefined && n.lowBytes === undefined) n.lowBytes = Math.floor(n.maxBytes / 2);
  return n;
}

/** A throttle file: a YAML (or JSON) list of throttles, or a mapping with `throttles:`. */
export function readThrottleFile(path: string): GroupSettableRequest['throttles'] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw usage(`cannot read throttle file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) throw usage(`throttle file ${path}: YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  let value = doc.toJS() as unknown;
  let where = path;
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => k !== 'throttles');
    if (extra.length || !('throttles' in o)) throw usage(`throttle file ${path} must be a list of throttles, or a mapping with only "throttles:" (found ${Object.keys(o).join(', ') || 'nothing'})`);
    value = o.throttles ?? [];
    where = `${path}: throttles`;
  } else if (value === null || value === undefined) value = [];
  const r = parseThrottles(value, where);
  if (r.problems.length) throw new CliError(EXIT.USAGE, 'usage', `invalid throttles:\n  - ${r.problems.join('\n  - ')}`);
  return r.throttles;
}
