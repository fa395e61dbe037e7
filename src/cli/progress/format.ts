/**
 * How a long verb's progress reads: pure functions of one state (done, total, rate, elapsed),
 * so that tests drive them directly. Two forms: the line a terminal redraws in place
 * (`label [#####.....] 45% 12.5 MiB/64 MiB 30.1 MiB/s ETA 2s`, fitted to its width) and the
 * sentence a log gets (`label: 12.5 MiB of 64 MiB (19%) after 3s, 30.1 MiB/s, ETA 2s`).
 */
import { ibytes } from '../mirror-render.js';

/** What is counted: bytes (binary units) or items with their plural noun (`actions`). */
export type ProgressUnit = { kind: 'bytes' } | { kind: 'items'; noun: string };
export const BYTES: ProgressUnit = { kind: 'bytes' };

/** How a progress ended: `done` (all of it), `stopped` (the person stopped waiting, or it paused), `failed`. */
export type ProgressOutcome = 'done' | 'stopped' | 'failed';

export interface ProgressState {
  label: string;
  unit: ProgressUnit;
  done: number;
  /** undefined while unknown (a copy that has not said its size yet) */
  total: number | undefined;
  /** units per second; undefined while unknown (too few samples) */
  rate: number | undefined;
  elapsedMs: number;
  /** what the work waits for, or any short remark; shown after the numbers */
  note?: string;
}

/** Cells of the bar between its brackets, at most and at least (below that: no bar). */
const BAR_MAX_CELLS = 30;
const BAR_MIN_CELLS = 8;
/** A label is cut to no fewer characters than this before the numbers are. */
const LABEL_MIN_CHARS = 12;
/** A note gets at least this much room, or none (a note cut to a few letters says nothing). */
const NOTE_MIN_CHARS = 10;
/** Width when the stream does not say (not a terminal, or a terminal of unknown size). */
export const DEFAULT_COLUMNS = 80;

/** Throws when the state breaks the rules every caller must keep: the numbers are what was read. */
export function assertState(s: Pick<ProgressState, 'label' | 'done' | 'total'>): void {
  if (!Number.isFinite(s.done) || s.done < 0) throw new RangeError(`progress of ${s.label}: done must be a finite number >= 0, not ${s.done}`);
  if (s.total === undefined) return;
  if (!Number.isFinite(s.total) || s.total < 0) throw new RangeError(`progress of ${s.label}: total must be a finite number >= 0, not ${s.total}`);
  if (s.done > s.total) throw new RangeError(`progress of ${s.label}: done ${s.done} exceeds total ${s.total}`);
}

/** Whole percent done, rounded down (100 only when all is done); an empty total is done. */
export function percent(done: number, total: number): number {
  if (total === 0) return 100;
  return Math.min(100, Math.floor((100 * done) / total));
}

/** `[######........]`: `cells` cells between the brackets, filled in proportion, rounded down. */
export function barText(fraction: number, cells: number): string {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`bar fraction must be in [0, 1], not ${fraction}`);
  if (!Number.isInteger(cells) || cells < 1) throw new RangeError(`bar cells must be a positive integer, not ${cells}`);
  const filled = Math.floor(fraction * cells);
  return `[${'#'.repeat(filled)}${'.'.repeat(cells - filled)}]`;
}

/** Seconds left at `rate`: undefined when the total or the rate is unknown, or the rate is 0. */
export function etaSeconds(done: number, total: number | undefined, rate: number | undefined): number | undefined {
  if (total === undefined) return undefined;
  if (done >= total) return 0;
  if (rate === undefined || !(rate > 0)) return undefined;
  return (total - done) / rate;
}

/**
 * `7s`, `1m05s`, `2h03m`; `?` when unknown. `precise`: tenths below a minute (`4.1s`), for
 * the time a finished job took.
 */
export function durationText(seconds: number | undefined, precise = false): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '?';
  const s = Math.max(0, seconds);
  if (s < 60) return precise ? `${s.toFixed(1)}s` : `${Math.ceil(s - 1e-9)}s`;
  const whole = Math.round(s);
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')}m`;
}

/** `12.5 MiB`, or `12` for items (the noun goes after the total). */
export function amountText(n: number, unit: ProgressUnit): string {
  return unit.kind === 'bytes' ? ibytes(Math.round(n)) : String(Math.round(n));
}

/** `30.1 MiB/s`, `0.5 actions/s`, `?/s` while unknown. */
export function rateText(rate: number | undefined, unit: ProgressUnit): string {
  if (rate === undefined) return '?/s';
  if (unit.kind === 'bytes') return `${ibytes(Math.round(rate))}/s`;
  return `${rate < 10 ? rate.toFixed(1) : Math.round(rate)} ${unit.noun}/s`;
}

/** `12.5 MiB/64 MiB`, `4/10 actions`. */
function amountsCompact(s: ProgressState, total: number): string {
  return s.unit.kind === 'bytes' ? `${amountText(s.done, s.unit)}/${amountText(total, s.unit)}` : `${s.done}/${total} ${s.unit.noun}`;
}

/** `12.5 MiB of 64 MiB`, `4 of 10 actions`. */
function amountsSentence(s: ProgressState, total: number): string {
  return s.unit.kind === 'bytes' ? `${amountText(s.done, s.unit)} of ${amountText(total, s.unit)}` : `${s.done} of ${total} ${s.unit.noun}`;
}

/** `12.5 MiB`, `4 actions`. */
function amountAlone(s: ProgressState): string {
  return s.unit.kind === 'bytes' ? amountText(s.done, s.unit) : `${s.done} ${s.unit.noun}`;
}

/** Cuts `text` to `max` characters, the last one an ellipsis when something was cut. */
export function fitText(text: string, max: number): string {
  if (text.length <= max) return text;
  return max <= 1 ? text.slice(0, max) : `${text.slice(0, max - 1)}…`;
}

/**
 * The terminal's line: `label [bar] pct amounts rate ETA eta; note` while running, and with
 * `outcome` the final one (`... 15.9 MiB/s done in 4.1s`, the rate then the average, no note). Never
 * wider than `columns - 1` (a write into the last column wraps on some terminals): the bar
 * shrinks first, then the label, then the note, then the whole line is cut.
 */
export function ttyLine(s: ProgressState, columns: number, outcome?: ProgressOutcome): string {
  assertState(s);
  const max = Math.max(20, columns - 1);
  const when = outcome ? `${outcome} in ${durationText(s.elapsedMs / 1000, true)}` : undefined;
  let tail: string;
  let fraction: number | undefined;
  if (s.total === undefined) {
    tail = [amountAlone(s), rateText(s.rate, s.unit), when ?? durationText(Math.floor(s.elapsedMs / 1000))].join(' ');
  } else {
    fraction = s.total === 0 ? 1 : s.done / s.total;
    tail = [`${percent(s.done, s.total)}%`, amountsCompact(s, s.total), rateText(s.rate, s.unit), when ?? `ETA ${durationText(etaSeconds(s.done, s.total, s.rate))}`].join(' ');
  }
  const label = fitText(s.label, Math.max(LABEL_MIN_CHARS, max - tail.length - 1));
  const cells = Math.min(BAR_MAX_CELLS, max - label.length - tail.length - 4);
  const head = fraction !== undefined && cells >= BAR_MIN_CELLS ? `${label} ${barText(fraction, cells)}` : label;
  const line = `${head} ${tail}`;
  const room = max - line.length - 2;
  // The note says what the work waits for: at the end it is over.
  const note = s.note && !outcome && room >= NOTE_MIN_CHARS ? `; ${fitText(s.note, room)}` : '';
  return fitText(line + note, max);
}

/**
 * The log's line, a sentence: `label: 4 MiB of 8 MiB (50%) after 3s, 1.3 MiB/s, ETA 3s; note`
 * while running (`label: 64 MiB so far after 3s, 21 MiB/s` while the total is unknown), and with
 * `outcome`: `label: done, 8 MiB of 8 MiB (100%) in 4.1s, 2 MiB/s on average` (no note).
 */
export function plainLine(s: ProgressState, outcome?: ProgressOutcome): string {
  assertState(s);
  const amounts = s.total === undefined ? amountAlone(s) : `${amountsSentence(s, s.total)} (${percent(s.done, s.total)}%)`;
  if (outcome) {
    // no note: what the work waited for is over
    const avg = s.rate === undefined ? '' : `, ${rateText(s.rate, s.unit)} on average`;
    return `${s.label}: ${outcome}, ${amounts} in ${durationText(s.elapsedMs / 1000, true)}${avg}`;
  }
  const note = s.note ? `; ${s.note}` : '';
  const after = `after ${durationText(Math.floor(s.elapsedMs / 1000))}`;
  if (s.total === undefined) return `${s.label}: ${amounts} so far ${after}, ${rateText(s.rate, s.unit)}${note}`;
  return `${s.label}: ${amounts} ${after}, ${rateText(s.rate, s.unit)}, ETA ${durationText(etaSeconds(s.done, s.total, s.rate))}${note}`;
}
