/**
 * `sanbox group perf G [--since T] [--svg FILE] [--png FILE] [--json]` (the source's qdsperftool):
 * the group's performance records from its primary array (GET /v1/groups/:ref/perf), as a table,
 * as JSON, or plotted into one chart (src/plot), as SVG or as PNG (through rsvg-convert).
 *
 * --since is a duration back from now (10m, 30s, 2h, 1d; a bare number is seconds), passed on as a
 * duration so that "now" is the array's clock, the one the records carry; or an ISO time, passed
 * on as ms since the epoch. Every argument is checked before anything is sent (exit 2).
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PngRenderError, svgToPng, timeChartSvg } from '../plot/index.js';
import { CliError, EXIT, printJson, usage } from './common.js';
import { call, locateGroup } from './group-verbs.js';
import { perfChart, perfTable } from './group-perf-render.js';
import { parseDuration } from './lab.js';
import type { TargetFlags } from './target.js';

export interface GroupPerfFlags extends TargetFlags {
  since?: string;
  svg?: string;
  png?: string;
}

/** What the API's `since` gets: `600000ms` for a duration, ms since the epoch for a time. */
export function sinceArg(text: string): string | number {
  const t = text.trim();
  const days = /^(\d+(?:\.\d+)?)\s*d$/i.exec(t); // the lab's durations stop at hours; a record file can span days
  const ms = days ? Math.round(Number(days[1]) * 86_400_000) : parseDuration(t);
  if (ms !== undefined && ms > 0) return `${ms}ms`;
  if (/^\d{4}-\d{2}-\d{2}([T ]|$)/.test(t) && Number.isFinite(Date.parse(t))) return Date.parse(t);
  throw usage(`--since must be a duration like 10m, 30s, 2h or 1d (a bare number is seconds) or an ISO time like 2026-12-03T05:30:00Z, not ${JSON.stringify(text)}`);
}

function fileArg(option: '--svg' | '--png', text: string): string {
  const file = resolve(text);
  if (!text.trim()) throw usage(`${option} needs a file name`);
  if (existsSync(file) && statSync(file).isDirectory()) throw usage(`${option} ${text} is a directory; give a file name`);
  if (!existsSync(dirname(file))) throw usage(`${option} ${text}: directory ${dirname(file)} does not exist`);
  return file;
}

function writeChart(file: string, content: string | Buffer): void {
  try {
    writeFileSync(file, content);
  } catch (e) {
    throw new CliError(EXIT.ERROR, 'write-failed', `cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export async function groupPerfCommand(ref: string, f: GroupPerfFlags): Promise<number> {
  const since = f.since !== undefined ? sinceArg(f.since) : undefined;
  const svg = f.svg !== undefined ? fileArg('--svg', f.svg) : undefined;
  const png = f.png !== undefined ? fileArg('--png', f.png) : undefined;
  const t = await locateGroup(ref, f);
  const r = await call(() => t.client.groupPerf(ref, since !== undefined ? { since } : {}));
  const chart = svg !== undefined || png !== undefined ? timeChartSvg(perfChart(r, t.array)) : undefined;
  if (png !== undefined) writeChart(png, renderPng(chart!));
  if (svg !== undefined) writeChart(svg, chart!);
  const files = [svg, png].filter((x) => x !== undefined);
  if (f.json) printJson({ ...r, ...(svg !== undefined ? { svg } : {}), ...(png !== undefined ? { png } : {}) });
  else if (files.length) process.stdout.write(`wrote ${files.join(' and ')}: ${r.records.length} performance record${r.records.length === 1 ? '' : 's'} of group ${r.group}${t.array ? ` on ${t.array}` : ''} plotted\n`);
  else process.stdout.write(perfTable(r, t.array) + '\n');
  return EXIT.OK;
}

function renderPng(svg: string): Buffer {
  try {
    return svgToPng(svg);
  } catch (e) {
    if (e instanceof PngRenderError) throw new CliError(EXIT.ERROR, e.code, `--png: ${e.message}`);
    throw e;
  }
}
