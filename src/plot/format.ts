/**
 * Text and numbers in SVG: escaping and the formats of axis labels. Every text that reaches a
 * chart goes through `escapeXml`: names and titles may come from users (group names, scenario
 * labels, error messages).
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe in XML/HTML content and in quoted attributes. null/undefined: empty. */
export function escapeXml(value: unknown): string {
  const s = value === null || value === undefined ? '' : String(value);
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** A coordinate rounded to a tenth of a pixel (keeps the file small); not finite: 0. */
export function px(v: number): string {
  return Number.isFinite(v) ? String(Math.round(v * 10) / 10) : '0';
}

/** A tick value without trailing zeros or float noise: 0.5, 2, 1000. */
export function fmtTick(v: number): string {
  return String(Number(v.toPrecision(6)));
}

/** A compact value with an SI suffix past a thousand: 950, 1.5k, 12.3M (`digits` significant). */
export function fmtCompact(v: number, digits = 3): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(digits)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(digits)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(digits)}k`;
  return `${+v.toPrecision(digits)}`;
}

/** A measured value for a legend or a tooltip: 0.25, 12.5, 1234, 12.3k. */
export function fmtValue(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e4) return fmtCompact(v);
  if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
  return String(Number(v.toFixed(a >= 10 ? 1 : 2)));
}
