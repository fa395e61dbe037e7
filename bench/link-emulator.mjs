#!/usr/bin/env node
// Link emulator accuracy (issue 18, goal 1): does a link set to L ms one way give a round trip of
// 2L? A LinkEmulator (from dist/, in a child process of its own: bench/lib/link-child.mjs) sits
// between an echo server and a client over 127.0.0.1; the client sends --size byte messages and
// times each one's echo, QD1 (one at a time) and QD16 (16 in flight, each completion sends the
// next), for each one-way latency of --latencies and each variant:
//
//   plain    latency only
//   cap      and a bandwidth cap (--bandwidth, each direction)
//   jitter   and jitter of --jitter-ratio x latency (uniform 0..J, byte order kept)
//
// The target of a row is the round trip of an ideal emulator with the same settings and no cost
// of its own (a closed-loop model: each chunk serialized at the cap, then delayed by latency +
// jitter, never before the chunk ahead of it): 2x the setting for plain rows. Rows with jitter or
// a cap and several messages in flight are held to the range the settings allow instead (see
// bounds()): how messages bunch into chunks there is the client's doing, not the link's. The direct round
// trip (client -> echo, no emulator) is measured first; "net" is a row's p50 minus the direct p50,
// what the emulator adds (the p50 itself where the cap sets the pace: there the client's own time
// overlaps the link's). Goals, printed met/missed (the benchmark never fails on numbers):
//   - 0 ms plain: the proxy's own cost (net p50) at most 30 us;
//   - every other row: net p50 within target +- (5% of target + 50 us), or within its range
//     widened as much: never slower, and never faster (an emulator faster than its setting is as
//     wrong as a slow one).
// The emulator's CPU (user + system of its process) per round trip and as a share of the row's
// wall time is in the table: what precise delays cost. A second table sets loss-like stalls
// (lossPercent, rtoMs: each chunk delayed by one RTO with that probability) at 1 ms one way,
// QD1, and compares the share of round trips that took an RTO with 1 - (1 - p)^2.
//
//   node bench/link-emulator.mjs [--quick] [--runtime S] [--latencies 0,0.2,1] [--qd 1,16] [--json]
//
// Options:
//   --runtime S        seconds measured per row                              default 3
//   --warmup S         warm-up seconds per row                               default 0.3
//   --latencies LIST   one-way latencies, ms                                 default 0,0.2,1,5,20,50
//   --qd LIST          queue depths                                          default 1,16
//   --variants LIST    plain,cap,jitter                                      default all
//   --size BYTES       message size                                          default 4096
//   --bandwidth RATE   cap of the cap rows, bytes/s (1000-based: 100M)       default 100M
//   --jitter-ratio X   jitter of the jitter rows, x latency                  default 0.5
//   --no-loss          skip the loss table
//   --seed N           the emulator's seed (jitter, loss), if it takes one   default 1
//   --poll-ms MS       the emulator's pollMs (0: timers only, a lab's default) default 0.5 (precise)
//   --compare FILE     a previous run's JSON: its p50 and goal beside this run's
//   --from FILE        no run: the tables again from a result file (with --compare: side by side)
//   --cpu-prof         a CPU profile of the emulator process (node --cpu-prof) in bench/results/
//   --json             the whole result as JSON on stdout (progress on stderr)
//   --quick            1 s rows, 0.2 s warm-up
// SANBOX_DIST=DIR loads the emulator from another build than the repo's dist/ (DIR/link/emulator/).
// Every run writes bench/results/link-emulator-<timestamp>.json.
import { createServer, connect } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO, HOST, setProgram, die, log, readHelp, parseSize, table, tryExec } from './lib/common.mjs';

// the model's seeded draws: the same generator as the emulator's (src/random)
const { mulberry32 } = await import(pathToFileURL(join(resolve(process.env.SANBOX_DIST || join(REPO, 'dist')), 'random', 'index.js')).href);

import { applyHaltPoll, machineFacts, machineText } from './lib/machine.mjs';
import { startLinkChild } from './lib/link-process.mjs';

setProgram('bench-link-emulator');

const VARIANTS = ['plain', 'cap', 'jitter'];
/** Goal: |net p50 - target| <= PCT% of target + ABS_MS; at 0 ms plain, net p50 <= PROXY_MS. */
const PCT = 5;
const ABS_MS = 0.05;
const PROXY_MS = 0.03;

// ---------- options ----------

function parseArgs(argv) {
  const o = { runtime: 3, warmup: 0.3, latencies: [0, 0.2, 1, 5, 20, 50], qds: [1, 16], variants: [...VARIANTS], size: 4096, bandwidth: '100M', jitterRatio: 0.5, loss: true, seed: 1, pollMs: 0.5, json: false, quick: false };
  const set = new Set();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => inline ?? argv[++i];
    const list = () => String(val()).split(',').filter(Boolean);
    set.add(flag);
    switch (flag) {
      case '--runtime': o.runtime = Number(val()); break;
      case '--warmup': o.warmup = Number(val()); break;
      case '--latencies': o.latencies = list().map(Number); break;
      case '--qd': o.qds = list().map(Number); break;
      case '--variants': o.variants = list(); break;
      case '--size': o.size = Number(val()); break;
      case '--bandwidth': o.bandwidth = String(val()); break;
      case '--jitter-ratio': o.jitterRatio = Number(val()); break;
      case '--no-loss': o.loss = false; break;
      case '--seed': o.seed = Number(val()); break;
      case '--poll-ms': o.pollMs = Number(val()); break;
      case '--compare': o.compare = String(val()); break;
      case '--from': o.from = String(val()); break;
      case '--cpu-prof': o.cpuProf = true; break;
      case '--json': o.json = true; break;
      case '--quick': o.quick = true; break;
      case '-h': case '--help':
        process.stdout.write(readHelp(import.meta.url));
        process.exit(0);
        break;
      default:
        die(`unknown option ${a} (try --help)`);
    }
  }
  if (o.quick) {
    if (!set.has('--runtime')) o.runtime = 1;
    if (!set.has('--warmup')) o.warmup = 0.2;
  }
  if (!(o.runtime > 0)) die('--runtime must be a positive number of seconds');
  if (!(o.warmup >= 0)) die('--warmup must be >= 0');
  if (!o.latencies.length || o.latencies.some((x) => !(x >= 0))) die('--latencies: non-negative numbers of ms');
  if (!o.qds.length || o.qds.some((x) => !Number.isInteger(x) || x < 1)) die('--qd: positive integers');
  if (!o.variants.length || o.variants.some((v) => !VARIANTS.includes(v))) die(`--variants: some of ${VARIANTS.join(',')}`);
  if (!Number.isInteger(o.size) || o.size < 8 || o.size > 1 << 20) die('--size: an integer 8..1048576');
  if (!(o.jitterRatio > 0)) die('--jitter-ratio must be > 0');
  if (!Number.isInteger(o.seed)) die('--seed must be an integer');
  if (o.pollMs !== undefined && !(o.pollMs >= 0)) die('--poll-ms must be >= 0');
  o.bandwidthBytes = parseSize(o.bandwidth, 1000);
  if (!(o.bandwidthBytes > 0)) die('--bandwidth must be > 0');
  return o;
}

// ---------- the ideal emulator (the targets) ----------

/**
 * Round trips (ms) of a closed loop of `qd` messages of `size` bytes through an emulator without
 * costs: per direction each message is serialized at the cap after the one ahead of it, then
 * delayed by latency + jitter (+ one RTO with the loss probability), never before the one ahead.
 */
function modelRtts(s, qd, size, n = 20_000) {
  const rnd = mulberry32(12345);
  const dir = () => ({ free: 0, last: 0 });
  const ab = dir();
  const ba = dir();
  const pass = (d, t) => {
    const tx = s.bandwidth > 0 ? Math.max(t, d.free) + (size * 1000) / s.bandwidth : t;
    d.free = tx;
    const lost = s.lossPercent > 0 && rnd() < s.lossPercent / 100 ? s.rtoMs : 0;
    d.last = Math.max(tx + s.latencyMs + rnd() * s.jitterMs + lost, d.last);
    return d.last;
  };
  const done = new Float64Array(n);
  const rtts = [];
  for (let i = 0; i < n; i++) {
    const sent = i < qd ? 0 : done[i - qd];
    done[i] = pass(ba, pass(ab, sent));
    if (i >= n / 4) rtts.push(done[i] - sent); // steady state only
  }
  return rtts.sort((a, b) => a - b);
}

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN);

// ---------- echo server, emulator child, client ----------

async function startEcho() {
  const sockets = new Set();
  const server = createServer((s) => {
    sockets.add(s);
    s.setNoDelay(true);
    s.on('data', (d) => s.write(d));
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, HOST, r));
  return { port: server.address().port, close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(r); }) };
}

function startChild(distDir, targetPort, seed, pollMs, cpuProf) {
  const prof = cpuProf ? ['--cpu-prof', '--cpu-prof-dir', join(REPO, 'bench', 'results')] : [];
  return startLinkChild(distDir, [targetPort, seed, ...(pollMs === undefined ? [] : [pollMs])], prof);
}

function dial(port) {
  return new Promise((res, rej) => {
    const s = connect({ host: HOST, port }, () => res(s));
    s.setNoDelay(true);
    s.once('error', rej);
  });
}

/** Sends numbered messages and times their echoes; counts any that come back out of order. */
class Pinger {
  constructor(sock, size) {
    this.sock = sock;
    this.size = size;
    this.seq = 0;
    this.expect = 0;
    this.reordered = 0;
    this.sentAt = new Map();
    this.rest = Buffer.alloc(0);
    this.onRtt = null;
    sock.on('data', (d) => this.receive(d));
  }

  send() {
    const b = Buffer.allocUnsafe(this.size).fill(0xa5);
    b.writeUInt32LE(this.seq);
    this.sentAt.set(this.seq++, performance.now());
    this.sock.write(b);
  }

  receive(d) {
    const now = performance.now();
    const buf = this.rest.length ? Buffer.concat([this.rest, d]) : d;
    let off = 0;
    for (; buf.length - off >= this.size; off += this.size) {
      const seq = buf.readUInt32LE(off);
      if (seq !== this.expect) this.reordered++;
      this.expect = seq + 1;
      const t = this.sentAt.get(seq);
      this.sentAt.delete(seq);
      this.onRtt(now - t);
    }
    this.rest = buf.subarray(off);
  }

  /** `qd` messages in flight for `ms`; resolves with the round trips (ms, sorted) once all came back. */
  run(qd, ms) {
    return new Promise((resolve) => {
      const rtts = [];
      const end = performance.now() + ms;
      let inFlight = 0;
      this.onRtt = (rtt) => {
        rtts.push(rtt);
        inFlight--;
        if (performance.now() < end) {
          inFlight++;
          this.send();
        } else if (inFlight === 0) resolve(rtts.sort((a, b) => a - b));
      };
      for (; inFlight < qd; inFlight++) this.send();
    });
  }
}

// ---------- rows ----------

function rowSettings(o, latencyMs, variant) {
  return {
    latencyMs,
    jitterMs: variant === 'jitter' ? latencyMs * o.jitterRatio : 0,
    bandwidth: variant === 'cap' ? o.bandwidthBytes : 0,
    lossPercent: 0,
    rtoMs: 200,
  };
}

/** What the emulator is told: only what differs from "off", so an older emulator can take it. */
function wire(s) {
  const out = { latencyMs: s.latencyMs, jitterMs: s.jitterMs, bandwidth: s.bandwidth };
  if (s.lossPercent > 0) Object.assign(out, { lossPercent: s.lossPercent, rtoMs: s.rtoMs });
  return out;
}

async function measure(o, pinger, emu, qd) {
  if (o.warmup > 0) await pinger.run(qd, o.warmup * 1000);
  const c0 = emu ? await emu.call({ cpu: true }) : null;
  const t0 = performance.now();
  const reordered0 = pinger.reordered;
  const rtts = await pinger.run(qd, o.runtime * 1000);
  const wallMs = performance.now() - t0;
  const c1 = emu ? await emu.call({ cpu: true }) : null;
  const cpuUs = c1 ? c1.cpuUs - c0.cpuUs : null;
  return {
    n: rtts.length,
    p50: pct(rtts, 0.5),
    p99: pct(rtts, 0.99),
    min: rtts[0],
    wallMs,
    reordered: pinger.reordered - reordered0,
    cpuUsPerRt: cpuUs === null ? null : cpuUs / rtts.length,
    cpuPct: cpuUs === null ? null : (cpuUs / 1000 / wallMs) * 100,
    delayQueue: c1?.status.delayQueue && c0?.status.delayQueue ? diffCounters(c1.status.delayQueue, c0.status.delayQueue) : null,
    rtts,
  };
}

const diffCounters = (a, b) => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, typeof v === 'number' ? v - (b[k] ?? 0) : v]));

/**
 * What a row is held to. Exact (the model's p50): one message in flight, latency alone, or a cap
 * that clearly sets the pace (throughput-bound). A range otherwise: with several messages in flight the
 * round trip under jitter or a cap depends on how the client's and the server's messages bunch
 * into chunks (one jitter draw and one serialization queue per chunk), which the model cannot
 * know; the range is what the settings allow: from the link alone to every message in flight
 * queued at both serializers and the largest jitter both ways.
 */
function bounds(row, size) {
  const s = row.settings;
  const serializeMs = s.bandwidth > 0 ? (size * 1000) / s.bandwidth : 0;
  // Clearly (2x) so: near the edge the client's and the server's own time decide which binds.
  const capBound = s.bandwidth > 0 && row.qd * serializeMs > 2 * (2 * s.latencyMs + 2 * serializeMs);
  if (row.qd === 1 || capBound || (s.jitterMs === 0 && s.bandwidth === 0)) return { capBound, lo: row.target, hi: row.target };
  return { capBound, lo: 2 * s.latencyMs + 2 * serializeMs, hi: 2 * s.latencyMs + 2 * s.jitterMs + 2 * row.qd * serializeMs };
}

function judge(row, direct, size) {
  if (row.skipped) return 'n/a';
  const { capBound, lo, hi } = bounds(row, size);
  row.lo = lo;
  row.hi = hi;
  // Where the cap sets the pace, the client's own time overlaps the link's: net is the p50 itself.
  row.net = capBound ? row.p50 : row.p50 - direct.p50;
  row.errorMs = row.net - row.target;
  if (row.latencyMs === 0 && row.variant === 'plain') return row.net <= PROXY_MS ? 'met' : 'MISSED (slow)';
  const slack = (ms) => (PCT / 100) * ms + ABS_MS;
  const range = lo === hi ? '' : ' (range)';
  if (row.net > hi + slack(hi)) return `MISSED (slow)${range}`;
  if (row.net < lo - slack(lo)) return `MISSED (fast)${range}`;
  return `met${range}`;
}

async function lossRows(o, pinger, emu, direct) {
  const out = [];
  const L = 1;
  const rtoMs = 20;
  for (const lossPercent of [0, 10, 30, 100]) {
    const s = { latencyMs: L, jitterMs: 0, bandwidth: 0, lossPercent, rtoMs };
    const row = { lossPercent, rtoMs, latencyMs: L, expectedHit: 1 - (1 - lossPercent / 100) ** 2 };
    try {
      await emu.call({ set: { 'a-to-b': wire(s), 'b-to-a': wire(s) } });
    } catch (e) {
      out.push({ ...row, skipped: e.message });
      continue;
    }
    const m = await measure(o, pinger, emu, 1);
    const hitAbove = 2 * L + rtoMs / 2 + direct.p50; // a round trip that took at least one RTO
    row.hit = m.rtts.filter((x) => x >= hitAbove).length / m.n;
    row.p50 = m.p50;
    row.n = m.n;
    row.modelP50 = pct(modelRtts(s, 1, o.size), 0.5);
    out.push(row);
    log(`  loss ${lossPercent}%: ${(row.hit * 100).toFixed(1)}% of ${m.n} round trips took an RTO (expected ${(row.expectedHit * 100).toFixed(1)}%)`);
  }
  return out;
}

async function run(o, res, distDir) {
  const echo = await startEcho();
  const emu = await startChild(distDir, echo.port, o.seed, o.pollMs, o.cpuProf);
  try {
    // What the emulator process costs doing nothing (its CPU column is read against it).
    const c0 = await emu.call({ cpu: true });
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    res.idleCpuPct = ((await emu.call({ cpu: true })).cpuUs - c0.cpuUs) / 10 / (performance.now() - t0);
    const directPinger = new Pinger(await dial(echo.port), o.size);
    for (const qd of o.qds) {
      const { rtts: _r, ...m } = await measure(o, directPinger, null, qd);
      res.direct[qd] = m;
      log(`direct QD${qd}: p50 ${us(m.p50)} us, p99 ${us(m.p99)} us (${m.n} round trips)`);
    }
    directPinger.sock.destroy();
    const pinger = new Pinger(await dial(emu.port), o.size);
    for (const latencyMs of o.latencies) {
      for (const variant of o.variants) {
        if (variant === 'jitter' && latencyMs === 0) continue;
        const s = rowSettings(o, latencyMs, variant);
        for (const qd of o.qds) {
          const row = { latencyMs, variant, qd, settings: s };
          row.target = pct(modelRtts(s, qd, o.size), 0.5);
          try {
            await emu.call({ set: { 'a-to-b': wire(s), 'b-to-a': wire(s) } });
          } catch (e) {
            res.rows.push({ ...row, skipped: e.message });
            continue;
          }
          const m = await measure(o, pinger, emu, qd);
          const { rtts: _r, ...kept } = m;
          Object.assign(row, kept);
          row.goal = judge(row, res.direct[qd], o.size);
          res.rows.push(row);
          log(`${latencyMs} ms ${variant} QD${qd}: p50 ${us(m.p50)} us (target ${us(row.target)} + direct), p99 ${us(m.p99)} us, ${m.n} round trips, emulator ${m.cpuPct.toFixed(0)}% CPU: ${row.goal}`);
        }
      }
    }
    if (o.loss) res.loss = await lossRows(o, pinger, emu, res.direct[1] ?? res.direct[o.qds[0]]);
    pinger.sock.destroy();
  } finally {
    await emu.close();
    await echo.close();
  }
}

// ---------- report ----------

const us = (ms) => (ms === null || ms === undefined || Number.isNaN(ms) ? '-' : Math.round(ms * 1000).toLocaleString('en-US'));
/** The emulator's own mean wake-up lateness (us) in a row, when it reports it. */
const meanLate = (r) => (r.delayQueue?.wakeups > 0 && r.delayQueue.lateMs !== undefined ? us(r.delayQueue.lateMs / r.delayQueue.wakeups) : '-');
const signedUs = (ms) => (ms >= 0 ? '+' : '') + us(ms);

function report(res, before) {
  const out = [];
  out.push(`link emulator accuracy: ${res.options.size}-byte messages, ${res.options.runtime} s rows; node ${res.versions.node}, ${res.versions.cpus} CPUs, ${machineText(res.versions.machine)}, load ${res.loadavgStart.map((x) => x.toFixed(1)).join(' ')} -> ${res.loadavgEnd.map((x) => x.toFixed(1)).join(' ')}; emulator ${res.versions.dist}`);
  out.push(`emulator process idle: ${res.idleCpuPct.toFixed(1)}% CPU`);
  out.push(`direct (no emulator): ${Object.entries(res.direct).map(([qd, m]) => `QD${qd} p50 ${us(m.p50)} us, p99 ${us(m.p99)} us`).join('; ')}`);
  out.push(`goal: net p50 (p50 - direct p50) within target +- (${PCT}% + ${ABS_MS * 1000} us); at 0 ms plain, net p50 <= ${PROXY_MS * 1000} us. Times in us;`);
  out.push(`emu late: the emulator's mean wake-up lateness after a due time (what it controls; the rest of the error is the kernel and the scheduler).${res.options.pollMs !== undefined ? ` pollMs ${res.options.pollMs}.` : ''}\n`);
  const prev = (r) => before?.rows.find((b) => b.latencyMs === r.latencyMs && b.variant === r.variant && b.qd === r.qd);
  const head = ['one-way ms', 'variant', 'QD', 'target', 'p50', 'p99', 'net p50', 'error', 'error %', 'emu late', 'emu CPU/RT', 'emu CPU %', 'goal'];
  if (before) head.push('before net p50', 'before goal');
  for (const x of [res, before].filter(Boolean)) for (const r of x.rows) r.goal = judge(r, x.direct[r.qd], x.options.size);
  const rows = res.rows.map((r) => {
    const cells = r.skipped
      ? [r.latencyMs, r.variant, r.qd, us(r.target), '-', '-', '-', '-', '-', '-', '-', '-', 'n/a (refused)']
      : [r.latencyMs, r.variant, r.qd, r.lo === r.hi ? us(r.target) : `${us(r.target)} (${us(r.lo)}-${us(r.hi)})`, us(r.p50), us(r.p99), us(r.net), signedUs(r.errorMs), r.target > 0 ? `${((r.errorMs / r.target) * 100).toFixed(1)}%` : '-', meanLate(r), r.cpuUsPerRt.toFixed(1), r.cpuPct.toFixed(0), r.goal];
    if (before) {
      const b = prev(r);
      cells.push(b && !b.skipped ? us(b.net) : '-', b ? (b.goal ?? 'n/a') : '-');
    }
    return cells;
  });
  out.push(table(head, rows, 2));
  const met = res.rows.filter((r) => r.goal.startsWith('met')).length;
  const judged = res.rows.filter((r) => !r.skipped).length;
  out.push(`goal met in ${met} of ${judged} rows; reordered messages: ${res.rows.reduce((n, r) => n + (r.reordered ?? 0), 0)}`);
  if (res.loss?.length) {
    out.push(`\nloss-like stalls, 1 ms one way, QD1: share of round trips that took an RTO (expected 1 - (1 - p)^2)\n`);
    out.push(table(['loss %', 'rto ms', 'round trips', 'expected', 'measured', 'model p50', 'p50'], res.loss.map((l) => (l.skipped
      ? [l.lossPercent, l.rtoMs, '-', `${(l.expectedHit * 100).toFixed(1)}%`, 'n/a (refused)', '-', '-']
      : [l.lossPercent, l.rtoMs, l.n, `${(l.expectedHit * 100).toFixed(1)}%`, `${(l.hit * 100).toFixed(1)}%`, us(l.modelP50), us(l.p50)])), 1));
  }
  return out.join('\n') + '\n';
}

// ---------- main ----------

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const distDir = resolve(process.env.SANBOX_DIST || join(REPO, 'dist'));
  const readResult = (file, flag) => {
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      return die(`${flag} ${file}: ${e.message}`);
    }
  };
  const before = o.compare ? readResult(o.compare, '--compare') : null;
  if (o.from) {
    process.stdout.write(report(readResult(o.from, '--from'), before));
    return;
  }
  applyHaltPoll('bench-link-emulator', log, die);
  const started = new Date();
  const res = {
    started: started.toISOString(),
    options: o,
    versions: { sanbox: tryExec('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']), dist: distDir, node: process.version, cpus: cpus().length, machine: machineFacts() },
    loadavgStart: loadavg(),
    direct: {},
    rows: [],
  };
  if (loadavg()[0] > 1) log(`bench-link-emulator: note: load average ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs: other work competes with the benchmark`);
  await run(o, res, distDir);
  res.loadavgEnd = loadavg();
  res.seconds = (Date.now() - started.getTime()) / 1000;
  const dir = join(REPO, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `link-emulator-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(res, null, 2) + '\n');
  if (o.json) process.stdout.write(JSON.stringify(res, null, 2) + '\n');
  else process.stdout.write(report(res, before));
  log(`\nbench-link-emulator: ${res.seconds.toFixed(0)} s; results in ${file}`);
}

main().catch((e) => {
  log(`bench-link-emulator: ${e.stack ?? e.message}`);
  process.exit(1);
});
