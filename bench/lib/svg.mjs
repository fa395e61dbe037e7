// Grouped bar charts as self-contained SVG (no dependencies). Escaping, tick labels, round steps
// and the palette are src/plot's (the repo's own dist/, whatever SANBOX_DIST says: an older build
// may predate it), shared with `sanbox group perf --svg` and the scenario report.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PLOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'plot', 'index.js');
let plot;
try {
  plot = await import(pathToFileURL(PLOT).href);
} catch (e) {
  throw new Error(`cannot load ${PLOT} (run npm run build first): ${e.message}`);
}
const { escapeXml: esc, fmtCompact: fmtTick, niceStep, PALETTE } = plot;

function fmtValue(v) {
  if (v >= 10000) return `${(v / 1000).toFixed(1)}k`;
  if (v >= 100) return v.toFixed(0);
  return v.toFixed(1);
}

/** Ticks for a log axis between lo and hi: 1-2-5 per decade (1s only over many decades). */
function logTicks(lo, hi) {
  const out = [];
  const decades = Math.log10(hi / lo);
  const steps = decades > 4 ? [1] : [1, 2, 5];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) for (const s of steps) {
    const v = s * 10 ** e;
    if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
  }
  return out;
}

function linTicks(hi) {
  const step = niceStep(hi / 5);
  // up to the first tick at or above hi: the top of the axis, so the tallest bar stays inside
  const out = [];
  for (let v = 0; v < hi + step * 0.9999; v += step) out.push(v);
  return out;
}

/**
 * panels: [{ title, groups: [{ label, values: (number|null)[] }] }] (values in series order);
 * series: names (a colour each); scale: 'log' | 'linear' | 'auto' (log when max/min > 20).
 * Every panel shares the y axis. Bars carry their value above them.
 */
export function groupedBarsSvg({ title, subtitle = '', panels, series, yLabel, xLabel, scale = 'auto', colors = PALETTE }) {
  const all = panels.flatMap((p) => p.groups.flatMap((g) => g.values)).filter((v) => typeof v === 'number' && v > 0);
  const max = all.length ? Math.max(...all) : 1;
  const min = all.length ? Math.min(...all) : 1;
  const log = scale === 'log' || (scale === 'auto' && max / min > 20);
  const lo = log ? 10 ** Math.floor(Math.log10(min)) : 0;
  // log: the next 1-2-5 step above the tallest bar with room for its label
  const hi = log ? [1, 2, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(max * 1.5))).find((v) => v >= max * 1.5) : max * 1.12;
  const ticks = log ? logTicks(lo, hi) : linTicks(hi);
  const top = log ? hi : ticks[ticks.length - 1];

  const left = 78;
  const right = 20;
  const plotTop = 70;
  const plotH = 340;
  const minWidth = Math.max(760, 7 * Math.max(title.length * 1.4, subtitle.length) + 40);
  const barW = 18;
  const panelPad = 24;
  // groups spaced evenly; the gap grows until the chart is at least minWidth wide
  const bars = panels.reduce((n, p) => n + p.groups.reduce((m, g) => m + g.values.length, 0), 0);
  const slots = panels.reduce((n, p) => n + p.groups.length + 1, 0);
  const gap = Math.max(14, (minWidth - left - right - panels.length * panelPad - bars * barW) / slots);
  const groupW = (g) => g.values.length * barW + gap;
  const panelW = panels.map((p) => p.groups.reduce((n, g) => n + groupW(g), 0) + gap + panelPad);
  const width = Math.ceil(left + panelW.reduce((a, b) => a + b, 0) + right);
  // legend: items flow left to right, wrapping (text width estimated at 6.6 px per character)
  const legend = [];
  {
    let lx = left;
    let row = 0;
    for (let i = 0; i < series.length; i++) {
      const w = 18 + 6.6 * String(series[i]).length + 24;
      if (lx + w > width - right && lx > left) { lx = left; row++; }
      legend.push({ x: lx, row });
      lx += w;
    }
  }
  const legendRows = legend.length ? legend[legend.length - 1].row + 1 : 0;
  const height = plotTop + plotH + 62 + 22 * legendRows + 10;
  const y = (v) => {
    if (log) {
      const c = Math.max(v, lo);
      return plotTop + plotH - (plotH * Math.log10(c / lo)) / Math.log10(top / lo);
    }
    return plotTop + plotH - (plotH * v) / top;
  };

  const s = [];
  s.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  s.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  s.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`);
  if (subtitle) s.push(`<text x="${width / 2}" y="44" text-anchor="middle" fill="#555">${esc(subtitle)}</text>`);
  // y grid, ticks, label
  for (const t of ticks) {
    const yy = y(t).toFixed(1);
    s.push(`<line x1="${left}" x2="${width - right}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`);
    s.push(`<text x="${left - 6}" y="${yy}" dy="4" text-anchor="end">${fmtTick(t)}</text>`);
  }
  s.push(`<text transform="translate(18 ${plotTop + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}${log ? ' (log scale)' : ''}</text>`);
  s.push(`<line x1="${left}" x2="${left}" y1="${plotTop}" y2="${plotTop + plotH}" stroke="#333"/>`);
  s.push(`<line x1="${left}" x2="${width - right}" y1="${plotTop + plotH}" y2="${plotTop + plotH}" stroke="#333"/>`);
  let x0 = left;
  panels.forEach((p, pi) => {
    const pw = panelW[pi];
    s.push(`<text x="${x0 + pw / 2}" y="${plotTop - 10}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
    if (pi > 0) s.push(`<line x1="${x0}" x2="${x0}" y1="${plotTop - 4}" y2="${plotTop + plotH}" stroke="#999" stroke-dasharray="4 3"/>`);
    let x = x0 + gap + panelPad / 2;
    for (const g of p.groups) {
      g.values.forEach((v, i) => {
        const bx = x + i * barW;
        if (typeof v !== 'number' || !(v > 0)) {
          s.push(`<text x="${bx + barW / 2}" y="${plotTop + plotH - 4}" text-anchor="middle" font-size="9" fill="#999">–</text>`);
          return;
        }
        const by = y(v);
        s.push(`<rect x="${bx}" y="${by.toFixed(1)}" width="${barW - 2}" height="${(plotTop + plotH - by).toFixed(1)}" fill="${colors[i % colors.length]}"><title>${esc(`${p.title}, ${g.label}, ${series[i]}: ${fmtValue(v)}`)}</title></rect>`);
        s.push(`<text transform="translate(${bx + barW / 2 + 3} ${(by - 4).toFixed(1)}) rotate(-90)" font-size="9" fill="#333">${fmtValue(v)}</text>`);
      });
      s.push(`<text x="${x + (g.values.length * barW) / 2}" y="${plotTop + plotH + 18}" text-anchor="middle">${esc(g.label)}</text>`);
      x += groupW(g);
    }
    x0 += pw;
  });
  s.push(`<text x="${left + (width - left - right) / 2}" y="${plotTop + plotH + 40}" text-anchor="middle">${esc(xLabel)}</text>`);
  // legend
  const ly = plotTop + plotH + 60;
  series.forEach((name, i) => {
    const lx = legend[i].x;
    const yy = ly + legend[i].row * 22;
    s.push(`<rect x="${lx}" y="${yy}" width="12" height="12" fill="${colors[i % colors.length]}"/>`);
    s.push(`<text x="${lx + 18}" y="${yy + 10}">${esc(name)}</text>`);
  });
  s.push('</svg>');
  return s.join('\n') + '\n';
}
