/**
 * Precise wake-ups for the link emulator's delay queues.
 *
 * Node's timers count in the event loop's cached, truncated milliseconds: `setTimeout(fn, 1)`
 * fires anywhere from ~0 to 1.3 ms later on an idle machine (later under load), so a link set to
 * 0.2 ms delivered after about 1.2 ms and one set to 1 ms after 1.2-1.5 ms. Here a wait is a timer
 * for its bulk, aimed `POLL_MS` before the due time, and then polls of the monotonic clock
 * (`performance.now()`, one per event-loop turn through `setImmediate`, so I/O keeps flowing)
 * until the due time: a wake-up a few µs after it is due on an idle machine.
 *
 * The polls cost CPU: they never sleep. They run only while something is due within
 * pollMs + 1 ms (the timer's granularity), never while nothing is due soon; `stats.pollMs` counts
 * their wall time (CPU time, since they do not sleep): about 1 ms per wake-up, so a link at 1 ms
 * one way under a ping-pong load keeps most of a core busy, one at 20 ms about 5%. With
 * `pollMs` 0 there are no polls: timers only, as late as Node's timers are (up to ~1.3 ms idle).
 * One instance serves every connection and direction of an emulator, so there is at most one
 * timer and one poll loop whatever the traffic.
 */
import type { DelayQueueStats } from './types.js';

/** Something called back at the time it asked for (a pipe: one direction of one connection). */
export interface Wakeable {
  wake(): void;
}

/**
 * How long before a due time the timer is aimed by default; the polls cover the rest. It covers
 * how late a timer fires on a busy loop (0.1 ms typical, 0.4 ms at p90 on a loaded 2-CPU machine).
 */
export const POLL_MS = 0.5;
/** A wake-up later than this counts as late (the machine was busy). */
const LATE_MS = 0.1;

export class Wakeups {
  /** Each waiter's one wake-up time (performance.now() ms); asking again replaces it. */
  private readonly due = new Map<Wakeable, number>();
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer is aimed at (performance.now() ms); Infinity: no timer. */
  private timerAt = Infinity;
  private immediate: NodeJS.Immediate | undefined;
  /** When the current run of polls began; undefined: not polling. */
  private pollSince: number | undefined;
  private stopped = false;
  readonly stats: DelayQueueStats = { wakeups: 0, pollMs: 0, timers: 0, late: 0, lateMs: 0 };

  /**
   * `pollMs`: how long before a due time polling starts (0, the default: never poll, timers only;
   * POLL_MS for delays to a few µs, at up to a core of CPU while a link is busy: `precise`).
   */
  constructor(private readonly pollMs = 0) {
    if (!(pollMs >= 0 && pollMs <= 10)) throw new Error(`pollMs must be 0-10, not ${pollMs}`);
  }

  /** Calls `w.wake()` at `atMs` (a performance.now() time) or as soon after as the loop allows. */
  at(w: Wakeable, atMs: number): void {
    if (this.stopped) return;
    if (!Number.isFinite(atMs)) throw new Error(`wake-up time must be finite, not ${atMs}`);
    this.due.set(w, atMs);
    if (this.immediate) return; // polling: the next poll sees it
    if (this.timerAt <= atMs - this.pollMs) return; // the armed timer comes first and re-plans
    this.plan(performance.now(), atMs);
  }

  cancel(w: Wakeable): void {
    this.due.delete(w);
  }

  stop(): void {
    this.stopped = true;
    this.due.clear();
    this.clearTimer();
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
    this.endPolls(performance.now());
  }

  /** Wakes whoever is due, then plans the next wake-up. */
  private service(): void {
    const now = performance.now();
    const ready: Wakeable[] = [];
    for (const [w, t] of this.due) if (t <= now) ready.push(w);
    for (const w of ready) {
      const t = this.due.get(w);
      if (t === undefined || t > now) continue; // cancelled, or asked again for later, by a wake before it
      this.due.delete(w);
      this.stats.wakeups++;
      this.stats.lateMs += now - t;
      if (now - t > LATE_MS) this.stats.late++;
      w.wake(); // may ask for its next wake-up
    }
    this.plan(performance.now(), this.earliest());
  }

  private earliest(): number {
    let next = Infinity;
    for (const t of this.due.values()) if (t < next) next = t;
    return next;
  }

  /** Arms what wakes us for `next`: nothing, a timer (more than pollMs + 1 ms away), or polls. */
  private plan(now: number, next: number): void {
    if (next === Infinity) {
      this.clearTimer();
      this.endPolls(now);
      return;
    }
    // A timer of n ms can fire up to 1 ms early (truncated loop time): only a wait of at least
    // 1 ms beyond the polling window gets one; it is re-planned when it fires.
    const waitMs = next - now;
    const bulkMs = Math.floor(waitMs - this.pollMs);
    if (bulkMs >= 1 || (this.pollMs === 0 && waitMs > 0)) {
      this.endPolls(now);
      this.armTimer(next - this.pollMs, Math.max(1, bulkMs));
      return;
    }
    this.clearTimer();
    // Polling while the time is still ahead; something already due only takes the next turn.
    if (waitMs > 0) this.pollSince ??= now;
    else this.endPolls(now);
    this.immediate ??= setImmediate(this.poll);
  }

  private readonly poll = (): void => {
    this.immediate = undefined;
    if (!this.stopped) this.service();
  };

  private armTimer(aimAt: number, ms: number): void {
    if (this.timer && this.timerAt <= aimAt) return;
    this.clearTimer();
    this.stats.timers++;
    this.timerAt = aimAt;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      if (!this.stopped) this.service();
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private endPolls(now: number): void {
    if (this.pollSince === undefined) return;
    this.stats.pollMs += now - this.pollSince;
    this.pollSince = undefined;
  }
}
