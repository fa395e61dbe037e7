/**
 * Axis ticks: round value steps (1, 2 or 5 times a power of ten) and round wall-clock steps, so
 * that a person reads the grid without arithmetic.
 */

/** 1, 2 or 5 times a power of ten, at least `raw` (raw <= 0 or not finite: 1). */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 5, 10].find((m) => m * p >= raw * (1 - 1e-12)) ?? 10) * p;
}

/** A value axis: `lo`..`hi` widened to whole steps, 0 included, about `target` intervals. */
export interface ValueAxis {
  lo: number;
  hi: number;
  ticks: number[];
}

export function valueAxis(min: number, max: number, target = 4): ValueAxis {
  let lo = Math.min(0, Number.isFinite(min) ? min : 0);
  let hi = Math.max(0, Number.isFinite(max) ? max : 0);
  if (hi - lo <= 0) hi = lo + 1; // all zero (or one value): still a readable 0..1 axis
  // of the round steps near span/target, the one whose count of intervals is closest to target
  const raw = (hi - lo) / target;
  const intervals = (st: number) => Math.ceil(hi / st - 1e-9) - Math.floor(lo / st + 1e-9);
  const candidates = [niceStep(raw / 5)];
  while (candidates.length < 6) {
    const c = candidates[candidates.length - 1]!;
    const mantissa = Math.round(c / 10 ** Math.floor(Math.log10(c) + 1e-9));
    candidates.push(c * (mantissa === 2 ? 2.5 : 2));
  }
  const step = candidates.reduce((a, b) => (Math.abs(intervals(b) - target) < Math.abs(intervals(a) - target) ? b : a));
  lo = Math.floor(lo / step + 1e-9) * step;
  hi = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { lo, hi, ticks };
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Wall-clock steps a reader knows. */
const TIME_STEPS = [1, 2, 5, 10, 15, 30].map((s) => s * SECOND).concat([1, 2, 5, 10, 15, 30].map((m) => m * MINUTE), [1, 2, 3, 6, 12].map((h) => h * HOUR), [1, 2, 7].map((d) => d * DAY));

export interface TimeTick {
  tMs: number;
  label: string;
}

const two = (n: number) => String(n).padStart(2, '0');

/**
 * Ticks of a wall-clock axis from `t0Ms` to `t1Ms` (ms since the epoch), at a round step
 * (aligned to UTC), about `target` of them; labels in UTC: `05:31:20` under a minute's step,
 * `05:30` above, with the date (`12-03 05:30`) when the span crosses midnight.
 */
export function timeTicks(t0Ms: number, t1Ms: number, target = 8): TimeTick[] {
  const span = Math.max(t1Ms - t0Ms, 1);
  const step = TIME_STEPS.find((s) => span / s <= target) ?? Math.ceil(span / target / DAY) * DAY;
  const days = Math.floor(t0Ms / DAY) !== Math.floor(t1Ms / DAY);
  const out: TimeTick[] = [];
  for (let t = Math.ceil(t0Ms / step) * step; t <= t1Ms; t += step) {
    const d = new Date(t);
    const hm = `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
    const clock = step < MINUTE ? `${hm}:${two(d.getUTCSeconds())}` : hm;
    out.push({ tMs: t, label: days ? `${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${clock}` : clock });
  }
  return out;
}

/** `2026-12-03 05:30:12 UTC` */
export function utcStamp(tMs: number): string {
  return new Date(tMs).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}
