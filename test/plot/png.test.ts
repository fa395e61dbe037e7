// src/plot/png.ts: a chart's PNG through the real rsvg-convert (CI installs librsvg2-bin), its size
// as the SVG says; a missing tool and an SVG it cannot read are errors that name the cause.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PngRenderError, svgToPng, timeChartSvg } from '../../src/plot/index.js';

const have = ['/usr/bin/rsvg-convert', '/usr/local/bin/rsvg-convert'].some((p) => existsSync(p));
if (!have) console.warn('png test skipped: rsvg-convert missing (apt-get install librsvg2-bin)');

/** Width and height from the PNG's IHDR chunk. */
const pngSize = (png: Buffer) => ({ width: png.readUInt32BE(16), height: png.readUInt32BE(20) });

describe('svgToPng', () => {
  it.skipIf(!have)('renders a time chart at the size the SVG gives, on white', () => {
    const t0 = Date.UTC(2026, 11, 3, 8, 0, 0);
    const svg = timeChartSvg({ title: 'a chart', panels: [{ title: 'values', unit: 'n', series: [{ name: 'x', points: Array.from({ length: 20 }, (_, i) => ({ tMs: t0 + i * 1000, value: i * i })) }] }] });
    const width = Number(/<svg[^>]* width="(\d+)"/.exec(svg)![1]);
    const height = Number(/<svg[^>]* height="(\d+)"/.exec(svg)![1]);
    const png = svgToPng(svg);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(pngSize(png)).toEqual({ width, height });
  });

  it.skipIf(!have)('an SVG it cannot read is render-failed, with what the tool said', () => {
    expect(() => svgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><g></svg>')).toThrow(expect.objectContaining({ code: 'render-failed' }));
  });

  it('a missing tool is missing-tool, naming the Debian package', () => {
    let err: unknown;
    try {
      svgToPng('<svg/>', { tool: 'no-such-rsvg-convert-here' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PngRenderError);
    expect(err).toMatchObject({ code: 'missing-tool', message: expect.stringContaining('librsvg2-bin') });
  });
});
