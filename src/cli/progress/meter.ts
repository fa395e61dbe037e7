/**
 * The progress of one long verb on stderr. On a terminal one line redrawn in place (at most
 * every REDRAW_MS, and every TICK_MS without news so that the rate and the time move), ending
 * with the final line and a newline; elsewhere (a pipe, a log file, CI) plain sentences: one at
 * the start, at most one every PLAIN_EVERY_MS, one when the note says something new, and the
 * final one. `off` (--quiet, or --json) writes nothing.
 */
import { BYTES, DEFAULT_COLUMNS, assertState, plainLine, ttyLine, type ProgressOutcome, type ProgressState, type ProgressUnit } from './format.js';
import { RATE_WINDOW_MS, RateWindow } from './rate.js';

export type ProgressMode = 'tty' | 'plain' | 'off';

/** Where the lines go: stderr, or a stand-in in tests. */
export interface ProgressOut {
  write(text: string): unknown;
  /** the terminal's width (tty mode) */
  columns?: number;
}

/** A terminal line is redrawn at most this often (the eye sees no more; a slow link pays less). */
export const REDRAW_MS = 100;
/** ...and at least this often while nothing is reported, so the rate decays and the clock moves. */
export const TICK_MS = 1000;
/** A log gets a progress line at most this often (the start, a new note and the end aside). */
export const PLAIN_EVERY_MS = 5000;

export interface MeterOptions {
  label: string;
  unit?: ProgressUnit;
  total?: number;
  mode: ProgressMode;
  out: ProgressOut;
  /** the clock, in ms (tests move it by hand) */
  now?: () => number;
  windowMs?: number;
  redrawMs?: number;
  plainEveryMs?: number;
  /** 0: no redraw without an update (tests) */
  tickMs?: number;
}

/** A note's kind: a number that moves in it is no news; a reason that comes or goes is. */
const noteKind = (note: string | undefined) => (note ?? '').replace(/\d+(\.\d+)?/g, '#');

export class ProgressMeter {
  readonly mode: ProgressMode;
  private readonly label: string;
  private readonly unit: ProgressUnit;
  private readonly out: ProgressOut;
  private readonly now: () => number;
  private readonly window: RateWindow;
  private readonly redrawMs: number;
  private readonly plainEveryMs: number;
  private readonly startedMs: number;
  private done = 0;
  private firstDone: number | undefined;
  private total: number | undefined;
  private note: string | undefined;
  /** when the last line was written; undefined: none yet */
  private lastWriteMs: number | undefined;
  private lastNoteKind = '';
  /** the terminal line as drawn last (log() draws it again under the line it prints) */
  private drawn = '';
  private ended = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(o: MeterOptions) {
    this.mode = o.mode;
    this.label = o.label;
    this.unit = o.unit ?? BYTES;
    this.out = o.out;
    this.now = o.now ?? Date.now;
    this.window = new RateWindow(o.windowMs ?? RATE_WINDOW_MS);
    this.redrawMs = o.redrawMs ?? REDRAW_MS;
    this.plainEveryMs = o.plainEveryMs ?? PLAIN_EVERY_MS;
    this.startedMs = this.now();
    this.total = o.total;
    if (o.total !== undefined) assertState({ label: o.label, done: 0, total: o.total });
    const tickMs = o.tickMs ?? TICK_MS;
    if (this.mode === 'tty' && tickMs > 0) {
      this.timer = setInterval(() => this.lastWriteMs !== undefined && this.draw(), tickMs);
      this.timer.unref(); // a verb that forgets finish() must still be able to exit
    }
  }

  get finished(): boolean {
    return this.ended;
  }

  /**
   * A reading: `done` so far, and when they change the total and the note (null clears it).
   * Throws on numbers that break the rules (done < 0, done > total): a caller's bug.
   */
  update(done: number, change: { total?: number; note?: string | null } = {}): void {
    if (this.ended) return; // a poll that lands after the end: its numbers are stale, the final line stands
    const total = change.total ?? this.total;
    assertState({ label: this.label, done, total });
    this.done = done;
    this.total = total;
    if (change.note !== undefined) this.note = change.note ?? undefined;
    const t = this.now();
    this.firstDone ??= done;
    this.window.add(t, done);
    if (this.mode === 'tty') {
      if (this.lastWriteMs === undefined || t - this.lastWriteMs >= this.redrawMs) this.draw();
    } else if (this.mode === 'plain') {
      const news = noteKind(this.note) !== this.lastNoteKind;
      if (this.lastWriteMs === undefined || news || t - this.lastWriteMs >= this.plainEveryMs) this.writePlain();
    }
  }

  /** A line of its own (an event, a step), above the terminal's progress line. */
  log(text: string): void {
    if (this.mode === 'off') return;
    if (this.mode === 'plain' || this.ended) {
      this.out.write(`${text}\n`);
      return;
    }
    this.out.write(`\r\x1b[K${text}\n${this.drawn}`);
  }

  /**
   * The final line (with its newline), with `done` when given; the rate shown is the average
   * since the first reading. Nothing when there was no reading. Once only: later calls do nothing, so that a `finally` may call it
   * after the path that already did.
   */
  finish(outcome: ProgressOutcome = 'done', done?: number): void {
    if (this.ended) return;
    if (done !== undefined) {
      assertState({ label: this.label, done, total: this.total });
      this.done = done;
    }
    this.ended = true;
    if (this.timer) clearInterval(this.timer);
    // Over before the first reading (a quick rollback): there was nothing to show, and a final
    // line of zeroes would say something false.
    if (this.mode === 'off' || this.firstDone === undefined) return;
    const t = this.now();
    const elapsedMs = t - this.startedMs;
    const moved = this.done - (this.firstDone ?? 0);
    const s = this.state(elapsedMs, elapsedMs > 0 && moved >= 0 ? moved / (elapsedMs / 1000) : undefined);
    if (this.mode === 'tty') this.out.write(`\r\x1b[K${ttyLine(s, this.columns(), outcome)}\n`);
    else this.out.write(`${plainLine(s, outcome)}\n`);
  }

  private state(elapsedMs: number, rate: number | undefined): ProgressState {
    return { label: this.label, unit: this.unit, done: this.done, total: this.total, rate, elapsedMs, ...(this.note ? { note: this.note } : {}) };
  }

  private columns(): number {
    const c = this.out.columns;
    return c !== undefined && c > 0 ? c : DEFAULT_COLUMNS;
  }

  private draw(): void {
    const t = this.now();
    this.drawn = ttyLine(this.state(t - this.startedMs, this.window.rate(t)), this.columns());
    this.out.write(`\r\x1b[K${this.drawn}`);
    this.lastWriteMs = t;
  }

  private writePlain(): void {
    const t = this.now();
    this.out.write(`${plainLine(this.state(t - this.startedMs, this.window.rate(t)))}\n`);
    this.lastWriteMs = t;
    this.lastNoteKind = noteKind(this.note);
  }
}
