// The pair resync monitor's resources (seed 000's chkmon -show): each watched mirror or group
// with its pair state in the source's words and sanbox's reason, its recovery phase, whether it
// recovers by itself, and its last automatic resync. From /api/topology's `monitor`.
'use strict';

const PAIR_NAMES = { connected: 'PAIR', resync: 'COPY', suspended: 'PSUS', 'error-suspended': 'PSUE', deleted: 'SMPL', unknown: 'unknown' };

function drawMonitor(t) {
  const section = document.getElementById('monitor-section');
  section.hidden = !t.monitor;
  if (!t.monitor) return;
  const body = document.querySelector('#monitor tbody');
  const rows = t.monitor.resources.map((r) =>
    el('tr', { 'data-resource': `${r.app}/${r.deviceGroup}`, 'data-pair': r.pair },
      el('td', {}, `${r.app} / ${r.deviceGroup}`),
      el('td', {}, r.instance),
      el('td', {}, badge(`${PAIR_NAMES[r.pair] ?? r.pair} (${r.pair})`, pairClass(r.pair)), el('span', { class: 'muted' }, ` ${r.reason}`)),
      el('td', {}, badge(r.phase, r.phase === 'watching' ? 'ok' : r.phase === 'held' ? 'bad' : 'warn')),
      el('td', {}, r.autorecover ? 'yes' : 'no'),
      el('td', {}, r.lastAutoResync ? new Date(r.lastAutoResync).toISOString().slice(11, 19) : '-'),
    ));
  if (!t.monitor.reachable) rows.unshift(el('tr', {}, el('td', { colspan: 6 }, badge('monitor not answering', 'bad'))));
  else if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'no resources')));
  body.replaceChildren(...rows);
}

function pairClass(pair) {
  if (pair === 'connected') return 'ok';
  if (pair === 'resync') return 'warn';
  return 'bad';
}
