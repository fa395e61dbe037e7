/**
 * Plotting: charts as self-contained SVG strings (no DOM, no dependencies, every text escaped).
 * - format.ts: escaping and the number formats of labels;
 * - ticks.ts: round value steps and wall-clock ticks;
 * - path.ts: path data from points (broken at gaps);
 * - time-chart.ts: stacked panels of time series sharing one time axis (`group perf --svg`);
 * - png.ts: a PNG of a chart through rsvg-convert (`group perf --png`).
 * Also used by the scenario report's timeline and the benchmarks' bar charts (bench/lib/svg.mjs,
 * through dist/).
 */
export { escapeXml, fmtCompact, fmtTick, fmtValue, px } from './format.js';
export { niceStep, timeTicks, utcStamp, valueAxis, type TimeTick, type ValueAxis } from './ticks.js';
export { linePath } from './path.js';
export { PALETTE, timeChartSvg, type TimeChartSpec, type TimePanel, type TimePoint, type TimeSeries } from './time-chart.js';
export { PngRenderError, RSVG_CONVERT, svgToPng } from './png.js';
