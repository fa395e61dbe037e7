/**
 * Progress of a run on stderr: a plain line for every step, fault and workload change, and the
 * run's actions (steps, fault injects and undos, checks) done of those planned through the CLI's
 * progress meter (src/cli/progress): on a terminal a bar redrawn in place under those lines,
 * with the live status (each workload's acknowledged writes, the fault in force) after it; in a
 * log a progress sentence at most every few seconds as actions finish.
 */
import { ProgressMeter, type ProgressMode, type ProgressOutcome } from '../../cli/progress/index.js';

/** How often the terminal's live status is rendered again. */
const LIVE_EVERY_MS = 1000;

export class Progress {
  private readonly mode: ProgressMode;
  private meter: ProgressMeter | undefined;
  private planned = 0;
  private done = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly startedAtMs: () => number,
    private readonly out: NodeJS.WriteStream | null = process.stderr,
  ) {
    this.mode = out === null ? 'off' : out.isTTY === true ? 'tty' : 'plain';
  }

  line(text: string): void {
    if (!this.out) return;
    // A start read after now (the same instant, another millisecond) is no time at all, not -0.0.
    const elapsedMs = Math.max(0, Date.now() - this.startedAtMs());
    const t = (elapsedMs / 1000).toFixed(1).padStart(6);
    const stamped = `[${t} s] ${text}`;
    if (this.meter && !this.meter.finished) this.meter.log(stamped);
    else this.out.write(`${stamped}\n`);
  }

  /** The run's plan: `total` actions; the meter starts at 0. */
  plan(label: string, total: number): void {
    if (!this.out) return;
    this.planned = total;
    this.meter = new ProgressMeter({ label, unit: { kind: 'items', noun: 'actions' }, total, mode: this.mode, out: this.out });
    this.meter.update(0);
  }

  /** One planned action finished (whatever its outcome). */
  advance(): void {
    if (!this.meter) return;
    // An abort skips the injects left: never more than planned, and a recount would be a bug.
    if (this.done >= this.planned) throw new RangeError(`scenario progress: action ${this.done + 1} finished, but ${this.planned} were planned`);
    this.meter.update(++this.done);
  }

  /** Live status after the bar (terminals only): `render` is called once a second. */
  live(render: () => string): void {
    if (this.mode !== 'tty' || !this.meter) return;
    const meter = this.meter;
    this.timer = setInterval(() => meter.update(this.done, { note: render() }), LIVE_EVERY_MS);
    this.timer.unref();
  }

  /** The bar's final line: `done` when the run passed, `failed` otherwise. */
  end(outcome: ProgressOutcome = 'done'): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.meter?.finish(outcome);
  }
}
