// The dashboard page: plain JavaScript, no build step, run as served. Everything it reads and
// every fault it injects goes through its own server (src/dashboard): /api/topology,
// /api/series, /api/events and the allow-listed proxy /api/arrays/..., /api/links/...
// Data from the lab is put in the page as text (textContent), never as markup.
'use strict';

const TOPOLOGY_POLL_MS = 5000;
const SERIES_POLL_MS = 1000;
const MAX_EVENTS_SHOWN = 300;
const HISTORY_MS = 5 * 60_000;
const X_MIN_S = 30;

const state = {
  topology: undefined,
  events: [],
  filter: [],
  /** time (s) -> point, per LUN key "array/lun" and per group key */
  lunSeries: new Map(),
  groupSeries: new Map(),
  resyncs: new Map(),
  lastPointMs: 0,
  charts: new Map(),
  refreshTimer: undefined,
  /** When the next topology read is due (ms); Infinity while one runs. */
  refreshDue: undefined,
  changedDuringRead: false,
  /** An array that is down answers nothing: its LUNs as last seen, so names stay on the page. */
  knownLuns: new Map(),
};

// ---------- topology ----------

/**
 * Reads the topology again within `ms`. A throttle, not a debounce: a steady run of events
 * (sessions opening and closing under a workload) must not keep postponing the read.
 */
function scheduleRefresh(ms) {
  const due = Date.now() + ms;
  if (state.refreshDue !== undefined && state.refreshDue <= due) return;
  clearTimeout(state.refreshTimer);
  state.refreshDue = due;
  state.refreshTimer = setTimeout(refreshTopology, ms);
}

/** After a change: a read soon, or right after the one running (it may have missed the change). */
function refreshSoon(ms) {
  if (state.refreshDue === Infinity) state.changedDuringRead = true;
  else scheduleRefresh(ms);
}

async function refreshTopology() {
  clearTimeout(state.refreshTimer);
  state.refreshDue = Infinity; // one read at a time: events during it ask for the next one below
  try {
    const t = await getJson('/api/topology');
    state.topology = t;
    render(t);
    document.getElementById('updated').textContent = `updated ${t.time.slice(11, 19)} UTC`;
  } catch (e) {
    say(`cannot read the lab: ${e.message}`, true);
  }
  const again = state.changedDuringRead ? 150 : TOPOLOGY_POLL_MS;
  state.changedDuringRead = false;
  state.refreshDue = undefined;
  scheduleRefresh(again);
}

function render(t) {
  for (const a of t.arrays) {
    if (a.reachable) state.knownLuns.set(a.name, a.luns);
    else if (!a.luns.length) a.luns = state.knownLuns.get(a.name) || [];
  }
  document.getElementById('lab-name').textContent = `lab ${t.lab}`;
  const ls = document.getElementById('lab-state');
  ls.textContent = t.state;
  ls.className = `badge ${stateClass(t.state)}`;
  document.title = `sanbox lab ${t.lab}`;
  drawTopology(t);
  drawControls(t);
  drawMirrors(t);
  drawHeatmaps(t);
  drawMonitor(t);
  drawGroups(t);
  ensureLunCharts(t);
}

const BOX_W = 330;
const GAP_W = 300;
const PAD = 24;

function drawTopology(t) {
  const host = document.getElementById('topology');
  const order = [];
  for (const s of t.sites || []) for (const a of s.arrays) if (t.arrays.some((x) => x.name === a) && !order.includes(a)) order.push(a);
  for (const a of t.arrays) if (!order.includes(a.name)) order.push(a.name);
  const maxSps = Math.max(1, ...t.arrays.map((a) => a.sps.length || 1));
  const boxH = 70 + maxSps * 26 + 22;
  const width = PAD * 2 + order.length * BOX_W + Math.max(0, order.length - 1) * GAP_W;
  const farLinks = (t.links || []).filter((l) => Math.abs(order.indexOf(l.a) - order.indexOf(l.b)) !== 1);
  const height = PAD * 2 + 20 + boxH + farLinks.length * 34;
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'arrays and links' });
  const x0 = (name) => PAD + order.indexOf(name) * (BOX_W + GAP_W);
  const top = PAD + 20;

  // Links first, under the boxes.
  (t.links || []).forEach((l) => {
    const ia = order.indexOf(l.a);
    const ib = order.indexOf(l.b);
    if (ia < 0 || ib < 0) return;
    const [left, right] = ia < ib ? [l.a, l.b] : [l.b, l.a];
    const cut = l.state === 'cut';
    const colour = l.state === 'up' ? '#1e8e3e' : cut ? '#d93025' : '#e37400';
    const g = svg('g', { 'data-link': l.name, 'data-state': l.state, class: `link ${l.state}` });
    let midX;
    let midY;
    if (Math.abs(ia - ib) === 1) {
      const xa = x0(left) + BOX_W;
      const xb = x0(right);
      midY = top + boxH / 2;
      midX = (xa + xb) / 2;
      g.append(svg('line', { x1: xa, y1: midY, x2: xb, y2: midY, stroke: colour, 'stroke-width': 6, 'stroke-dasharray': cut ? '10 8' : undefined, 'stroke-linecap': 'round' }));
    } else {
      const k = farLinks.indexOf(l);
      const y = top + boxH + 20 + k * 34;
      const xa = x0(left) + BOX_W / 2;
      const xb = x0(right) + BOX_W / 2;
      midX = (xa + xb) / 2;
      midY = y;
      g.append(svg('path', { d: `M${xa},${top + boxH} V${y} H${xb} V${top + boxH}`, fill: 'none', stroke: colour, 'stroke-width': 5, 'stroke-dasharray': cut ? '10 8' : undefined }));
    }
    g.append(svg('text', { x: midX, y: midY - 14, 'text-anchor': 'middle', 'font-size': 14, 'font-weight': 600, fill: '#1f2328' }, `link ${l.name}`));
    const word = cut ? 'CUT' : l.state === 'up' ? `up${l.latencyMs !== undefined ? `, ${l.latencyMs} ms` : ''}` : l.state;
    g.append(svg('text', { x: midX, y: midY + 24, 'text-anchor': 'middle', 'font-size': cut ? 16 : 13, 'font-weight': cut ? 700 : 400, fill: colour }, word));
    root.append(g);
  });

  for (const name of order) {
    const a = t.arrays.find((x) => x.name === name);
    const x = x0(name);
    const down = a.state !== 'running' || !a.reachable;
    const g = svg('g', { 'data-array': a.name, 'data-state': down ? (a.state === 'running' ? 'unreachable' : a.state) : 'running' });
    if (a.site && a.site !== a.name) g.append(svg('text', { x: x + 4, y: top - 8, 'font-size': 12, fill: '#6b7280' }, `site ${a.site}`));
    g.append(svg('rect', { x, y: top, width: BOX_W, height: boxH, rx: 10, fill: down ? '#fde2e0' : '#ffffff', stroke: down ? '#d93025' : '#4b5563', 'stroke-width': 2 }));
    g.append(svg('text', { x: x + 14, y: top + 26, 'font-size': 17, 'font-weight': 700, fill: '#111827' }, `array ${a.name}`));
    const unpowered = !down && a.power !== undefined && a.power !== 'on';
    const st = down ? (a.state === 'running' ? 'unreachable' : a.state.toUpperCase()) : unpowered ? `POWER ${a.power.toUpperCase()}` : 'running';
    g.append(svg('text', { x: x + BOX_W - 14, y: top + 26, 'text-anchor': 'end', 'font-size': 13, 'font-weight': 600, fill: down || unpowered ? '#d93025' : '#1e8e3e' }, st));
    g.append(svg('text', { x: x + 14, y: top + 48, 'font-size': 12, fill: '#4b5563' }, `${a.luns.length} LUN${a.luns.length === 1 ? '' : 's'}: ${a.luns.map((l) => l.name).join(', ') || '-'}`));
    a.sps.forEach((sp, i) => {
      const y = top + 62 + i * 26;
      const colour = sp.state === 'up' ? '#1e8e3e' : sp.state === 'down' || sp.state === 'off' ? '#d93025' : '#e37400';
      const sg = svg('g', { 'data-sp': `${a.name}/${sp.name}`, 'data-state': sp.state });
      sg.append(svg('rect', { x: x + 14, y, width: BOX_W - 28, height: 20, rx: 5, fill: colour, opacity: 0.14 }));
      sg.append(svg('circle', { cx: x + 26, cy: y + 10, r: 5, fill: colour }));
      const owned = sp.lunsOwned.map((id) => a.luns.find((l) => l.id === id)?.name ?? id).join(', ');
      sg.append(svg('text', { x: x + 38, y: y + 14, 'font-size': 12, fill: '#111827' }, `SP ${sp.name} ${sp.state}${sp.cacheMode ? ` · ${sp.cacheMode}` : ''}${owned ? ` · owns ${owned}` : ''}`));
      g.append(sg);
    });
    if (!a.sps.length) g.append(svg('text', { x: x + 14, y: top + 76, 'font-size': 12, fill: '#4b5563' }, 'single process (no SPs)'));
    root.append(g);
  }
  host.replaceChildren(root);
}

/** `bravo:disk0` for an image (the mirror records name LUNs by id). */
function lunLabel(t, array, id) {
  const name = t.arrays.find((a) => a.name === array)?.luns.find((l) => l.id === id)?.name;
  return `${array}:${name ?? id}`;
}

function drawMirrors(t) {
  const body = document.querySelector('#mirrors tbody');
  const rows = [];
  for (const m of t.mirrors) {
    const secs = m.images.filter((i) => i.role !== 'primary');
    for (const [k, i] of (secs.length ? secs : [undefined]).entries()) {
      const key = `${m.name}/${i?.array}:${i?.lun}`;
      const live = i && state.resyncs.get(`${m.array}/${m.name}/${i.array}:${i.lun}`);
      const rs = i?.resync ? { done: i.resync.done, total: i.resync.total } : live ? { done: live.doneBytes, total: live.goalBytes } : undefined;
      rows.push(
        el('tr', { 'data-mirror': key },
          el('td', {}, k === 0 ? m.name : ''),
          el('td', {}, k === 0 ? `${m.array}:${m.lun}` : ''),
          el('td', {}, k === 0 ? badge(m.state) : ''),
          el('td', {}, i ? lunLabel(t, i.array, i.lun) : '-'),
          el('td', {}, i ? badge(i.state ?? '-') : '', i?.fractured ? badge('FRACTURED', 'bad') : ''),
          el('td', {}, i ? badge(i.reachability) : ''),
          el('td', {}, i ? size(i.fractureLogBytes) : ''),
          el('td', {}, rs && rs.total > 0 ? el('span', {}, el('span', { class: 'progress', title: `${size(rs.done)} of ${size(rs.total)}` }, el('span', { style: `width:${Math.min(100, (100 * rs.done) / rs.total).toFixed(1)}%` })), ` ${Math.floor((100 * rs.done) / rs.total)}% of ${size(rs.total)}`) : '-'),
        ),
      );
    }
  }
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: 8, class: 'muted' }, 'no mirrors')));
  body.replaceChildren(...rows);
}

function drawGroups(t) {
  const body = document.querySelector('#groups tbody');
  const rows = t.groups.map((g) => {
    const live = state.groupSeries.get(`${g.array}/${g.name}`)?.at(-1);
    const backlog = live ? live.backlogEntries : g.backlogEntries;
    const pct = live ? live.writelogPercent : g.writelogPercent;
    const lagS = live ? live.lagSeconds : g.lagMs / 1000;
    const st = g.bypass ? 'BYPASS' : g.paused ? 'paused' : 'replicating';
    return el('tr', { 'data-group': g.name },
      el('td', {}, g.name),
      el('td', {}, `${g.array} → ${g.secondaries.join(', ')}`),
      el('td', {}, g.mode),
      el('td', {}, badge(st, g.bypass ? 'bad' : g.paused ? 'warn' : 'ok')),
      el('td', {}, g.members.join(', ')),
      el('td', {}, `${backlog} entries${live ? ` (${size(live.backlogBytes)})` : ''}`),
      el('td', {}, el('span', { class: 'progress', title: `${pct.toFixed(1)}%` }, el('span', { style: `width:${Math.min(100, pct).toFixed(1)}%` })), ` ${pct.toFixed(1)}%`),
      el('td', {}, `${lagS.toFixed(1)} s`),
    );
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: 8, class: 'muted' }, 'no consistency groups')));
  body.replaceChildren(...rows);
  for (const g of t.groups) ensureChart(document.getElementById('group-charts'), `group:${g.array}/${g.name}`, `group ${g.name}: backlog and lag`, [
    { label: 'backlog entries', stroke: '#2563eb', scale: 'n' },
    { label: 'lag s', stroke: '#d93025', scale: 's' },
  ], [{ scale: 'n', label: 'entries' }, { scale: 's', label: 'lag s', side: 1 }]);
}

// ---------- charts ----------

function ensureLunCharts(t) {
  const host = document.getElementById('lun-charts');
  for (const a of t.arrays) {
    for (const l of a.luns) {
      ensureChart(host, `lun:${a.name}/${l.name}`, `${a.name}/${l.name} writes`, [
        { label: 'write IOPS', stroke: '#2563eb', scale: 'iops', width: 2 },
        { label: 'p50 ms', stroke: '#1e8e3e', scale: 'ms' },
        { label: 'p99 ms', stroke: '#d93025', scale: 'ms', dash: [6, 4] },
      ], [{ scale: 'iops', label: 'IOPS' }, { scale: 'ms', label: 'latency ms', side: 1 }]);
    }
  }
}

function ensureChart(host, key, title, series, axes) {
  if (state.charts.has(key)) return;
  const now = el('span', { class: 'now' });
  const box = el('div', { class: 'chart', 'data-chart': key.replace(/^(lun|group):/, ''), 'data-kind': key.split(':')[0], 'data-points': 0 }, el('h3', {}, title, now));
  const plotHost = el('div', {});
  box.append(plotHost);
  host.append(box);
  const width = Math.max(400, box.clientWidth - 20);
  const opts = {
    width,
    height: 170,
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    // At least the last 30 s on the time axis: a few seconds of data would otherwise fill the
    // width and read as a long trend (and the ticks as milliseconds).
    scales: { x: { time: true, range: (u, min, max) => {
      const now = Date.now() / 1000;
      const hi = max ?? now;
      return [Math.min(min ?? hi, hi - X_MIN_S), hi];
    } } },
    series: [{}, ...series.map((s) => ({ spanGaps: false, points: { show: false }, ...s }))],
    axes: [{}, ...axes.map((a) => ({ size: 56, grid: { show: a.side !== 1 }, ...a }))],
  };
  const data = [[], ...series.map(() => [])];
  const plot = new uPlot(opts, data, plotHost);
  state.charts.set(key, { plot, box, now, kind: key.split(':')[0] });
}

function updateCharts() {
  const cutoff = Date.now() / 1000 - HISTORY_MS / 1000;
  for (const [key, c] of state.charts) {
    const id = key.slice(key.indexOf(':') + 1);
    const src = c.kind === 'lun' ? state.lunSeries.get(id) : state.groupSeries.get(id);
    const pts = (src || []).filter((p) => p.t >= cutoff);
    let data;
    if (c.kind === 'lun') data = [pts.map((p) => p.t), pts.map((p) => p.writeIops), pts.map((p) => p.p50Ms), pts.map((p) => p.p99Ms)];
    else data = [pts.map((p) => p.t), pts.map((p) => p.backlogEntries), pts.map((p) => p.lagSeconds)];
    c.plot.setData(data);
    // The latest values in words, so the chart reads at a glance without hovering.
    const last = pts.at(-1);
    const ms = (v) => (v === null || v === undefined ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(0));
    if (!last) c.now.textContent = '';
    else if (c.kind === 'lun') c.now.textContent = last.writeIops > 0 ? `now ${last.writeIops.toFixed(0)} IOPS, p50 ${ms(last.p50Ms)} ms, p99 ${ms(last.p99Ms)} ms` : 'now idle';
    else c.now.textContent = `now ${last.backlogEntries} entries, lag ${last.lagSeconds.toFixed(1)} s`;
    c.box.setAttribute('data-points', String(c.kind === 'lun' ? pts.filter((p) => p.p50Ms !== null).length : pts.length));
  }
}

async function pollSeries() {
  try {
    const s = await getJson(`/api/series?since=${state.lastPointMs}`);
    for (const p of s.points) {
      state.lastPointMs = Math.max(state.lastPointMs, p.timeMs);
      const t = p.timeMs / 1000;
      for (const l of p.luns) push(state.lunSeries, `${l.array}/${l.lun}`, { t, writeIops: l.writeIops, p50Ms: l.p50Ms, p99Ms: l.p99Ms });
      for (const g of p.groups) push(state.groupSeries, `${g.array}/${g.group}`, { t, ...g });
      state.resyncs = new Map(p.resyncs.map((r) => [`${r.array}/${r.mirror}/${r.image}`, r]));
    }
    if (s.points.length) updateCharts();
  } catch (e) {
    say(`cannot read the metrics: ${e.message}`, true);
  }
  setTimeout(pollSeries, SERIES_POLL_MS);
}

function push(map, key, point) {
  const a = map.get(key) || [];
  a.push(point);
  const cutoff = point.t - HISTORY_MS / 1000;
  while (a.length && a[0].t < cutoff) a.shift();
  map.set(key, a);
}

// ---------- events ----------

const BAD_TYPES = /crash|cut|failed|down|fracture|unreachable|error|lost|dirty|bypass/;

function globToRe(p) {
  return new RegExp(`^${p.trim().replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
}

function details(e) {
  const skip = new Set(['seq', 'time', 'type', 'source', 'kind', 'array', 'link', 'lab']);
  return Object.entries(e)
    .filter(([k]) => !skip.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join(' ');
}

function drawEvents() {
  const shown = state.events.filter((e) => !state.filter.length || state.filter.some((re) => re.test(e.type))).slice(-MAX_EVENTS_SHOWN).reverse();
  const body = document.querySelector('#events tbody');
  body.replaceChildren(
    ...shown.map((e) =>
      el('tr', { 'data-type': e.type, 'data-source': e.source, class: BAD_TYPES.test(e.type) ? 'bad' : '' },
        el('td', { title: e.time }, e.time.slice(11, 23)),
        el('td', {}, `${e.kind} ${e.source}`),
        el('td', {}, e.type),
        el('td', {}, details(e)),
      ),
    ),
  );
  document.getElementById('event-count').textContent = `${shown.length} shown of ${state.events.length}`;
}

let eventsDirty = false;
function onEvent(e) {
  // Sources interleave: keep the log in time order.
  let i = state.events.length;
  while (i > 0 && state.events[i - 1].time > e.time) i--;
  state.events.splice(i, 0, e);
  if (state.events.length > 2000) state.events.shift();
  if (!eventsDirty) {
    eventsDirty = true;
    requestAnimationFrame(() => {
      eventsDirty = false;
      drawEvents();
    });
  }
  // Any change of state: read the topology again soon (several events of one change: one read).
  refreshSoon(150);
}

function openEvents() {
  const live = document.getElementById('live');
  const es = new EventSource('/api/events');
  es.onopen = () => {
    live.textContent = 'events: live';
    live.className = 'live ok';
  };
  es.onerror = () => {
    live.textContent = 'events: reconnecting';
    live.className = 'live bad';
  };
  es.onmessage = (m) => onEvent(JSON.parse(m.data));
}

document.getElementById('type-filter').addEventListener('input', (ev) => {
  state.filter = ev.target.value.split(',').filter((p) => p.trim()).map(globToRe);
  drawEvents();
});

window.addEventListener('resize', () => {
  for (const c of state.charts.values()) c.plot.setSize({ width: Math.max(400, c.box.clientWidth - 20), height: 170 });
});

refreshTopology();
pollSeries();
openEvents();
