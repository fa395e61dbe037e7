/**
 * A LUN's disk fault as pure data, the one function that validates it (listing every problem),
 * and the pure decision "does this request fail, and how long does it wait first" — in the
 * spirit of nbdkit's error and delay filters.
 *
 * A request of one of the `errors` ops that overlaps `range` (a flush has no range: any range
 * matches it) fails with `errno` when its error draw is below `rate`. Every request of any of
 * the five ops that overlaps `range` waits `delay.ms` plus a drawn part of `delay.jitterMs`
 * first (a slow disk), whether it then fails or not. Block status and cache are never faulted.
 *
 * With `loseUnflushed` the LUN's disk behaves like one with a volatile write cache (the whole
 * LUN; ./volatile.ts): what is not FUA stays in memory until a flush, and a crash of the process
 * loses it. It may be the fault's only effect.
 */

/** The ops a disk fault can act on (NBD READ, WRITE, FLUSH, TRIM, WRITE_ZEROES). */
export const DISK_OPS = ['read', 'write', 'flush', 'trim', 'zero'] as const;
export type DiskOp = (typeof DISK_OPS)[number];

/** The errnos a faulted request fails with. */
export const DISK_ERRNOS = ['EIO', 'ENOSPC'] as const;
export type DiskErrno = (typeof DISK_ERRNOS)[number];

export interface DiskFaultSpec {
  /** Ops that fail (may be empty: a delay only). */
  errors: DiskOp[];
  /** Probability in [0, 1] that a matching request fails (1: every one). */
  rate: number;
  /** Byte range a request must overlap to be faulted; absent: the whole LUN. */
  range?: { offset: number; length: number };
  errno: DiskErrno;
  /** Wait before every matching request: `ms` plus a uniform draw in [0, jitterMs). */
  delay?: { ms: number; jitterMs: number };
  /** Seed of the generator of the error and jitter draws (restarted on every set). */
  seed: number;
  /** Writes, trims and write-zeroes without FUA are held in memory until a flush (lost at a crash). */
  loseUnflushed: boolean;
  /** Limit of what is held (bytes; default DEFAULT_MAX_UNFLUSHED): past it the oldest goes down. */
  maxUnflushed?: number;
}

/** Upper bound of a delay (ms, jitter included): a minute is already a dead disk. */
export const MAX_DELAY_MS = 60_000;

/** The default limit of what lose-unflushed holds: past it, the oldest content goes down. */
export const DEFAULT_MAX_UNFLUSHED = 64 * 1024 * 1024;

/** Bounds of `maxUnflushed`: at least a page, at most what an emulator process should hold per LUN. */
export const MAX_UNFLUSHED_RANGE = { min: 4096, max: 1024 * 1024 * 1024 } as const;

/** What one request gets: an errno to fail with (after the wait), and the wait in ms. */
export interface DiskFaultDecision {
  fail?: DiskErrno;
  delayMs: number;
}

/** The two uniform draws in [0, 1) one request consumes (always both, so the stream stays aligned). */
export interface DiskFaultDraw {
  error: number;
  jitter: number;
}

/** Whether a request of `op` at `offset`+`length` is in the fault's range. */
export function inRange(spec: Pick<DiskFaultSpec, 'range'>, op: DiskOp, offset: number, length: number): boolean {
  const r = spec.range;
  if (!r || op === 'flush') return true;
  return length > 0 && offset < r.offset + r.length && r.offset < offset + length;
}

/** The decision for one request: pure in (spec, op, offset, length, draw). */
export function decide(spec: DiskFaultSpec, op: DiskOp, offset: number, length: number, draw: DiskFaultDraw): DiskFaultDecision {
  if (!inRange(spec, op, offset, length)) return { delayMs: 0 };
  const delayMs = spec.delay ? spec.delay.ms + Math.floor(draw.jitter * spec.delay.jitterMs) : 0;
  const fail = spec.errors.includes(op) && draw.error < spec.rate ? spec.errno : undefined;
  return fail ? { fail, delayMs } : { delayMs };
}

/**
 * The fault as the API and the lab take it (JSON): every field optional but at least one of
 * `errors`, `delay` and `loseUnflushed`. Defaults: errors all five ops when neither a delay nor
 * loseUnflushed is given (none otherwise), rate 1, errno EIO, seed 1, loseUnflushed false.
 * Returns the spec, or every problem found (nothing half-applied).
 */
export interface DiskFaultInput {
  errors?: unknown;
  rate?: unknown;
  range?: unknown;
  errno?: unknown;
  delay?: unknown;
  seed?: unknown;
  loseUnflushed?: unknown;
  maxUnflushed?: unknown;
}

export const DISK_FAULT_FIELDS = ['errors', 'rate', 'range', 'errno', 'delay', 'seed', 'loseUnflushed', 'maxUnflushed'] as const;

/** `loseUnflushed` and `maxUnflushed` (a byte count, or a size like "8M"), each problem listed. */
function validateLose(o: Record<string, unknown>, problems: string[]): { loseUnflushed: boolean; maxUnflushed?: number } {
  let lose = false;
  if (o.loseUnflushed !== undefined) {
    if (typeof o.loseUnflushed !== 'boolean') problems.push(`loseUnflushed must be true or false, not ${JSON.stringify(o.loseUnflushed)}`);
    else lose = o.loseUnflushed;
  }
  if (o.maxUnflushed === undefined) return { loseUnflushed: lose };
  const n = typeof o.maxUnflushed === 'string' ? parseBytes(o.maxUnflushed) : o.maxUnflushed;
  const { min, max } = MAX_UNFLUSHED_RANGE;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
    problems.push(`maxUnflushed must be a byte count from ${min} (4K) to ${max} (1G), not ${JSON.stringify(o.maxUnflushed)}`);
  } else if (!lose) problems.push('maxUnflushed limits what lose-unflushed holds: give loseUnflushed too');
  else return { loseUnflushed: lose, maxUnflushed: n };
  return { loseUnflushed: lose };
}

export function validateDiskFault(input: unknown, lunSize?: number): { spec: DiskFaultSpec; problems: [] } | { spec?: undefined; problems: string[] } {
  const problems: string[] = [];
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return { problems: ['a disk fault must be an object'] };
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(DISK_FAULT_FIELDS as readonly string[]).includes(k)) problems.push(`unknown field ${k} (fields: ${DISK_FAULT_FIELDS.join(', ')})`);
  }
  const lose = validateLose(o, problems);

  let delay: DiskFaultSpec['delay'];
  if (o.delay !== undefined) {
    const d = typeof o.delay === 'string' ? parseDelay(o.delay) : o.delay;
    if (typeof d === 'string') problems.push(d);
    else if (d === null || typeof d !== 'object' || Array.isArray(d)) problems.push('delay must be {ms, jitterMs} or "MS[:JITTER]"');
    else {
      const { ms, jitterMs = 0 } = d as { ms?: unknown; jitterMs?: unknown };
      const bad = (v: unknown) => typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0;
      if (bad(ms)) problems.push(`delay.ms must be a whole number of milliseconds >= 0, not ${JSON.stringify(ms)}`);
      if (bad(jitterMs)) problems.push(`delay.jitterMs must be a whole number of milliseconds >= 0, not ${JSON.stringify(jitterMs)}`);
      if (!bad(ms) && !bad(jitterMs)) {
        if ((ms as number) + (jitterMs as number) > MAX_DELAY_MS) problems.push(`delay ${String(ms)} ms + jitter ${String(jitterMs)} ms is over ${MAX_DELAY_MS} ms`);
        else if (ms === 0 && jitterMs === 0) problems.push('delay 0:0 waits nothing: give a delay above 0 ms, or leave it out');
        else delay = { ms: ms as number, jitterMs: jitterMs as number };
      }
    }
  }

  let errors: DiskOp[] = delay || lose.loseUnflushed ? [] : [...DISK_OPS];
  if (o.errors !== undefined) {
    const list = typeof o.errors === 'string' ? (o.errors === '' ? [] : o.errors.split(',').map((s) => s.trim())) : o.errors;
    if (!Array.isArray(list)) problems.push('errors must be a list of ops (read, write, flush, trim, zero)');
    else {
      const bad = list.filter((x) => typeof x !== 'string' || !(DISK_OPS as readonly string[]).includes(x));
      if (bad.length) problems.push(`errors: unknown op(s) ${bad.map((b) => JSON.stringify(b)).join(', ')} (ops: ${DISK_OPS.join(', ')})`);
      else errors = DISK_OPS.filter((op) => list.includes(op));
    }
  }
  if (o.errors !== undefined && errors.length === 0 && !delay && o.delay === undefined && !lose.loseUnflushed) {
    problems.push('a disk fault with no errors, no delay and no loseUnflushed does nothing: give errors, a delay or loseUnflushed');
  }

  let rate = 1;
  if (o.rate !== undefined) {
    const r = typeof o.rate === 'string' && o.rate.trim() !== '' ? Number(o.rate) : o.rate;
    if (typeof r !== 'number' || !Number.isFinite(r) || r < 0 || r > 1) problems.push(`rate must be a probability from 0 to 1, not ${JSON.stringify(o.rate)}`);
    else rate = r;
  }

  let errno: DiskErrno = 'EIO';
  if (o.errno !== undefined) {
    const e = typeof o.errno === 'string' ? o.errno.toUpperCase() : o.errno;
    if (typeof e !== 'string' || !(DISK_ERRNOS as readonly string[]).includes(e)) problems.push(`errno must be ${DISK_ERRNOS.join(' or ')}, not ${JSON.stringify(o.errno)}`);
    else errno = e as DiskErrno;
  }

  let range: DiskFaultSpec['range'];
  if (o.range !== undefined) {
    const r = typeof o.range === 'string' ? parseRange(o.range) : o.range;
    if (typeof r === 'string') problems.push(r);
    else if (r === null || typeof r !== 'object' || Array.isArray(r)) problems.push('range must be {offset, length} or "OFFSET:LENGTH"');
    else {
      const { offset, length } = r as { offset?: unknown; length?: unknown };
      const okOffset = typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0;
      const okLength = typeof length === 'number' && Number.isSafeInteger(length) && length > 0;
      if (!okOffset) problems.push(`range offset must be a byte offset >= 0, not ${JSON.stringify(offset)}`);
      if (!okLength) problems.push(`range length must be a byte count above 0, not ${JSON.stringify(length)}`);
      if (okOffset && okLength) {
        if (lunSize !== undefined && offset >= lunSize) problems.push(`range offset ${offset} is beyond the end of the LUN (${lunSize} bytes)`);
        else range = { offset, length };
      }
    }
  }

  let seed = 1;
  if (o.seed !== undefined) {
    const s = typeof o.seed === 'string' && /^\d+$/.test(o.seed) ? Number(o.seed) : o.seed;
    if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0 || s > 0xffffffff) problems.push(`seed must be a whole number from 0 to ${0xffffffff}, not ${JSON.stringify(o.seed)}`);
    else seed = s;
  }

  if (range && errors.length === 0 && !delay && o.delay === undefined && lose.loseUnflushed) {
    problems.push('range limits errors and delays only (lose-unflushed holds writes of the whole LUN): give errors or a delay with it, or leave it out');
  }

  if (problems.length) return { problems };
  return { spec: { errors, rate, ...(range ? { range } : {}), errno, ...(delay ? { delay } : {}), seed, ...lose }, problems: [] };
}

/** A byte count: digits with an optional K, M, G or T suffix (powers of 1024). */
function parseBytes(s: string): number | undefined {
  const m = /^(\d+)([KMGT]?)$/i.exec(s.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  return Number.isSafeInteger(n) ? n : undefined;
}

/** "OFFSET:LENGTH" (sizes like 1M allowed) -> {offset, length}, or a problem. */
export function parseRange(s: string): { offset: number; length: number } | string {
  const parts = s.split(':');
  const offset = parts.length === 2 ? parseBytes(parts[0]!) : undefined;
  const length = parts.length === 2 ? parseBytes(parts[1]!) : undefined;
  if (offset === undefined || length === undefined) return `range must be OFFSET:LENGTH in bytes (e.g. 0:1M), not ${JSON.stringify(s)}`;
  return { offset, length };
}

/** "MS[:JITTER]" -> {ms, jitterMs}, or a problem. */
export function parseDelay(s: string): { ms: number; jitterMs: number } | string {
  const m = /^(\d+)(?::(\d+))?$/.exec(s.trim());
  if (!m) return `delay must be MS[:JITTER] in milliseconds (e.g. 50 or 50:20), not ${JSON.stringify(s)}`;
  return { ms: Number(m[1]), jitterMs: Number(m[2] ?? 0) };
}

/**
 * One line for humans, e.g. "EIO on read,write at rate 0.5, delay 10 ms, range 0:4096, seed 1,
 * loses unflushed writes at a crash (holds up to 64 MiB)". Range and seed only matter to errors
 * and delays, so a lose-unflushed fault alone says nothing of them.
 */
export function describeDiskFault(spec: DiskFaultSpec): string {
  const parts: string[] = [];
  if (spec.errors.length) parts.push(`${spec.errno} on ${spec.errors.join(',')}${spec.rate < 1 ? ` at rate ${spec.rate}` : ''}`);
  if (spec.delay) parts.push(`delay ${spec.delay.ms} ms${spec.delay.jitterMs ? ` + up to ${spec.delay.jitterMs} ms` : ''}`);
  if (parts.length) parts.push(spec.range ? `range ${spec.range.offset}:${spec.range.length}` : 'whole LUN', `seed ${spec.seed}`);
  if (spec.loseUnflushed) parts.push(`loses unflushed writes at a crash (holds up to ${mib(spec.maxUnflushed ?? DEFAULT_MAX_UNFLUSHED)})`);
  return parts.join(', ');
}

const mib = (bytes: number): string => (bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`);
