// An injectable clock for tests of code that takes its time from a function (src/ keeps its own
// `now`/`clock` options: a test hands it `() => clock.now()` or `clock.date`).

export interface Clock {
  /** Milliseconds since the epoch (or since any fixed origin the code under test accepts). */
  now(): number;
}

/** The wall clock. */
export const realClock: Clock = { now: () => Date.now() };

/**
 * A clock that moves only when told: `advance(ms)`, `set(ms)`, or by `stepMs` after every
 * reading (for code that must see time pass between two readings, e.g. "every check costs 1 ms").
 */
export class ManualClock implements Clock {
  private t: number;

  constructor(
    startMs: number | Date = 0,
    private readonly stepMs = 0,
  ) {
    this.t = typeof startMs === 'number' ? startMs : startMs.getTime();
  }

  /** The current time; then time moves on by `stepMs`. */
  now(): number {
    const t = this.t;
    this.t += this.stepMs;
    return t;
  }

  /** The current time as a Date (for code that takes `now: () => Date`). */
  readonly date = (): Date => new Date(this.now());

  advance(ms: number): this {
    if (!(ms >= 0)) throw new Error(`ManualClock.advance: ${ms} ms is not a forward step`);
    this.t += ms;
    return this;
  }

  set(ms: number | Date): this {
    this.t = typeof ms === 'number' ? ms : ms.getTime();
    return this;
  }
}
