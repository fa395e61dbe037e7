// The dashboard's fault controls: each button is one allow-listed call of the dashboard's proxy
// (src/dashboard/proxy.ts, which fixes the upstream body), posted by act() of kit.js.
'use strict';

/** One-way link delays offered (ms); the proxy accepts exactly these (LINK_LATENCIES_MS). */
const LATENCY_CHOICES_MS = [0, 1, 5, 20, 50];

function drawControls(t) {
  const cards = [];
  for (const l of t.links || []) cards.push(linkCard(l));
  for (const a of t.arrays) cards.push(arrayCard(t, a));
  document.getElementById('controls').replaceChildren(...cards);
}

function linkCard(l) {
  const cut = l.state === 'cut' || l.state === 'partially-cut';
  const path = (what) => `/api/links/${encodeURIComponent(l.name)}/${what}`;
  const latency = el('select', { 'data-action': `link-latency/${l.name}`, title: 'one-way delay, both directions' },
    ...LATENCY_CHOICES_MS.map((ms) => el('option', { value: ms, selected: l.latencyMs === ms || undefined }, `${ms} ms`)));
  if (!LATENCY_CHOICES_MS.includes(l.latencyMs) && l.latencyMs !== undefined) latency.prepend(el('option', { value: '', selected: true, disabled: true }, `${l.latencyMs} ms`));
  latency.addEventListener('change', () => act(`set link ${l.name} to ${latency.value} ms one way`, path(`latency/${latency.value}`), latency));
  return el('div', { class: 'card', 'data-card': `link/${l.name}` },
    el('h3', {}, `link ${l.name}`, badge(l.state === 'cut' ? 'CUT' : l.state, stateClass(l.state))),
    el('div', { class: 'row muted' }, `${l.a} ⇄ ${l.b}`),
    el('div', { class: 'row' },
      el('button', { class: 'danger', 'data-action': `link-cut/${l.name}`, disabled: l.state === 'cut' || undefined, onclick: (ev) => act(`cut link ${l.name}`, path('cut'), ev.target) }, 'Cut link'),
      el('button', { class: 'safe', 'data-action': `link-restore/${l.name}`, disabled: !cut || undefined, onclick: (ev) => act(`restore link ${l.name}`, path('restore'), ev.target) }, 'Restore link'),
      el('label', {}, 'latency ', latency),
    ),
  );
}

function arrayCard(t, a) {
  const running = a.state === 'running';
  const path = (what) => `/api/arrays/${encodeURIComponent(a.name)}/${what}`;
  const rows = [];
  for (const sp of a.sps) {
    rows.push(
      el('div', { class: 'row' },
        el('span', {}, `SP ${sp.name}`), badge(sp.state),
        el('button', { class: 'danger', 'data-action': `sp-crash/${a.name}/${sp.name}`, disabled: !running || sp.state !== 'up' || undefined, onclick: (ev) => act(`crash SP ${sp.name} of ${a.name}`, path(`sps/${sp.name}/crash`), ev.target) }, `Crash SP ${sp.name}`),
        el('button', { class: 'safe', 'data-action': `sp-restart/${a.name}/${sp.name}`, disabled: !running || sp.state === 'up' || undefined, onclick: (ev) => act(`restart SP ${sp.name} of ${a.name}`, path(`sps/${sp.name}/restart`), ev.target) }, `Restart SP ${sp.name}`),
      ),
    );
  }
  if (a.sps.length) {
    // a two-SP array has a power supply (and a battery that carries the vault dump)
    const power = a.power ?? 'unknown';
    rows.push(
      el('div', { class: 'row' },
        el('span', {}, 'power'), badge(power, power === 'on' ? 'ok' : 'bad'),
        el('button', { class: 'danger', 'data-action': `power-fail/${a.name}`, disabled: !running || power !== 'on' || undefined, onclick: (ev) => act(`fail the power of ${a.name}`, path('power-fail'), ev.target) }, 'Power fail'),
        el('button', { class: 'safe', 'data-action': `power-restore/${a.name}`, disabled: !running || power !== 'off' || undefined, onclick: (ev) => act(`restore the power of ${a.name}`, path('power-restore'), ev.target) }, 'Power restore'),
      ),
    );
  }
  if (t.faults.arrayCrash) {
    rows.push(
      el('div', { class: 'row' },
        el('button', { class: 'danger', 'data-action': `array-crash/${a.name}`, disabled: !running || undefined, onclick: (ev) => act(`crash array ${a.name}`, path('crash'), ev.target) }, 'Crash array'),
        el('button', { class: 'safe', 'data-action': `array-restart/${a.name}`, disabled: a.state !== 'crashed' || undefined, onclick: (ev) => act(`restart array ${a.name}`, path('restart'), ev.target) }, 'Restart array'),
      ),
    );
  }
  return el('div', { class: 'card', 'data-card': `array/${a.name}` }, el('h3', {}, `array ${a.name}`, badge(a.state === 'running' && !a.reachable ? 'unreachable' : a.state)), ...rows);
}
