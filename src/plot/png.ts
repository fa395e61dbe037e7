/**
 * SVG to PNG through librsvg's `rsvg-convert` (Debian: librsvg2-bin): the charts are plain SVG,
 * so a raster copy needs no browser and no npm dependency. White background (a PNG viewer shows
 * transparency as black or a checkerboard).
 */
import { spawnSync } from 'node:child_process';

export const RSVG_CONVERT = 'rsvg-convert';

export class PngRenderError extends Error {
  constructor(
    readonly code: 'missing-tool' | 'render-failed',
    message: string,
  ) {
    super(message);
    this.name = 'PngRenderError';
  }
}

/** The PNG of `svg`; throws PngRenderError naming the package when rsvg-convert is missing. */
export function svgToPng(svg: string, opts: { tool?: string; timeoutMs?: number } = {}): Buffer {
  const tool = opts.tool ?? RSVG_CONVERT;
  const r = spawnSync(tool, ['--format=png', '--background-color=white'], { input: svg, maxBuffer: 256 << 20, timeout: opts.timeoutMs ?? 30_000 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new PngRenderError('missing-tool', `${tool} is not installed (Debian: apt-get install librsvg2-bin); --svg needs nothing`);
    throw new PngRenderError('render-failed', `${tool}: ${r.error.message}`);
  }
  if (r.status !== 0) throw new PngRenderError('render-failed', `${tool} exited with ${r.status ?? r.signal}: ${r.stderr.toString().trim().slice(0, 300)}`);
  const png = r.stdout;
  if (png.length < 8 || png.readUInt32BE(0) !== 0x89504e47) throw new PngRenderError('render-failed', `${tool} did not write a PNG`);
  return png;
}
