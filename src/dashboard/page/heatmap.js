// Each mirror's write-intent log and fracture logs as heatmaps of its LUN's regions: one row per
// log, one cell per bucket of the primary's region map (GET /v1/mirrors/M/regions), coloured by
// the share of the bucket's regions that are dirty. The rows share the buckets, so a region that
// is in flight and fractured shows at the same place in both.
'use strict';

const HEAT_CELL_W = 5;
const HEAT_ROW_H = 16;

function drawHeatmaps(t) {
  const host = document.getElementById('heatmaps');
  const cards = t.mirrors.filter((m) => m.regions).map((m) => heatmapCard(t, m));
  if (!cards.length) cards.push(el('div', { class: 'muted' }, 'no region maps (no mirror, or its primary does not answer)'));
  host.replaceChildren(...cards);
}

function heatmapCard(t, m) {
  const r = m.regions;
  const buckets = r.writeIntentLog.shares.length;
  const rows = [heatRow(`${m.name}/wil`, `write-intent log (${size(r.writeIntentLog.regionSize)} extents)`, r.writeIntentLog, r.bucketBytes)];
  for (const i of r.images) {
    const img = m.images.find((x) => `${x.array}:${x.lun}` === i.imageId);
    const label = `fracture log → ${img ? lunLabel(t, img.array, img.lun) : i.imageId} (${size(i.fractureLog?.regionSize ?? 0)} regions)`;
    rows.push(i.fractureLog ? heatRow(`${m.name}/fracture/${i.imageId}`, label, i.fractureLog, r.bucketBytes) : el('div', { class: 'heat-row muted' }, `${label}: not set up`));
  }
  return el('div', { class: 'chart', 'data-heatmaps': m.name },
    el('h3', {}, `mirror ${m.name}`, el('span', { class: 'now' }, `${m.array}:${m.lun}, ${size(r.lunSize)} in ${buckets} cells of ${size(r.bucketBytes)}`)),
    ...rows,
    el('div', { class: 'heat-axis muted' }, el('span', {}, '0'), el('span', {}, size(r.lunSize))),
  );
}

function heatRow(key, label, log, bucketBytes) {
  const dirty = log.shares.filter((s) => s > 0).length;
  const g = svg('svg', { width: log.shares.length * HEAT_CELL_W, height: HEAT_ROW_H, role: 'img', 'aria-label': `${label}: ${dirty} cells dirty` });
  log.shares.forEach((share, k) => {
    const cell = svg('rect', { x: k * HEAT_CELL_W, y: 0, width: HEAT_CELL_W - 1, height: HEAT_ROW_H, fill: heatColour(share) });
    cell.append(svg('title', {}, `${size(k * bucketBytes)}–${size((k + 1) * bucketBytes)}: ${Math.round(share * 100)}% of regions dirty`));
    g.append(cell);
  });
  return el('div', { class: 'heat-row', 'data-heatmap': key, 'data-dirty-cells': dirty },
    el('div', { class: 'heat-label' }, label, el('span', { class: 'muted' }, ` ${dirty ? `${dirty} of ${log.shares.length} cells dirty` : 'clean'}`)), g);
}

/** Clean is pale grey; any dirty region is visibly amber, a fully dirty bucket deep red. */
function heatColour(share) {
  if (share <= 0) return '#e8ebef';
  const t = Math.min(1, share);
  const mix = (a, b) => Math.round(a + (b - a) * t);
  return `rgb(${mix(245, 185)},${mix(176, 28)},${mix(65, 28)})`;
}
