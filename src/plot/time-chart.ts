/**
 * Line charts of time series as one self-contained SVG: panels stacked under a title, sharing
 * one wall-clock axis (gridlines through every panel, labels under the last), each with its own
 * value axis (ticks, gridlines, the unit beside it) and a legend of its series. Plain strings out,
 * no DOM; every text escaped. A chart without a single value says so in words instead of drawing
 * empty axes.
 */
import { escapeXml, fmtCompact, fmtValue, px } from './format.js';
import { linePath } from './path.js';
import { timeTicks, utcStamp, valueAxis } from './ticks.js';

export interface TimePoint {
  /** ms since the epoch */
  tMs: number;
  /** null: no value here (the line breaks) */
  value: number | null;
}

export interface TimeSeries {
  name: string;
  points: TimePoint[];
  /** CSS colour; default: the palette's next */
  color?: string;
}

export interface TimePanel {
  title: string;
  /** the values' unit, beside the value axis and in tooltips: `KB/s`, `%`, `s` */
  unit: string;
  series: TimeSeries[];
}

export interface TimeChartSpec {
  title: string;
  subtitle?: string;
  panels: TimePanel[];
  /** consecutive points farther apart than this are not joined (records missing: the array was down) */
  gapMs?: number;
  /** what the chart says when there is no value at all (default `no data to plot`) */
  emptyMessage?: string;
  /** pixels; default 960 */
  width?: number;
  /** height of each panel's plot area, pixels; default 130 */
  panelHeightPx?: number;
}

export const PALETTE = ['#4c78a8', '#e45756', '#54a24b', '#f58518', '#b279a2', '#72b7b2', '#9d755d', '#bab0ac'];

const FONT = 'font-family="Helvetica, Arial, sans-serif" font-size="12"';
const LEFT = 78;
const RIGHT = 28;
const HEADER = 64;
const PANEL_HEAD = 24;
const PANEL_GAP = 22;
const FOOTER = 54;
/** under this many points a series also gets a dot (and a tooltip) at every point */
const DOTS_UNDER = 60;
/** rough width of a 12 px character, for laying out legends */
const CHAR_PX = 6.6;

const finite = (v: number | null): v is number => v !== null && Number.isFinite(v);

function open(width: number, height: number, title: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} role="img" aria-label="${escapeXml(title)}">\n` +
    `<title>${escapeXml(title)}</title>\n<rect width="100%" height="100%" fill="#fff"/>\n`
  );
}

function header(spec: TimeChartSpec, width: number): string {
  let s = `<text x="${LEFT}" y="28" font-size="17" font-weight="bold">${escapeXml(spec.title)}</text>\n`;
  if (spec.subtitle) s += `<text x="${LEFT}" y="48" fill="#555">${escapeXml(spec.subtitle)}</text>\n`;
  return s + `<line x1="${LEFT}" x2="${width - RIGHT}" y1="${HEADER - 6}" y2="${HEADER - 6}" stroke="#ccc"/>\n`;
}

/** The chart of `spec` as an SVG document (ends with a newline). */
export function timeChartSvg(spec: TimeChartSpec): string {
  const width = spec.width ?? 960;
  const plotH = spec.panelHeightPx ?? 130;
  const times = spec.panels.flatMap((p) => p.series.flatMap((s) => s.points.filter((q) => finite(q.value) && Number.isFinite(q.tMs)).map((q) => q.tMs)));
  if (times.length === 0) {
    const height = HEADER + 90;
    const msg = spec.emptyMessage ?? 'no data to plot';
    return (
      open(width, height, spec.title) +
      header(spec, width) +
      `<rect x="${LEFT}" y="${HEADER + 10}" width="${width - LEFT - RIGHT}" height="56" fill="#f6f6f6" stroke="#ccc"/>\n` +
      `<text x="${width / 2}" y="${HEADER + 43}" text-anchor="middle" font-size="14" fill="#555" class="empty">${escapeXml(msg)}</text>\n</svg>\n`
    );
  }
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  if (t1 - t0 < 1000) {
    // one moment: half a minute either side, so the point sits mid-chart on a readable axis
    t0 -= 30_000;
    t1 += 30_000;
  }
  const plotW = width - LEFT - RIGHT;
  const x = (t: number) => LEFT + ((t - t0) / (t1 - t0)) * plotW;
  const ticks = timeTicks(t0, t1);
  const height = HEADER + spec.panels.length * (PANEL_HEAD + plotH + PANEL_GAP) - PANEL_GAP + FOOTER;
  const out: string[] = [open(width, height, spec.title), header(spec, width)];
  let colour = 0;
  spec.panels.forEach((panel, i) => {
    const top = HEADER + i * (PANEL_HEAD + plotH + PANEL_GAP) + PANEL_HEAD;
    const bottom = top + plotH;
    const colours = panel.series.map((s) => s.color ?? PALETTE[colour++ % PALETTE.length]!);
    out.push(panelSvg(panel, colours, { top, bottom, plotW, x, ticks, last: i === spec.panels.length - 1, gapMs: spec.gapMs }));
  });
  const axisY = HEADER + spec.panels.length * (PANEL_HEAD + plotH + PANEL_GAP) - PANEL_GAP;
  out.push(`<text x="${LEFT + plotW / 2}" y="${axisY + 40}" text-anchor="middle" fill="#333">${escapeXml(`time (UTC), ${utcStamp(t0)} to ${utcStamp(t1)}`)}</text>\n`);
  out.push('</svg>\n');
  return out.join('');
}

interface PanelFrame {
  top: number;
  bottom: number;
  plotW: number;
  x: (tMs: number) => number;
  ticks: Array<{ tMs: number; label: string }>;
  last: boolean;
  gapMs: number | undefined;
}

function panelSvg(panel: TimePanel, colours: string[], f: PanelFrame): string {
  const values = panel.series.flatMap((s) => s.points.map((p) => p.value).filter(finite));
  const axis = valueAxis(values.length ? Math.min(...values) : 0, values.length ? Math.max(...values) : 0, 4);
  const y = (v: number) => f.bottom - ((v - axis.lo) / (axis.hi - axis.lo)) * (f.bottom - f.top);
  const s: string[] = [`<g class="panel">\n`];
  // title and legend on one line above the plot
  const heading = `${panel.title} (${panel.unit})`;
  s.push(`<text x="${LEFT}" y="${px(f.top - 8)}" font-weight="bold" class="panel-title">${escapeXml(heading)}</text>\n`);
  let lx = LEFT + heading.length * CHAR_PX * 1.08 + 28;
  panel.series.forEach((ser, i) => {
    const last = [...ser.points].reverse().find((p) => finite(p.value));
    const label = `${ser.name}${last ? ` (last ${fmtValue(last.value)})` : ''}`;
    s.push(`<line x1="${px(lx)}" x2="${px(lx + 18)}" y1="${px(f.top - 12)}" y2="${px(f.top - 12)}" stroke="${escapeXml(colours[i])}" stroke-width="3"/>`);
    s.push(`<text x="${px(lx + 23)}" y="${px(f.top - 8)}" fill="#333" class="legend">${escapeXml(label)}</text>\n`);
    lx += 23 + label.length * CHAR_PX + 22;
  });
  // grid: values (with labels) and times (labels under the last panel only: the axis is shared)
  for (const v of axis.ticks) {
    const yy = px(y(v));
    s.push(`<line x1="${LEFT}" x2="${px(LEFT + f.plotW)}" y1="${yy}" y2="${yy}" stroke="${v === 0 ? '#999' : '#e3e3e3'}"/>`);
    s.push(`<text x="${LEFT - 6}" y="${yy}" dy="4" text-anchor="end" fill="#333" class="ytick">${escapeXml(fmtCompact(v))}</text>\n`);
  }
  for (const t of f.ticks) {
    const xx = px(f.x(t.tMs));
    s.push(`<line x1="${xx}" x2="${xx}" y1="${px(f.top)}" y2="${px(f.bottom)}" stroke="#eee"/>`);
    if (f.last) s.push(`<line x1="${xx}" x2="${xx}" y1="${px(f.bottom)}" y2="${px(f.bottom + 4)}" stroke="#333"/><text x="${xx}" y="${px(f.bottom + 17)}" text-anchor="middle" fill="#333" class="xtick">${escapeXml(t.label)}</text>`);
    s.push('\n');
  }
  s.push(`<rect x="${LEFT}" y="${px(f.top)}" width="${px(f.plotW)}" height="${px(f.bottom - f.top)}" fill="none" stroke="#999"/>\n`);
  s.push(`<text transform="translate(18 ${px((f.top + f.bottom) / 2)}) rotate(-90)" text-anchor="middle" fill="#333" class="unit">${escapeXml(panel.unit)}</text>\n`);
  if (!values.length) {
    s.push(`<text x="${px(LEFT + f.plotW / 2)}" y="${px((f.top + f.bottom) / 2 + 4)}" text-anchor="middle" fill="#888" class="empty">no data</text>\n`);
  }
  // the first series wider, under the others: a series that follows it closely (data under total) leaves it visible as a band
  panel.series.forEach((ser, i) => s.push(seriesSvg(ser, panel.unit, colours[i]!, f, y, i === 0 && panel.series.length > 1 ? 4 : 1.8)));
  s.push('</g>\n');
  return s.join('');
}

function seriesSvg(ser: TimeSeries, unit: string, colour: string, f: PanelFrame, y: (v: number) => number, widthPx: number): string {
  const pts = ser.points.filter((p) => Number.isFinite(p.tMs)).sort((a, b) => a.tMs - b.tMs);
  // one entry per point, and a null wherever the line breaks (no value, or records missing)
  const marks: Array<{ xy: [number, number]; p: TimePoint } | null> = [];
  let prevT: number | null = null;
  for (const p of pts) {
    if (f.gapMs !== undefined && prevT !== null && p.tMs - prevT > f.gapMs) marks.push(null);
    marks.push(finite(p.value) ? { xy: [f.x(p.tMs), y(p.value)], p } : null);
    prevT = p.tMs;
  }
  const c = escapeXml(colour);
  let s = `<path d="${linePath(marks.map((m) => m && m.xy))}" fill="none" stroke="${c}" stroke-width="${widthPx}" stroke-linejoin="round" class="series"><title>${escapeXml(ser.name)}</title></path>\n`;
  const many = marks.filter(Boolean).length >= DOTS_UNDER;
  marks.forEach((m, i) => {
    // a point with no neighbour on the line would be invisible: it always gets its dot
    if (!m || (many && (marks[i - 1] || marks[i + 1]))) return;
    const tip = `${ser.name} at ${utcStamp(m.p.tMs)}: ${fmtValue(m.p.value)} ${unit}`;
    s += `<circle cx="${px(m.xy[0])}" cy="${px(m.xy[1])}" r="2.6" fill="${c}"><title>${escapeXml(tip)}</title></circle>`;
  });
  return s + '\n';
}
