/**
 * The run's report as one self-contained HTML page (report.html next to report.json): a header
 * (verdict, seed, RPO/RTO, the rerun and replay commands), one SVG timeline whose lanes share the
 * time axis (faults and steps, events per source, each group's backlog, each workload's latency
 * and acks), then the tables of checks, steps, the fault trace and the workloads.
 *
 * No external assets and no script: tooltips are SVG <title> elements. Every string of the
 * report is user text and goes through escapeHtml.
 */
import type { EventRecord, ScenarioReport, StepRecord, TraceFault } from './types.js';
import {
  backlogChart, bytesScale, clip, escapeHtml, fmtBytes, fmtSeconds, linearScale, logScale, P50, P99, packRows, px, svgText, textWidth,
  timeAxisTicks, tip, windowsOf, workloadChart, xAt, type Frame,
} from './svg.js';

export { escapeHtml } from './svg.js';

const WIDTH = 1360;
const LEFT = 200;
const RIGHT = 76;
const AXIS = 26;
const ROW = 18;

/** A horizontal band of the timeline: its label in the left gutter, its drawing at `top`. */
interface Lane {
  label: string;
  sub: Array<{ text: string; color?: string }>;
  height: number;
  draw: (top: number) => string;
}

export function renderReportHtml(report: ScenarioReport): string {
  const title = `${report.scenario} seed ${report.seed}: ${report.ok ? 'PASS' : 'FAIL'}`;
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    `<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title><style>${CSS}</style></head>`,
    '<body>',
    renderHeader(report),
    '<section><h2>Timeline</h2>',
    renderTimeline(report),
    '</section>',
    section('Checks', checksTable(report)),
    section('Steps', stepsTable(report)),
    section('Fault trace', traceTable(report)),
    section('Workloads', workloadsTable(report)),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- header

function renderHeader(r: ScenarioReport): string {
  const verdict = r.ok ? '<span class="badge pass">PASS</span>' : '<span class="badge fail">FAIL</span>';
  const desc = r.spec?.description ? `<p class="desc">${escapeHtml(r.spec.description)}</p>` : '';
  const failure = r.failure ? `<p class="failure">${escapeHtml(r.failure)}</p>` : '';
  const facts: Array<[string, string]> = [
    ['seed', String(r.seed)],
    ['duration', fmtSeconds(r.durationMs)],
    ['RPO measured', r.rpoSeconds === null || r.rpoSeconds === undefined ? 'not measured' : `${r.rpoSeconds} s`],
    ['RTO measured', r.rtoSeconds === null || r.rtoSeconds === undefined ? 'not measured' : `${r.rtoSeconds} s`],
    ['started', r.startedAt],
    ['lab', r.lab],
    ['run directory', r.runDir],
    ['faults / events', `${list(r.trace).length} / ${list(r.events).length}`],
  ];
  const dl = facts.map(([k, v]) => `<div><dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd></div>`).join('');
  const cmd = (k: string, v: string) => `<div class="cmd"><span>${escapeHtml(k)}</span><pre><code>${escapeHtml(v)}</code></pre></div>`;
  return `<header><h1>${escapeHtml(r.scenario)} ${verdict}</h1>${desc}${failure}<dl class="facts">${dl}</dl>${cmd('rerun', r.rerun)}${cmd('replay', r.replay)}</header>`;
}

function section(title: string, body: string): string {
  return `<section><h2>${escapeHtml(title)}</h2>${body}</section>`;
}

/** An array of the report, or none (a report from elsewhere may lack one). */
function list<T>(a: T[] | null | undefined): T[] {
  return Array.isArray(a) ? a : [];
}

// ---------------------------------------------------------------- timeline

/** The time span drawn: the run's duration, or further if something was recorded after it. */
function frameOf(r: ScenarioReport): Frame {
  const times = [
    r.durationMs,
    ...list(r.trace).map((t) => t.atMs + t.durationMs),
    ...list(r.steps).map((s) => s.endMs),
    ...list(r.events).map((e) => e.tMs),
    ...list(r.backlog).flatMap((b) => list(b.samples).map((s) => s.tMs)),
    ...list(r.workloads).flatMap((w) => list(w.samples).map((s) => s.tMs)),
  ];
  const spanMs = times.reduce((m, t) => (Number.isFinite(t) && t > m ? t : m), 1000);
  return { left: LEFT, width: WIDTH - LEFT - RIGHT, spanMs };
}

function renderTimeline(r: ScenarioReport): string {
  const f = frameOf(r);
  const lanes = [faultLane(r, f), stepLane(r, f), ...eventLanes(r, f), ...backlogLanes(r, f), ...workloadLanes(r, f)];
  let y = AXIS;
  const body: string[] = [];
  lanes.forEach((lane, i) => {
    body.push(laneFrame(lane, y, i), `<g class="lane">${lane.draw(y)}</g>`);
    y += lane.height;
  });
  const height = y + AXIS;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" font-size="11">`,
    faultShading(r, f, AXIS, y),
    timeGrid(f, AXIS, y),
    ...body,
    `<line x1="${LEFT}" x2="${LEFT}" y1="${AXIS}" y2="${y}" class="edge"/>`,
    '</svg>',
  ].join('\n');
  return `<div class="chart">${svg}</div>${legend(r)}`;
}

/** The lane's background, separator and label lines in the gutter. */
function laneFrame(lane: Lane, top: number, i: number): string {
  const label = svgText(8, top + 14, clip(lane.label, 28), 'class="lane-label"');
  const subs = lane.sub.map((s, k) => svgText(8, top + 28 + k * 12, clip(s.text, 30), `class="lane-sub"${s.color ? ` style="fill:${escapeHtml(s.color)}"` : ''}`));
  return `<g>${tip(lane.label)}<rect x="0" y="${px(top)}" width="${WIDTH}" height="${px(lane.height)}" class="${i % 2 ? 'band odd' : 'band'}"/><line x1="0" x2="${WIDTH}" y1="${px(top)}" y2="${px(top)}" class="sep"/>${label}${subs.join('')}</g>`;
}

/** Vertical grid lines and the time labels above and below the lanes. */
function timeGrid(f: Frame, top: number, bottom: number): string {
  const ticks = timeAxisTicks(f.spanMs);
  const parts = ticks.map(({ tMs, label }) => {
    const x = xAt(f, tMs);
    return `<line x1="${px(x)}" x2="${px(x)}" y1="${px(top)}" y2="${px(bottom)}" class="grid"/>${svgText(x, top - 8, label, 'text-anchor="middle" class="axis"')}${svgText(x, bottom + 16, label, 'text-anchor="middle" class="axis"')}`;
  });
  return `<g>${parts.join('')}${svgText(LEFT - 26, top - 8, 'time', 'text-anchor="end" class="axis"')}</g>`;
}

/** Every fault's span, faintly, behind all lanes: what the other lanes did during it. */
function faultShading(r: ScenarioReport, f: Frame, top: number, bottom: number): string {
  const rects = list(r.trace).map((t) => {
    const x0 = xAt(f, t.atMs);
    const w = Math.max(xAt(f, t.atMs + t.durationMs) - x0, 1);
    return `<rect x="${px(x0)}" y="${px(top)}" width="${px(w)}" height="${px(bottom - top)}" class="shade"/>`;
  });
  return `<g>${rects.join('')}</g>`;
}

function emptyLane(label: string, text: string): Lane {
  return { label, sub: [], height: 24, draw: (top) => svgText(LEFT + 6, top + 16, text, 'class="none"') };
}

/** Nemesis faults as bars from injection to undo, packed in rows so their labels never overlap. */
function faultLane(r: ScenarioReport, f: Frame): Lane {
  const trace = list(r.trace);
  if (!trace.length) return emptyLane('faults', 'no faults injected');
  const failures = nemesisFailures(list(r.steps));
  const items = trace.map((t) => {
    const x0 = xAt(f, t.atMs);
    const x1 = Math.max(xAt(f, t.atMs + t.durationMs), x0 + 2);
    const text = clip(`#${t.index} ${t.label}`, 52);
    return { t, x0, x1, text, at: placeLabel(x0, x0, x1, text) };
  });
  const { rows, count } = packRows(items.map((i) => ({ x0: i.at.from, x1: i.at.to })));
  const draw = (top: number) =>
    items
      .map((it, k) => {
        const y = top + 4 + rows[k]! * ROW;
        const failed = failures.get(it.t.index);
        const title = faultTitle(it.t, failed);
        return `<g>${tip(title)}<rect x="${px(it.x0)}" y="${px(y)}" width="${px(it.x1 - it.x0)}" height="14" rx="2" class="${failed ? 'fault failed' : 'fault'}"/>${svgText(it.at.x, y + 11, it.text, `class="bar-label" text-anchor="${it.at.anchor}"`)}</g>`;
      })
      .join('');
  return { label: 'faults', sub: [{ text: `${trace.length} from the nemesis` }], height: Math.max(count * ROW + 8, 44), draw };
}

/**
 * Where a bar's label goes: from `after` + 3 rightwards, or, if it would run off the chart, ending
 * left of the bar. `from`..`to` is what the bar and its label cover (for packing rows).
 */
function placeLabel(after: number, x0: number, x1: number, text: string): { x: number; anchor: 'start' | 'end'; from: number; to: number } {
  const w = textWidth(text);
  if (after + 3 + w <= WIDTH - 4) return { x: after + 3, anchor: 'start', from: x0 - 5, to: Math.max(x1, after + 3 + w) };
  return { x: x0 - 8, anchor: 'end', from: x0 - 8 - w, to: Math.max(x1, x0 + 5) };
}

/** The errors of nemesis injections/undos that failed, by fault index. */
function nemesisFailures(steps: StepRecord[]): Map<number, string> {
  const out = new Map<number, string>();
  for (const s of steps) {
    if (s.source !== 'nemesis' || s.ok) continue;
    const msg = `${s.phase ?? 'action'} failed${s.error ? `: ${s.error.code} ${s.error.message}` : ''}`;
    out.set(s.index, out.has(s.index) ? `${out.get(s.index)}; ${msg}` : msg);
  }
  return out;
}

function faultTitle(t: TraceFault, failed: string | undefined): string {
  return [
    `fault #${t.index} (${t.nemesis}): ${t.label}`,
    `${fmtSeconds(t.atMs)} → ${fmtSeconds(t.atMs + t.durationMs)} (${t.durationMs} ms)`,
    `inject ${t.inject?.kind ?? '?'}, undo ${t.undo?.kind ?? '?'}`,
    ...(failed ? [failed] : []),
  ].join('\n');
}

/** Timeline steps: a bar from start to end, a diamond if it took no visible time; failed ones red. */
function stepLane(r: ScenarioReport, f: Frame): Lane {
  const steps = list(r.steps).filter((s) => s.source === 'step');
  if (!steps.length) return emptyLane('steps', 'no timeline steps');
  const items = steps.map((s) => {
    const x0 = xAt(f, s.startMs);
    const x1 = xAt(f, s.endMs);
    const text = clip(s.name ? `${s.name}: ${s.label}` : s.label, 44);
    return { s, x0, x1, text, at: placeLabel(Math.max(x1, x0 + 5), x0, x1, text) };
  });
  const { rows, count } = packRows(items.map((i) => ({ x0: i.at.from, x1: i.at.to })));
  const draw = (top: number) =>
    items
      .map((it, k) => {
        const y = top + 4 + rows[k]! * ROW;
        const cls = it.s.ok ? 'step' : 'step failed';
        const mark = it.x1 - it.x0 < 4
          ? `<path d="M${px(it.x0)},${px(y)}l5,7l-5,7l-5,-7z" class="${cls}"/>`
          : `<rect x="${px(it.x0)}" y="${px(y + 2)}" width="${px(it.x1 - it.x0)}" height="10" rx="2" class="${cls}"/>`;
        return `<g>${tip(stepTitle(it.s))}${mark}${svgText(it.at.x, y + 11, it.text, `class="${it.s.ok ? 'bar-label' : 'bar-label bad'}" text-anchor="${it.at.anchor}"`)}</g>`;
      })
      .join('');
  return { label: 'steps', sub: [{ text: `${steps.length} on the timeline` }], height: Math.max(count * ROW + 8, 44), draw };
}

function stepTitle(s: StepRecord): string {
  return [
    `step ${s.index}${s.name ? ` ${s.name}` : ''}: ${s.label}`,
    `${fmtSeconds(s.startMs)} → ${fmtSeconds(s.endMs)}${s.plannedMs !== null && s.plannedMs !== undefined ? ` (planned ${fmtSeconds(s.plannedMs)})` : ''}`,
    s.command,
    s.ok ? 'ok' : `FAILED${s.error ? `: ${s.error.code} ${s.error.message}` : ''}`,
  ].join('\n');
}

// ---- events

const FAMILY_COLORS: Record<string, string> = {
  array: '#c0392b', sp: '#8e44ad', mirror: '#1f6fb2', group: '#1e8449', link: '#d35400', lun: '#5d6d7e',
  cache: '#a04000', battery: '#9a7d0a', power: '#9a7d0a', cmi: '#6c3483', lab: '#283747', fault: '#e74c3c',
  metadata: '#7b241c', connection: '#7f8c8d',
};
const STATE_FAMILIES = new Set(['array', 'sp', 'mirror', 'group', 'link', 'lun', 'cmi', 'battery', 'power', 'lab', 'fault', 'metadata']);
const ROUTINE = /(metrics|progress|charge|throttle-log|attributes|settings)$/;
const ALARM = /(crash|fracture|fail|cut|down|split|error|offline|gap|stall|lost|limit)/;

/** How an event type is drawn: colored by family if it looks like a state change, grey otherwise. */
function eventStyle(type: string): { color: string; h: number; alarm: boolean } {
  const family = type.split('.')[0] ?? '';
  const alarm = ALARM.test(type);
  const state = alarm || (STATE_FAMILIES.has(family) && !ROUTINE.test(type));
  if (!state) return { color: '#b3bac1', h: 7, alarm: false };
  return { color: FAMILY_COLORS[family] ?? '#34495e', h: alarm ? 16 : 12, alarm };
}

/** One lane per event source (arrays, links, then the lab), a tick per event. */
function eventLanes(r: ScenarioReport, f: Frame): Lane[] {
  const events = list(r.events);
  if (!events.length) return [emptyLane('events', 'no events recorded')];
  const bySource = new Map<string, EventRecord[]>();
  for (const e of events) {
    const evs = bySource.get(e.source);
    if (evs) evs.push(e);
    else bySource.set(e.source, [e]);
  }
  const sources = [...bySource.keys()].sort((a, b) => Number(a === 'lab') - Number(b === 'lab'));
  return sources.map((source) => {
    const evs = bySource.get(source)!;
    return { label: source, sub: [{ text: `${evs.length} events` }], height: 42, draw: (top: number) => evs.map((e) => eventTick(e, f, top)).join('') };
  });
}

function eventTick(e: EventRecord, f: Frame, top: number): string {
  const x = xAt(f, e.tMs);
  const st = eventStyle(e.type);
  const base = top + 30;
  let data = '';
  try {
    data = clip(JSON.stringify(e.data ?? {}), 300);
  } catch {
    data = '(data not serializable)';
  }
  const title = `${fmtSeconds(e.tMs)} ${e.source}: ${e.type}\n${data}`;
  const head = st.alarm ? `<circle cx="${px(x)}" cy="${px(base - st.h)}" r="2.5" fill="${st.color}"/>` : '';
  return `<g class="ev">${tip(title)}<line x1="${px(x)}" x2="${px(x)}" y1="${px(base - st.h)}" y2="${px(base)}" stroke="${st.color}" stroke-width="${st.alarm ? 2 : 1.5}"/>${head}<rect x="${px(x - 3)}" y="${px(top + 8)}" width="6" height="26" class="hit"/></g>`;
}

// ---- charts (drawn by svg.ts)

/** Each group's backlog bytes as a filled step line; entries in the tooltips. */
function backlogLanes(r: ScenarioReport, f: Frame): Lane[] {
  return list(r.backlog).map((b) => {
    const samples = list(b.samples);
    const label = `backlog ${b.group}`;
    if (!samples.length) return emptyLane(label, `no backlog samples (${b.array})`);
    const max = Math.max(...samples.map((s) => s.bytes));
    return {
      label,
      sub: [{ text: `on ${b.array}` }, { text: `bytes, peak ${fmtBytes(max)}` }],
      height: 84,
      draw: (top: number) => backlogChart(samples, f, bytesScale(max, top + 10, top + 74)),
    };
  });
}

/** Per workload with samples: write latency p50/p99 (left axis), acks/s (right), no-ack gaps red. */
function workloadLanes(r: ScenarioReport, f: Frame): Lane[] {
  return list(r.workloads)
    .filter((w) => list(w.samples).length > 0)
    .map((w) => {
      const wins = windowsOf(w);
      const lat = wins.flatMap((x) => [x.s.latencyP50Ms, x.s.latencyP99Ms]).filter((v): v is number => v !== null && v > 0 && Number.isFinite(v));
      const lo = lat.length ? Math.min(...lat) : 0;
      const hi = lat.length ? Math.max(...lat) : 1;
      const log = lat.length > 0 && hi / lo >= 20;
      const gaps = wins.filter((x) => x.s.windowAcks === 0).length;
      return {
        label: `workload ${w.name}`,
        sub: [
          { text: `write latency ms (${log ? 'log' : 'linear'})` },
          { text: '━ p50', color: P50 },
          { text: '━ p99', color: P99 },
          { text: '▮ acks/s (right axis)', color: '#8c99a6' },
          { text: `▮ no acks: ${gaps} window${gaps === 1 ? '' : 's'}`, color: '#c0392b' },
        ],
        height: 150,
        draw: (top: number) => {
          const [yTop, yBottom] = [top + 12, top + 136];
          const latScale = log ? logScale(lo, hi, yTop, yBottom) : linearScale(hi, yTop, yBottom, 4);
          const ackScale = linearScale(Math.max(...wins.map((x) => x.rate)), yTop, yBottom, 4);
          return workloadChart(w, wins, f, latScale, ackScale, top);
        },
      };
    });
}

/** What the colors mean: the event families present, and the marks. */
function legend(r: ScenarioReport): string {
  const families = [...new Set(list(r.events).map((e) => e.type.split('.')[0] ?? ''))].filter((fam) => FAMILY_COLORS[fam]).sort();
  const sw = (color: string, text: string, cls = 'sw') => `<span class="item"><span class="${cls}" style="background:${color}"></span>${escapeHtml(text)}</span>`;
  return `<div class="legend">${[
    sw('#f8c471', 'fault (injected → undone)'),
    sw('#e74c3c', 'failed fault / step'),
    sw('#5b8fd0', 'timeline step'),
    sw('rgba(231,76,60,.35)', 'no writes acknowledged'),
    ...families.map((fam) => sw(FAMILY_COLORS[fam]!, `${fam}.*`, 'sw tick')),
    sw('#b3bac1', 'other events', 'sw tick'),
  ].join('')}</div>`;
}

// ---------------------------------------------------------------- tables

/** A table of pre-escaped cells, or a line saying there is nothing. */
function table(headers: string[], rows: string[][], empty: string, cls = ''): string {
  if (!rows.length) return `<p class="none">${escapeHtml(empty)}</p>`;
  const head = `<tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const body = rows.map((cells) => `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}><thead>${head}</thead><tbody>\n${body}\n</tbody></table>`;
}

const e = escapeHtml;
const code = (s: string | null | undefined) => (s ? `<code>${e(s)}</code>` : '');
const status = (ok: boolean, skipped = false) =>
  skipped ? '<span class="st skip">skipped</span>' : ok ? '<span class="st ok">ok</span>' : '<span class="st fail">FAIL</span>';

function checksTable(r: ScenarioReport): string {
  const rows = list(r.checks).map((c) => {
    const measured = [
      c.rpoSeconds !== undefined && c.rpoSeconds !== null ? `RPO ${c.rpoSeconds} s` : '',
      c.rtoSeconds !== undefined && c.rtoSeconds !== null ? `RTO ${c.rtoSeconds} s` : '',
    ].filter(Boolean).join(', ');
    return [String(c.index), status(c.ok, c.skipped), e(c.kind), e(c.label), e(c.summary), e(measured)];
  });
  return table(['#', 'result', 'kind', 'check', 'summary', 'measured'], rows, 'no checks');
}

function stepsTable(r: ScenarioReport): string {
  const rows = list(r.steps).map((s) => [
    e(fmtSeconds(s.startMs)),
    e(s.plannedMs === null || s.plannedMs === undefined ? '' : fmtSeconds(s.plannedMs)),
    e(`${Math.round(s.endMs - s.startMs)} ms`),
    e(s.source === 'nemesis' ? `fault #${s.index} ${s.phase ?? ''}` : `step ${s.index}${s.name ? ` ${s.name}` : ''}`),
    e(s.kind),
    e(s.label),
    code(s.command),
    status(s.ok),
    s.error ? `<span class="bad">${e(s.error.code)}</span> ${e(s.error.message)}` : '',
  ]);
  return table(['time', 'planned', 'took', 'what', 'kind', 'label', 'command', 'ok', 'error'], rows, 'no steps ran', 'steps');
}

function traceTable(r: ScenarioReport): string {
  const failures = nemesisFailures(list(r.steps));
  const rows = list(r.trace).map((t) => [
    String(t.index),
    e(t.nemesis),
    e(fmtSeconds(t.atMs)),
    e(fmtSeconds(t.atMs + t.durationMs)),
    e(`${t.durationMs} ms`),
    e(t.label),
    e(`${t.inject?.kind ?? '?'} / ${t.undo?.kind ?? '?'}`),
    failures.has(t.index) ? `<span class="bad">${e(failures.get(t.index))}</span>` : '',
  ]);
  return table(['#', 'nemesis', 'injected', 'undone', 'for', 'fault', 'inject / undo', 'problem'], rows, 'no faults in the trace');
}

function workloadsTable(r: ScenarioReport): string {
  const rows = list(r.workloads).map((w) => {
    const exit = w.exitCode !== null && w.exitCode !== undefined ? `exit ${w.exitCode}` : w.signal ? `signal ${w.signal}` : 'still running';
    const last = list(w.samples).at(-1);
    const tail = list(w.stderrTail);
    return [
      e(w.name),
      e(w.kind),
      code(w.command),
      `<span class="${w.exitCode === 0 ? '' : 'bad'}">${e(exit)}</span>`,
      e(fmtSeconds(w.startMs)),
      e(w.endMs === null || w.endMs === undefined ? '–' : fmtSeconds(w.endMs)),
      e(last ? `${last.acked} acked of ${last.issued} issued` : 'no samples'),
      tail.length ? `<details><summary>${tail.length} lines</summary><pre>${e(tail.join('\n'))}</pre></details>` : '',
    ];
  });
  return table(['workload', 'kind', 'command', 'exit', 'start', 'end', 'writes', 'stderr'], rows, 'no workloads');
}

// ---------------------------------------------------------------- style

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1c2833;margin:0 auto;padding:16px 20px 40px;max-width:1400px;background:#fff}
h1{font-size:22px;margin:4px 0 6px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d5d8dc;padding-bottom:3px}
.badge{display:inline-block;font-size:14px;padding:2px 10px;border-radius:4px;color:#fff;vertical-align:middle;margin-left:8px}
.badge.pass{background:#1e8449}.badge.fail{background:#c0392b}
.desc{margin:4px 0;color:#444;white-space:pre-wrap}.failure{margin:6px 0;padding:6px 10px;background:#fdedec;border-left:4px solid #c0392b;white-space:pre-wrap}
.facts{display:flex;flex-wrap:wrap;gap:6px 28px;margin:10px 0}.facts div{min-width:110px}.facts dt{font-size:11px;color:#707b7c;text-transform:uppercase;letter-spacing:.04em}.facts dd{margin:0;font-variant-numeric:tabular-nums}
.cmd{display:flex;align-items:baseline;gap:10px;margin:4px 0}.cmd span{width:52px;color:#707b7c;font-size:12px}
.cmd pre{margin:0;flex:1;background:#f4f6f7;border:1px solid #e5e8e8;padding:5px 8px;border-radius:3px;overflow-x:auto;user-select:all}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
td code{white-space:pre-wrap;word-break:break-all}
.chart{overflow-x:auto;border:1px solid #e5e8e8}.timeline{display:block;max-width:100%;height:auto}
.timeline text{font-family:system-ui,sans-serif;fill:#1c2833}
.timeline .axis{fill:#707b7c;font-size:10px}.timeline .lane-label{font-weight:600}.timeline .lane-sub{fill:#707b7c;font-size:10px}
.timeline .none{fill:#99a3a4;font-style:italic}.timeline .bar-label{font-size:10.5px}.timeline .bad{fill:#c0392b;font-weight:600}
.band{fill:#fff}.band.odd{fill:#f8f9f9}.sep{stroke:#d5d8dc}.edge{stroke:#aab7b8}.grid{stroke:#eaeded}.hgrid{stroke:#eaeded;stroke-dasharray:2 3}
.shade{fill:#f5b041;opacity:.09}
.fault{fill:#f8c471;stroke:#ca6f1e}.fault.failed{stroke:#e74c3c;stroke-width:2;stroke-dasharray:4 2}
.step{fill:#5b8fd0;stroke:#1f4e8c}.step.failed{fill:#e74c3c;stroke:#922b21}
.hit{fill:transparent}.hit:hover{fill:rgba(40,55,71,.08)}
.backlog{fill:none;stroke:#1e8449;stroke-width:1.5}.backlog-area{fill:#1e8449;opacity:.12}
.acks{fill:#d6dbdf}.lat{fill:none;stroke-width:1.6}.running{stroke:#aab7b8;stroke-width:3}
.gap-veil{fill:#e74c3c;opacity:.16}.gap-strip{fill:#c0392b}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;margin:6px 0;font-size:12px;color:#566573}.legend .item{display:inline-flex;align-items:center;gap:5px}
.sw{display:inline-block;width:14px;height:10px;border-radius:2px}.sw.tick{width:3px;height:12px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border:1px solid #e5e8e8;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f4f6f7;font-weight:600}tbody tr:nth-child(even){background:#fbfcfc}
.st{font-weight:600}.st.ok{color:#1e8449}.st.fail{color:#fff;background:#c0392b;padding:0 5px;border-radius:3px}.st.skip{color:#9a7d0a}
.bad{color:#c0392b}p.none{color:#99a3a4;font-style:italic}
details pre{white-space:pre-wrap;margin:4px 0;max-width:520px}
`;
