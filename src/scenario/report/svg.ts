/**
 * Chart primitives of the report's timeline (html.ts): number formats, scales, ticks, paths and a
 * row packer. Plain strings out, no DOM; every text that may come from the report goes through
 * escapeHtml (it holds user text: names, labels, commands, error messages). Escaping, coordinates,
 * tick labels, round steps and polylines are src/plot's, shared with `group perf` and the
 * benchmarks' charts.
 */
import { escapeXml, fmtTick, linePath, niceStep, px } from '../../plot/index.js';
import type { BacklogSample, WorkloadRecord, WorkloadSample } from './types.js';

/** Text safe in HTML/SVG content and in quoted attributes. null/undefined: empty. */
export const escapeHtml = escapeXml;
export { fmtTick, linePath, px };

/** `12.34 s` */
export function fmtSeconds(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  return `${(ms / 1000).toFixed(2)} s`;
}

/** `1.5 MiB` */
export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${Number(v.toFixed(v < 10 ? 2 : 1))} ${units[u]}`;
}

/** A latency in ms with the precision its size deserves. */
export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  const digits = ms < 1 ? 3 : ms < 10 ? 2 : ms < 100 ? 1 : 0;
  return `${ms.toFixed(digits)} ms`;
}

/** The horizontal frame every lane shares: time 0..spanMs over [left, left + width]. */
export interface Frame {
  left: number;
  width: number;
  spanMs: number;
}

export function xAt(f: Frame, tMs: number): number {
  const t = Math.min(Math.max(Number.isFinite(tMs) ? tMs : 0, 0), f.spanMs);
  return f.left + (t / f.spanMs) * f.width;
}

/** Time ticks (ms) at a round step, about `target` of them. */
export function timeTicks(spanMs: number, target = 14): number[] {
  const steps = [100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000];
  const step = steps.find((s) => spanMs / s <= target) ?? Math.ceil(spanMs / target / 3_600_000) * 3_600_000;
  const out: number[] = [];
  for (let t = 0; t <= spanMs + 1e-9; t += step) out.push(t);
  return out;
}

/** The time ticks with their labels (`0s`, `2.5s`, `1m30s` past two minutes). */
export function timeAxisTicks(spanMs: number): Array<{ tMs: number; label: string }> {
  const ticks = timeTicks(spanMs);
  const step = ticks.length > 1 ? ticks[1]! - ticks[0]! : 1000;
  return ticks.map((tMs) => ({ tMs, label: timeLabel(tMs, step, spanMs) }));
}

function timeLabel(tMs: number, step: number, spanMs: number): string {
  if (spanMs > 120_000 && step % 1000 === 0) {
    const s = Math.round(tMs / 1000);
    return `${Math.floor(s / 60)}m${s % 60 ? `${String(s % 60).padStart(2, '0')}s` : ''}`;
  }
  return `${(tMs / 1000).toFixed(step < 1000 ? 1 : 0)}s`;
}

/** A y scale: value to pixel, its ticks and how it is described. */
export interface Scale {
  y: (v: number) => number;
  ticks: number[];
  log: boolean;
}

/** 0..max (rounded up to a nice tick) over [bottom, top]. */
export function linearScale(max: number, top: number, bottom: number, target = 3): Scale {
  const m = max > 0 && Number.isFinite(max) ? max : 1;
  const step = niceStep(m / target);
  const hi = Math.ceil(m / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = 0; v <= hi + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { y: (v) => bottom - (Math.min(Math.max(v, 0), hi) / hi) * (bottom - top), ticks, log: false };
}

/** 0..max bytes with ticks at round numbers of a binary unit (0, 2, 4 MiB). */
export function bytesScale(max: number, top: number, bottom: number): Scale {
  const unit = 1024 ** Math.min(4, Math.max(0, Math.floor(Math.log(Math.max(max, 1)) / Math.log(1024))));
  const s = linearScale(max / unit, top, bottom, 2);
  return { y: (v) => s.y(v / unit), ticks: s.ticks.map((v) => v * unit), log: false };
}

/** min..max (positive) on a log10 axis, widened to whole decades. */
export function logScale(min: number, max: number, top: number, bottom: number): Scale {
  const lo = Math.floor(Math.log10(min));
  const hi = Math.max(Math.ceil(Math.log10(max)), lo + 1);
  const ticks: number[] = [];
  for (let d = lo; d <= hi; d++) {
    ticks.push(Number((10 ** d).toPrecision(6)));
    if (hi - lo <= 2 && d < hi) ticks.push(Number((2 * 10 ** d).toPrecision(6)), Number((5 * 10 ** d).toPrecision(6)));
  }
  ticks.sort((a, b) => a - b);
  const y = (v: number) => {
    const l = Math.log10(Math.max(v, 10 ** lo));
    return bottom - ((Math.min(l, hi) - lo) / (hi - lo)) * (bottom - top);
  };
  return { y, ticks, log: true };
}

/** A step line: each value holds from its point to the next point's x. */
export function stepPath(points: Array<[number, number]>): string {
  let d = '';
  points.forEach(([x, y], i) => {
    d += i === 0 ? `M${px(x)},${px(y)}` : `H${px(x)}V${px(y)}`;
  });
  return d;
}

/**
 * Rows for horizontal items so none overlaps another in its row (greedy, in the given order):
 * the row index of each item, and the number of rows.
 */
export function packRows(items: Array<{ x0: number; x1: number }>, gap = 4): { rows: number[]; count: number } {
  const ends: number[] = [];
  const rows = items.map(({ x0, x1 }) => {
    let r = ends.findIndex((end) => end + gap <= x0);
    if (r < 0) {
      r = ends.length;
      ends.push(0);
    }
    ends[r] = x1;
    return r;
  });
  return { rows, count: ends.length };
}

/** Width of a text at 11px, roughly (packing only). */
export function textWidth(s: string): number {
  return s.length * 6.1;
}

/** A text shortened to `max` characters with an ellipsis. */
export function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** `<title>` of an element: the native tooltip. */
export function tip(text: string): string {
  return `<title>${escapeHtml(text)}</title>`;
}

/** An SVG text element (content escaped). */
export function svgText(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${px(x)}" y="${px(y)}"${attrs ? ` ${attrs}` : ''}>${escapeHtml(s)}</text>`;
}

// ---------------------------------------------------------------- data charts

/** Horizontal tick lines and their labels on the left (or right) edge of a chart. */
function yAxis(f: Frame, scale: Scale, fmt: (v: number) => string, side: 'left' | 'right'): string {
  return scale.ticks
    .map((v) => {
      const y = scale.y(v);
      const x = side === 'left' ? f.left - 4 : f.left + f.width + 4;
      const grid = side === 'left' ? `<line x1="${px(f.left)}" x2="${px(f.left + f.width)}" y1="${px(y)}" y2="${px(y)}" class="hgrid"/>` : '';
      return `${grid}${svgText(x, y + 3.5, fmt(v), `text-anchor="${side === 'left' ? 'end' : 'start'}" class="axis"`)}`;
    })
    .join('');
}

export function backlogChart(samples: BacklogSample[], f: Frame, scale: Scale): string {
  const pts = samples.map((s): [number, number] => [xAt(f, s.tMs), scale.y(s.bytes)]);
  const line = stepPath(pts);
  const bottom = scale.y(0);
  const area = `${line}V${px(bottom)}H${px(pts[0]![0])}Z`;
  const hits = samples.map((s, i) => {
    const [x0, x1] = hitSpan(pts, i);
    return `<rect x="${px(x0)}" y="${px(scale.y(scale.ticks.at(-1)!))}" width="${px(x1 - x0)}" height="${px(bottom - scale.y(scale.ticks.at(-1)!))}" class="hit">${tip(`${fmtSeconds(s.tMs)}: ${fmtBytes(s.bytes)} in ${s.entries} entries`)}</rect>`;
  });
  return `${yAxis(f, scale, fmtBytes, 'left')}<path d="${area}" class="backlog-area"/><path d="${line}" class="backlog"/>${hits.join('')}`;
}

/** The hover strip of point i: halfway to its neighbours. */
function hitSpan(pts: Array<[number, number]>, i: number): [number, number] {
  const x = pts[i]![0];
  const prev = i > 0 ? pts[i - 1]![0] : x - 4;
  const next = i < pts.length - 1 ? pts[i + 1]![0] : x + 4;
  return [(prev + x) / 2, Math.max((x + next) / 2, (prev + x) / 2 + 1)];
}

export const P50 = '#1f6fb2';
export const P99 = '#8e44ad';

/** One sample's window: from the previous sample (or the workload's start, or 1 s before) to it. */
export interface SampleWindow {
  s: WorkloadSample;
  t0: number;
  t1: number;
  rate: number;
}

export function windowsOf(w: WorkloadRecord): SampleWindow[] {
  return (Array.isArray(w.samples) ? w.samples : []).map((s, i, all) => {
    const t0 = i > 0 ? all[i - 1]!.tMs : w.startMs < s.tMs ? Math.max(w.startMs, s.tMs - 1000) : s.tMs - 1000;
    return { s, t0, t1: s.tMs, rate: s.windowAcks / Math.max((s.tMs - t0) / 1000, 0.001) };
  });
}

export function workloadChart(w: WorkloadRecord, wins: SampleWindow[], f: Frame, lat: Scale, acks: Scale, top: number): string {
  const bottom = acks.y(0);
  const span = `<line x1="${px(xAt(f, w.startMs))}" x2="${px(xAt(f, w.endMs ?? f.spanMs))}" y1="${px(top + 5)}" y2="${px(top + 5)}" class="running">${tip(`${w.name} running ${fmtSeconds(w.startMs)} → ${w.endMs === null ? 'end' : fmtSeconds(w.endMs)}`)}</line>`;
  const bars = wins.map((x) => {
    const x0 = xAt(f, x.t0);
    const y = acks.y(x.rate);
    return `<rect x="${px(x0)}" y="${px(y)}" width="${px(Math.max(xAt(f, x.t1) - x0 - 0.5, 0.5))}" height="${px(bottom - y)}" class="acks"/>`;
  });
  const mid = (x: SampleWindow) => (xAt(f, x.t0) + xAt(f, x.t1)) / 2;
  const p50 = linePath(wins.map((x) => (x.s.latencyP50Ms === null ? null : [mid(x), lat.y(x.s.latencyP50Ms)])));
  const p99 = linePath(wins.map((x) => (x.s.latencyP99Ms === null ? null : [mid(x), lat.y(x.s.latencyP99Ms)])));
  const hits = wins.map((x) => {
    const x0 = xAt(f, x.t0);
    return `<rect x="${px(x0)}" y="${px(top + 10)}" width="${px(Math.max(xAt(f, x.t1) - x0, 1))}" height="${px(bottom - top - 10)}" class="hit">${tip(windowTitle(w, x))}</rect>`;
  });
  return [
    span,
    yAxis(f, lat, (v) => `${fmtTick(v)} ms`, 'left'),
    yAxis(f, acks, (v) => `${fmtTick(v)}/s`, 'right'),
    bars.join(''),
    gapMarks(wins, f, top + 10, bottom),
    `<path d="${p50}" class="lat" stroke="${P50}"/><path d="${p99}" class="lat" stroke="${P99}"/>`,
    hits.join(''),
  ].join('');
}

function windowTitle(w: WorkloadRecord, x: SampleWindow): string {
  const s = x.s;
  return [
    `${w.name} ${fmtSeconds(x.t0)} → ${fmtSeconds(x.t1)}`,
    s.windowAcks === 0 ? 'NO WRITES ACKNOWLEDGED' : `${s.windowAcks} acks (${x.rate.toFixed(1)}/s)`,
    `p50 ${fmtMs(s.latencyP50Ms)}, p99 ${fmtMs(s.latencyP99Ms)}, max ${fmtMs(s.latencyMaxMs)}`,
    `total issued ${s.issued}, acked ${s.acked}`,
  ].join('\n');
}

/** Runs of windows without an ack: a red veil over the chart and a solid red strip under it. */
function gapMarks(wins: SampleWindow[], f: Frame, top: number, bottom: number): string {
  const runs: Array<{ t0: number; t1: number; n: number }> = [];
  for (const x of wins) {
    if (x.s.windowAcks !== 0) continue;
    const last = runs.at(-1);
    if (last && last.t1 === x.t0) {
      last.t1 = x.t1;
      last.n++;
    } else runs.push({ t0: x.t0, t1: x.t1, n: 1 });
  }
  return runs
    .map((g) => {
      const x0 = xAt(f, g.t0);
      const w = Math.max(xAt(f, g.t1) - x0, 2);
      const title = `no writes acknowledged ${fmtSeconds(g.t0)} → ${fmtSeconds(g.t1)} (${g.n} window${g.n === 1 ? '' : 's'})`;
      return `<g class="gap">${tip(title)}<rect x="${px(x0)}" y="${px(top)}" width="${px(w)}" height="${px(bottom - top)}" class="gap-veil"/><rect x="${px(x0)}" y="${px(bottom + 2)}" width="${px(w)}" height="5" class="gap-strip"/></g>`;
    })
    .join('');
}
