// src/plot: escaping and formats, round ticks, and the time chart as a parsed SVG document
// (test/support/xml.ts: a strict parser), including a chart without any value.
import { describe, it, expect } from 'vitest';
import { escapeXml, fmtCompact, fmtTick, fmtValue, linePath, niceStep, timeChartSvg, timeTicks, valueAxis, type TimePanel } from '../../src/plot/index.js';
import { findAll, parseXml, texts } from '../support/xml.js';

const T0 = Date.UTC(2026, 11, 3, 5, 30, 0);
const series = (n: number, f: (i: number) => number | null, stepMs = 10_000) => Array.from({ length: n }, (_, i) => ({ tMs: T0 + i * stepMs, value: f(i) }));

describe('formats and escaping', () => {
  it('escapes the five XML characters, and null as empty', () => {
    expect(escapeXml(`<a href="x">Tom & 'Jerry'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;');
    expect(escapeXml(null)).toBe('');
    expect(escapeXml(12)).toBe('12');
  });
  it('formats ticks and values', () => {
    expect(fmtTick(0.1 + 0.2)).toBe('0.3');
    expect(fmtTick(1000)).toBe('1000');
    expect(fmtCompact(950)).toBe('950');
    expect(fmtCompact(1500)).toBe('1.5k');
    expect(fmtCompact(12_345_678)).toBe('12.3M');
    expect(fmtValue(0.256)).toBe('0.26');
    expect(fmtValue(12.34)).toBe('12.3');
    expect(fmtValue(1234.4)).toBe('1234');
    expect(fmtValue(null)).toBe('–');
  });
});

describe('ticks', () => {
  it('steps are 1, 2 or 5 times a power of ten', () => {
    expect([0.03, 0.7, 3, 40, 120, 0].map(niceStep)).toEqual([0.05, 1, 5, 50, 200, 1]);
  });
  it('a value axis starts at 0, ends on a tick above the maximum, and survives all-zero data', () => {
    expect(valueAxis(3, 870)).toEqual({ lo: 0, hi: 1000, ticks: [0, 200, 400, 600, 800, 1000] });
    expect(valueAxis(0, 0).ticks).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(valueAxis(-3, 4).lo).toBeLessThanOrEqual(-3);
  });
  it('time ticks fall on round wall-clock steps, labelled in UTC', () => {
    const t = timeTicks(T0 + 7_000, T0 + 15 * 60_000);
    expect(t.map((x) => x.label)).toEqual(['05:32', '05:34', '05:36', '05:38', '05:40', '05:42', '05:44']);
    const s = timeTicks(T0, T0 + 5_000);
    expect(s[0]!.label).toBe('05:30:00');
    expect(s.every((x) => x.tMs % 1000 === 0)).toBe(true);
    const days = timeTicks(Date.UTC(2026, 11, 3, 20), Date.UTC(2026, 11, 4, 4));
    expect(days.some((x) => x.label.startsWith('12-04 '))).toBe(true);
  });
  it('a path breaks at nulls', () => {
    expect(linePath([[0, 0], [1.26, 2], null, [3, 4], [5, 6]])).toBe('M0,0L1.3,2M3,4L5,6');
  });
});

describe('timeChartSvg', () => {
  const panels: TimePanel[] = [
    { title: 'sent', unit: 'KB/s', series: [{ name: 'total', points: series(30, (i) => 100 + i * 10) }, { name: 'data', points: series(30, (i) => 90 + i * 10) }] },
    { title: 'lag <oldest> & "age"', unit: 's', series: [{ name: "it's <b>", points: series(30, (i) => (i === 12 ? null : i / 10)) }] },
  ];
  const svg = timeChartSvg({ title: 'group <g0> & "co"', subtitle: 'a & b', panels, gapMs: 30_000 });
  const doc = parseXml(svg);

  it('is one well-formed SVG document with the texts escaped', () => {
    expect(doc.name).toBe('svg');
    expect(doc.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
    const all = texts(doc);
    expect(all).toContain('group <g0> & "co"');
    expect(all).toContain('a & b');
    expect(all).toContain('lag <oldest> & "age" (s)');
    expect(all.some((t) => t.startsWith("it's <b>"))).toBe(true);
    expect(svg).not.toMatch(/<b>|<g0>|<oldest>/);
  });

  it('has ticks on both axes and a unit beside each panel', () => {
    const cls = (c: string) => findAll(doc, 'text').filter((t) => t.attrs.class === c).map((t) => t.text);
    expect(cls('ytick')).toEqual(expect.arrayContaining(['0', '100', '200', '300', '400']));
    expect(cls('xtick')).toEqual(['05:30', '05:31', '05:32', '05:33', '05:34']);
    expect(cls('unit')).toEqual(['KB/s', 's']);
    expect(cls('legend')).toEqual(['total (last 390)', 'data (last 380)', "it's <b> (last 2.9)"]);
  });

  it('draws a line per series, broken where a value is missing', () => {
    const paths = findAll(doc, 'path').filter((p) => p.attrs.class === 'series');
    expect(paths).toHaveLength(3);
    expect(paths[0]!.attrs.d!.match(/M/g)).toHaveLength(1);
    expect(paths[0]!.attrs.d!.match(/L/g)).toHaveLength(29);
    expect(paths[2]!.attrs.d!.match(/M/g)).toHaveLength(2);
  });

  it('breaks the line where records are missing (gapMs) and dots a lone point', () => {
    const pts = [...series(5, (i) => i), ...series(1, () => 7, 0).map((p) => ({ ...p, tMs: T0 + 200_000 }))];
    const d = parseXml(timeChartSvg({ title: 't', gapMs: 30_000, panels: [{ title: 'x', unit: 'u', series: [{ name: 's', points: pts }] }] }));
    const path = findAll(d, 'path').find((p) => p.attrs.class === 'series')!;
    expect(path.attrs.d!.match(/M/g)).toHaveLength(2);
    expect(findAll(d, 'circle').length).toBe(6); // few points: every one dotted, with a tooltip
    expect(findAll(d, 'circle')[5]!.children[0]!.text).toMatch(/^s at 2026-12-03 05:33:20 UTC: 7 u$/);
  });

  it('a single record sits mid-chart on a readable axis', () => {
    const d = parseXml(timeChartSvg({ title: 't', panels: [{ title: 'x', unit: 'u', series: [{ name: 's', points: [{ tMs: T0, value: 5 }] }] }] }));
    expect(findAll(d, 'circle')).toHaveLength(1);
    expect(findAll(d, 'text').filter((t) => t.attrs.class === 'xtick').length).toBeGreaterThan(2);
  });

  it('without a single value it says so instead of drawing empty axes', () => {
    for (const ps of [[], [{ title: 'x', unit: 'u', series: [] }], [{ title: 'x', unit: 'u', series: [{ name: 's', points: series(3, () => null) }] }]] as TimePanel[][]) {
      const d = parseXml(timeChartSvg({ title: 'group g0', panels: ps, emptyMessage: 'no performance records <since> 10m' }));
      expect(texts(d)).toContain('no performance records <since> 10m');
      expect(findAll(d, 'path')).toHaveLength(0);
      expect(findAll(d, 'text').filter((t) => t.attrs.class === 'ytick')).toHaveLength(0);
    }
  });

  it('a panel without values among others says "no data"', () => {
    const d = parseXml(timeChartSvg({ title: 't', panels: [panels[0]!, { title: 'empty', unit: 'u', series: [{ name: 's', points: [] }] }] }));
    expect(findAll(d, 'text').filter((t) => t.attrs.class === 'empty').map((t) => t.text)).toEqual(['no data']);
  });
});

describe('the test XML parser refuses what is not well-formed', () => {
  it.each([
    ['<svg><g></svg>', /closes <g>/],
    ['<svg><text>a < b</text></svg>', /bad tag/],
    ['<svg><text>a & b</text></svg>', /bare &/],
    ['<svg a="1" a="2"/>', /twice/],
    ['<svg a=1/>', /not quoted/],
    ['<svg/><svg/>', /second root/],
  ])('%s', (x, re) => expect(() => parseXml(x)).toThrow(re));
});
