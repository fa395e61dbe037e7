// Small helpers shared by the benchmarks in bench/ (options, sizes, waiting, tables).
import { createServer, connect } from 'node:net';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HOST = '127.0.0.1';
export const MiB = 1024 * 1024;

let program = 'bench';
/** The name `die` and friends prefix their messages with. */
export function setProgram(name) {
  program = name;
}

export function die(msg) {
  process.stderr.write(`${program}: ${msg}\n`);
  process.exit(2);
}

/** Progress and notes: stderr, so --json keeps stdout clean. */
export const log = (msg) => process.stderr.write(`${msg}\n`);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The leading `//` comment block of a script (after the shebang), as --help text. */
export function readHelp(scriptUrl) {
  const src = readFileSync(fileURLToPath(scriptUrl), 'utf8');
  const lines = src.split('\n').slice(1);
  const out = [];
  for (const l of lines) {
    if (!l.startsWith('//')) break;
    out.push(l.replace(/^\/\/ ?/, ''));
  }
  return out.join('\n') + '\n';
}

/** "1G" -> bytes; `base` 1024 for sizes, 1000 for rates. */
export function parseSize(s, base = 1024) {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)i?B?(?:\/s)?$/i.exec(String(s).trim());
  if (!m) die(`bad size ${s}`);
  const exp = { '': 0, K: 1, M: 2, G: 3, T: 4 }[m[2].toUpperCase()];
  return Math.round(Number(m[1]) * base ** exp);
}

export function fmtBytes(n) {
  for (const [u, m] of [['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]]) if (n >= m && n % m === 0) return `${n / m}${u}`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)}M`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)}K`;
  return String(n);
}

/** Polls `fn` every `everyMs` until it returns truthy; throws after `ms`. */
export async function until(fn, ms, what, everyMs = 20) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, HOST, () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** First line of a command's stdout, or 'unknown'. */
export function tryExec(cmd, args) {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split('\n')[0];
  } catch {
    return 'unknown';
  }
}

/** A Markdown table; the first `leftCols` columns left-aligned, the rest right-aligned. */
export function table(head, rows, leftCols = 1) {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((c) => String(c[i]).length)));
  const line = (cells) => '| ' + cells.map((c, i) => (i < leftCols ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' | ') + ' |\n';
  return line(head) + '|' + widths.map((w, i) => (i < leftCols ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|\n' + rows.map(line).join('');
}

/** Whether an NBD server answers on HOST:port (its greeting starts with NBDMAGIC), within 2 s. */
export function probeNbd(port) {
  return new Promise((res) => {
    let got = Buffer.alloc(0);
    let done = false;
    const sock = connect({ host: HOST, port });
    const fin = (ok) => { if (!done) { done = true; clearTimeout(t); sock.destroy(); res(ok); } };
    const t = setTimeout(() => fin(false), 2000);
    sock.on('data', (d) => { got = Buffer.concat([got, d]); if (got.length >= 8) fin(got.subarray(0, 8).toString('latin1') === 'NBDMAGIC'); });
    sock.on('error', () => fin(false));
    sock.on('close', () => fin(false));
  });
}
