// The dashboard page's small helpers, shared by its scripts (classic scripts: one global scope,
// loaded before app.js). Data from the lab is put in the page as text, never as markup.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function size(n) {
  if (!Number.isFinite(n)) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) (n /= 1024), i++;
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)} ${u[i]}`;
}

function stateClass(s) {
  if (['up', 'running', 'on', 'ACTIVE', 'SYNCHRONIZED', 'REACHABLE', 'online', 'write-back'].includes(s)) return 'ok';
  if (['down', 'crashed', 'cut', 'off', 'stopped', 'UNREACHABLE', 'unknown', 'offline', 'missing', 'error', 'ATTENTION', 'INACTIVE'].includes(s)) return 'bad';
  return 'warn';
}

function badge(text, cls) {
  return el('span', { class: `badge ${cls || stateClass(text)}` }, text);
}

function say(text, bad) {
  const m = document.getElementById('message');
  m.textContent = text;
  m.className = bad ? 'bad' : '';
}

async function getJson(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body?.error?.message || `HTTP ${res.status}`);
  return body;
}

/** A fault through the proxy: POST with the JSON content type the lab's APIs ask for; then the topology is read again (refreshSoon of app.js). */
async function act(label, path, button) {
  if (button) button.disabled = true;
  say(`${label}…`);
  try {
    const res = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: '{}' });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) say(`${label}: refused: ${body?.error?.message || `HTTP ${res.status}`}`, true);
    else say(`${label}: done`);
  } catch (e) {
    say(`${label}: ${e.message}`, true);
  } finally {
    if (button) button.disabled = false;
    refreshSoon(0);
  }
}
