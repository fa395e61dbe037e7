/**
 * Request validation: the fields of a JSON body and of a query string. A bad field is a 400
 * `invalid-argument` and nothing is called. Two styles: `checkBody` with field kinds (LUNs, SPs,
 * faults) and `checkFields` with checkers (mirrors, groups).
 */
import { parseSize } from '../../array/index.js';
import { ApiError } from './http.js';

export type FieldKind = 'string' | 'string?' | 'size' | 'number' | 'number?' | 'boolean?';

/**
 * The one unknown-field check of every route family (checkBody, checkFields, the disk-fault
 * route): a 400 naming every own key of `obj` that `allowed` does not list. The names are looked
 * up in a Set, never with `in` or through the object: JSON.parse makes `"__proto__"` an own key
 * like any other, and `constructor`, `toString`, `hasOwnProperty`... are found on any object's
 * prototype, so each is unknown exactly like `bogus`.
 */
export function rejectUnknownFields(obj: object, allowed: Iterable<string>, where = 'request body'): void {
  const names = new Set(allowed);
  const unknown = Object.keys(obj).filter((k) => !names.has(k));
  if (!unknown.length) return;
  const expected = names.size ? `expected ${[...names].join(', ')}` : 'expected none (send {} or no body)';
  throw invalid(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}${where === 'request body' ? '' : ` in ${where}`}; ${expected}`);
}

/** Checks a JSON object's fields: unknown keys, missing keys and wrong types are 400s. */
export function checkBody(body: unknown, fields: Record<string, FieldKind>): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError(400, 'invalid-argument', 'request body must be a JSON object');
  }
  const obj = body as Record<string, unknown>;
  rejectUnknownFields(obj, Object.keys(fields));
  const out: Record<string, unknown> = {};
  for (const [k, kind] of Object.entries(fields)) {
    const v = Object.hasOwn(obj, k) ? obj[k] : undefined;
    if (v === undefined) {
      if (kind.endsWith('?')) continue;
      throw new ApiError(400, 'invalid-argument', `missing field ${k}`);
    }
    if (kind === 'string' || kind === 'string?') {
      if (typeof v !== 'string') throw new ApiError(400, 'invalid-argument', `${k} must be a string`);
      out[k] = v;
    } else if (kind === 'boolean?') {
      if (typeof v !== 'boolean') throw new ApiError(400, 'invalid-argument', `${k} must be true or false`);
      out[k] = v;
    } else if (kind === 'size') {
      const n = typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined;
      if (n === undefined) {
        throw new ApiError(400, 'invalid-argument', `${k} must be a byte count or a size like "256M" or "1G", not ${JSON.stringify(v)}`);
      }
      out[k] = n;
    } else {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new ApiError(400, 'invalid-argument', `${k} must be an integer`);
      out[k] = v;
    }
  }
  return out;
}

/** A field validator: returns the value to pass on, or throws a 400. */
export type Check = (v: unknown, key: string) => unknown;

export const invalid = (message: string) => new ApiError(400, 'invalid-argument', message);

const MIN_REGION = 4096;
const MAX_REGION = 64 * 1024 * 1024;

/** Parses a rate in bytes per second: a positive integer, or a size string with an optional `/s`. */
function rateValue(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const n = parseSize(v.replace(/(B)?\/s$/i, ''));
  return n !== undefined && n > 0 ? n : undefined;
}

export const C = {
  string: ((v, k) => {
    if (typeof v !== 'string' || v === '' || v.length > 256) throw invalid(`${k} must be a non-empty string`);
    return v;
  }) as Check,
  lunRef: ((v, k) => {
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
    if (typeof v === 'string' && v !== '' && v.length <= 64) return v;
    throw invalid(`${k} must be a LUN id (integer >= 0) or a LUN name`);
  }) as Check,
  boolean: ((v, k) => {
    if (typeof v !== 'boolean') throw invalid(`${k} must be true or false`);
    return v;
  }) as Check,
  oneOf:
    (...values: string[]): Check =>
    (v, k) => {
      if (typeof v !== 'string' || !values.includes(v)) throw invalid(`${k} must be one of ${values.join(', ')}, not ${JSON.stringify(v)}`);
      return v;
    },
  /** -1 (disabled) or a count. */
  limit: ((v, k) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < -1) throw invalid(`${k} must be an integer >= -1 (-1: no limit), not ${JSON.stringify(v)}`);
    return v;
  }) as Check,
  size: ((v, k) => {
    const n = typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined;
    if (n === undefined) throw invalid(`${k} must be a byte count or a size like "64K", not ${JSON.stringify(v)}`);
    return n;
  }) as Check,
  regionSize: ((v, k) => {
    const n = typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined;
    if (n === undefined || n < MIN_REGION || n > MAX_REGION || (n & (n - 1)) !== 0) {
      throw invalid(`${k} must be a power of two from 4K to 64M (e.g. "64K" or 65536), not ${JSON.stringify(v)}`);
    }
    return n;
  }) as Check,
  rate: ((v, k) => {
    const n = rateValue(v);
    if (n === undefined) throw invalid(`${k} must be a positive rate in bytes per second (e.g. 67108864 or "64M"), not ${JSON.stringify(v)}`);
    return n;
  }) as Check,
  /** A rate, or null: use the mirror's. */
  rateOrNull: ((v, k) => (v === null ? null : C.rate(v, k))) as Check,
};

/**
 * Validates a JSON object against `fields` (names ending in `?` are optional): unknown keys,
 * missing keys and bad values are 400 invalid-argument, and nothing is called.
 */
export function checkFields(body: unknown, fields: Record<string, Check>, where = 'request body'): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid(`${where} must be a JSON object`);
  const obj = body as Record<string, unknown>;
  const spec = new Map(Object.entries(fields).map(([k, c]) => [k.replace(/\?$/, ''), { check: c, optional: k.endsWith('?') }]));
  rejectUnknownFields(obj, spec.keys(), where);
  const out: Record<string, unknown> = {};
  for (const [k, { check, optional }] of spec) {
    const v = Object.hasOwn(obj, k) ? obj[k] : undefined;
    if (v === undefined) {
      if (optional) continue;
      throw invalid(`missing field ${k} in ${where}`);
    }
    out[k] = check(v, where === 'request body' ? k : `${where}.${k}`);
  }
  return out;
}

export const optional = (fields: Record<string, Check>): Record<string, Check> => Object.fromEntries(Object.entries(fields).map(([k, c]) => [`${k}?`, c]));

/** Only the named query parameters; anything else is a 400. */
export function checkQuery(url: URL, allowed: string[]): void {
  for (const k of url.searchParams.keys()) {
    if (!allowed.includes(k)) throw invalid(`unknown query parameter ${k}${allowed.length ? `; expected ${allowed.join(', ')}` : ''}`);
  }
}

export const count =
  (min: number, max = Number.MAX_SAFE_INTEGER): Check =>
  (v, k) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw invalid(`${k} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, not ${JSON.stringify(v)}`);
    }
    return v;
  };

export const sizeAtLeast =
  (min: number, multipleOf = 1): Check =>
  (v, k) => {
    const n = typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined;
    if (n === undefined || n < min || n % multipleOf !== 0) {
      throw invalid(`${k} must be a byte count or a size like "64M"${min > 0 ? ` of at least ${min} bytes` : ''}${multipleOf > 1 ? ` (a multiple of ${multipleOf})` : ''}, not ${JSON.stringify(v)}`);
    }
    return n;
  };
