#!/usr/bin/env node
// Replication-mode latency benchmark (issue 6, "Benchmark: synchronous against asynchronous"):
// what each replication mode costs a host write, in one run. Two real arrays (alpha, bravo) in
// this process joined by a real LinkEmulator (bench/lib/lab.mjs, as bench/mirror.mjs); fio's
// nbd engine writes 4k random blocks to LUNs that alpha serves over NBD:
//
//   unmirrored        a plain LUN
//   sync              a synchronously mirrored LUN (alpha -> bravo, no group)
//   async             a mirrored LUN in an asynchronous consistency group
//   near-sync         a mirrored LUN in a near-synchronous group whose bound (--bound, bytes)
//                     the row does not reach
//   near-sync-bound   the same with a small bound (--small-bound entries) that the row reaches;
//                     by default set per row from the async row of the same latency and QD
//                     (half its mean backlog, at least 2 entries), so that it is reached
//                     whatever the speed; the table says whether it was (writes that waited)
//
// for each one-way link latency of --latencies (set on both directions: the round trip is 2x)
// and each queue depth of --qd: IOPS, p50 and p99 completion latency (us), and the ratios to the
// unmirrored row of the same latency and QD. Each row first runs a --warmup pass; groups are
// drained before the warm-up and before the measured pass. For the group rows the backlog is
// sampled every --sample-ms during the measured pass: the most entries waiting and writelog
// bytes, the lag (the age of the oldest unacknowledged entry), and after fio exits the time the
// backlog took to drain, and the records the secondary applied per transmission. A third table
// gives the CPU the arrays used per write (this process; with --secondary-process also bravo's)
// and fio's own. Goals, reported PASS/MISS (the benchmark never fails on numbers):
//   1. async p50 within 15% of unmirrored at every link latency (and QD);
//   2. near-sync equal to async until the bound is reached: the p50 of the near-sync row whose
//      bound is not reached within 10% of the async row's.
//   3. (issue 18, goal 2) the synchronous mirror costs only the round trip: the sync p50 at QD1
//      at most 1.10 x (unmirrored p50 + the emulator's round trip, a 4 KiB / 64-byte ping-pong
//      measured through a second emulator at the same setting before the rows of each latency),
//      and at a 0 ms link the sync QD16 IOPS at least 0.5x unmirrored.
//
//   npm run bench:latency [-- --runtime 5 --latencies 0,1,5 --qd 1,16 --json]
//
// Options:
//   --runtime S        seconds measured per row                              default 5
//   --warmup S         warm-up seconds per row (0: none)                     default 1
//   --latencies LIST   one-way link latencies, ms                            default 0,1,5
//   --qd LIST          queue depths                                          default 1,16
//   --modes LIST       unmirrored,sync,async,near-sync,near-sync-bound       default all
//   --size SIZE        each LUN                                              default 1G
//   --bound SIZE       near-sync: the byte bound the rows do not reach (low mark: half; below
//                      the writelog's 256M)                                  default 160M
//   --small-bound N    near-sync-bound: the entry bound the rows reach (low mark: half);
//                      auto: half the mean backlog of the async row, >= 2   default auto
//   --sample-ms MS     backlog sampling interval                             default 100
//   --no-fsync         arrays with sync: false (no fdatasync of metadata, bitmaps, journal
//                      or flushes); default is what `sanbox up` runs: fsync on
//   --secondary-process  bravo (the secondary) in a child process with its own event loop;
//                      default: in this process, like alpha, so its receiver's and apply work
//                      shares alpha's event loop (a cost a real remote array would not add)
//   --emulator-process  the link emulator in a child process too, as `sanbox up` runs it (in its
//                      supervisor); default: in this process, with alpha
//   --cpu-prof IDS     CPU-profile the measured pass of these rows (ids as in the JSON, e.g.
//                      async-0ms-qd1) through node:inspector: a .cpuprofile under
//                      bench/results/ and the top functions by self time on stderr
//   --dir DIR          where the arrays go                                   default os.tmpdir()
//   --json             the whole result as JSON on stdout (progress stays on stderr)
//   --smoke            CI: 1 s rows (0.5 s warm-up), latencies 0,1, QD1, 256M LUNs
//   --from FILE        no run: the tables and the chart (FILE with .svg) again from a result file
// SANBOX_DIST=DIR loads the arrays from another build than the repo's dist/ (e.g. of a clean
// checkout; a file COMMIT beside DIR names its commit in the results).
// Every run writes bench/results/latency-<timestamp>.json and .svg (p50 per mode and latency).
// Exits non-zero only when the benchmark itself failed (fio error, a group that went to bypass
// or never drained, a sync mirror that fractured), never on slow numbers.
import { mkdtempSync, rmSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import { REPO, setProgram, die, log, readHelp, parseSize, fmtBytes, until, tryExec, table } from './lib/common.mjs';
import { runFio, summarizeWrites, randWriteArgs, killChildren } from './lib/fio.mjs';
import { loadDist, makeLab, createMirror, secondaryOf, probeRtt } from './lib/lab.mjs';
import { groupedBarsSvg } from './lib/svg.mjs';
import { applyHaltPoll, machineFacts, machineText } from './lib/machine.mjs';

setProgram('bench-latency');

const MODES = ['unmirrored', 'sync', 'async', 'near-sync', 'near-sync-bound'];
/** Goal 1: async p50 <= (1 + ASYNC_PCT/100) x unmirrored p50; goal 2: |near-sync / async - 1| <= EQUAL_PCT/100. */
const ASYNC_PCT = 15;
const EQUAL_PCT = 10;
/** Goal 3 (issue 18 goal 2): sync p50 at QD1 <= (1 + SYNC_PCT/100) x (unmirrored p50 + the emulator's measured round trip); at 0 ms, sync QD16 IOPS >= SYNC_IOPS x unmirrored. */
const SYNC_PCT = 10;
const SYNC_IOPS = 0.5;

// ---------- options ----------

function parseArgs(argv) {
  const o = {
    runtime: 5,
    warmup: 1,
    latencies: [0, 1, 5],
    qds: [1, 16],
    modes: [...MODES],
    size: '1G',
    bound: '160M',
    smallBound: 'auto',
    sampleMs: 100,
    fsync: true,
    cpuProf: [],
    dir: tmpdir(),
    json: false,
    smoke: false,
    secondaryProcess: false,
    emulatorProcess: false,
  };
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
      case '--modes': o.modes = list(); break;
      case '--size': o.size = String(val()); break;
      case '--bound': o.bound = String(val()); break;
      case '--small-bound': { const v = String(val()); o.smallBound = v === 'auto' ? v : Number(v); break; }
      case '--sample-ms': o.sampleMs = Number(val()); break;
      case '--no-fsync': o.fsync = false; break;
      case '--cpu-prof': o.cpuProf = list(); break;
      case '--dir': o.dir = String(val()); break;
      case '--json': o.json = true; break;
      case '--smoke': o.smoke = true; break;
      case '--from': o.from = String(val()); break;
      case '--secondary-process': o.secondaryProcess = true; break;
      case '--emulator-process': o.emulatorProcess = true; break;
      case '-h': case '--help':
        process.stdout.write(readHelp(import.meta.url));
        process.exit(0);
        break;
      default:
        die(`unknown option ${a} (try --help)`);
    }
  }
  if (o.smoke) {
    // explicit options still win
    if (!set.has('--runtime')) o.runtime = 1;
    if (!set.has('--warmup')) o.warmup = 0.5;
    if (!set.has('--latencies')) o.latencies = [0, 1];
    if (!set.has('--qd')) o.qds = [1];
    if (!set.has('--size')) o.size = '256M';
  }
  if (!(o.runtime > 0)) die('--runtime must be a positive number of seconds');
  if (!(o.warmup >= 0)) die('--warmup must be >= 0');
  if (!o.latencies.length || o.latencies.some((x) => !(x >= 0))) die('--latencies: non-negative numbers of ms');
  if (!o.qds.length || o.qds.some((x) => !Number.isInteger(x) || x < 1)) die('--qd: positive integers');
  if (!o.modes.length || o.modes.some((m) => !MODES.includes(m))) die(`--modes: some of ${MODES.join(',')}`);
  o.modes = MODES.filter((m) => o.modes.includes(m)); // table order
  if (o.smallBound !== 'auto' && (!Number.isInteger(o.smallBound) || o.smallBound < 2)) die('--small-bound: auto or an integer >= 2 (entries)');
  if (!(o.sampleMs >= 5)) die('--sample-ms must be >= 5');
  o.sizeBytes = parseSize(o.size, 1024);
  o.boundBytes = parseSize(o.bound, 1024);
  if (!(o.boundBytes >= 2)) die('--bound must be at least 2 bytes');
  return o;
}

// ---------- the configurations ----------

/** LUN, mirror and group of each mode (alpha's LUN; bravo has the same LUN name as secondary). */
function configs(o) {
  const all = {
    unmirrored: { mode: 'unmirrored', lun: 'plain', label: 'unmirrored' },
    sync: { mode: 'sync', lun: 'msync', mirror: 'm-sync', label: 'sync mirror' },
    async: { mode: 'async', lun: 'masync', mirror: 'm-async', group: 'g-async', attributes: { mode: 'asynchronous' }, label: 'async group' },
    'near-sync': {
      mode: 'near-sync', lun: 'mns', mirror: 'm-ns', group: 'g-ns',
      attributes: { mode: 'near-synchronous', nearSync: { maxEntries: 0, maxBytes: o.boundBytes, lowEntries: 0, lowBytes: Math.floor(o.boundBytes / 2) } },
      bound: { entries: 0, bytes: o.boundBytes },
      label: 'near-sync',
    },
    'near-sync-bound': {
      // auto: created with 16 entries, set before each row (setAttributes)
      mode: 'near-sync-bound', lun: 'mnsb', mirror: 'm-nsb', group: 'g-nsb',
      attributes: { mode: 'near-synchronous', nearSync: entryBound(o.smallBound === 'auto' ? 16 : o.smallBound) },
      bound: { entries: o.smallBound === 'auto' ? 16 : o.smallBound, bytes: 0 },
      auto: o.smallBound === 'auto',
      label: 'near-sync small bound',
    },
  };
  return o.modes.map((m) => all[m]);
}

const boundDesc = (b) => (b.entries ? `${b.entries} entries` : fmtBytes(b.bytes));
/** "near-sync 64M (not reached)" */
const rowName = (r) => (r.bound ? `near-sync ${boundDesc(r.bound)} (${r.boundReached ? 'reached' : 'not reached'})` : r.label);
const entryBound = (n) => ({ maxEntries: n, maxBytes: 0, lowEntries: Math.floor(n / 2), lowBytes: 0 });

// ---------- groups: state, backlog, internals ----------

/**
 * The primary side of group `name` (PrimaryGroup) through the driver's private map, for the
 * near-synchronous delay counters (writesDelayed, delayedMs are cumulative there; the view's
 * metrics carry them only per performance record). null when the compiled driver differs.
 */
function primaryGroup(lab, name) {
  const map = lab.node('alpha').groups?.groups;
  if (!(map instanceof Map)) return null;
  for (const g of map.values()) if (g?.record?.name === name) return g.primary ?? null;
  return null;
}

function delayCounters(lab, name) {
  const pg = primaryGroup(lab, name);
  return pg && typeof pg.writesDelayed === 'number' ? { writes: pg.writesDelayed, ms: pg.delayedMs } : null;
}

/**
 * The receiver's counters on bravo (records applied, batches) when bravo runs in this process,
 * else the primary's (records and transmissions sent).
 */
function receiverCounters(lab, name, secondaryProcess) {
  if (secondaryProcess) {
    const pg = primaryGroup(lab, name);
    return pg && typeof pg.sentBatches === 'number' ? { applied: pg.sentEntries, batches: pg.sentBatches } : null;
  }
  try {
    const r = lab.node('bravo')?.groups.get(name).receiver;
    return r ? { applied: r.applied, batches: r.batches } : null;
  } catch {
    return null;
  }
}

function groupReady(lab, name) {
  const v = lab.node('alpha').groups.get(name);
  return !v.record.bypass.on && v.senders.length > 0 && v.senders.every((s) => s.state === 'running') ? v : null;
}

/** Throws unless the group journals (not in bypass) and every sender runs. */
function checkGroup(lab, name, when) {
  const v = lab.node('alpha').groups.get(name);
  if (v.record.bypass.on) throw new Error(`group ${name} is in bypass (${v.record.bypass.reason}) ${when}: its writes were not journaled`);
  const bad = v.senders.filter((s) => s.state !== 'running');
  if (!v.senders.length || bad.length) throw new Error(`group ${name}: sender ${bad.map((s) => `${s.array} ${s.state}${s.lastError ? ` (${s.lastError})` : ''}`).join(', ') || 'missing'} ${when}`);
}

/** Polls the backlog every `ms` (the view's live gauges); stop() returns the maxima. */
function startSampler(lab, name, ms) {
  const node = lab.node('alpha');
  const s = { samples: 0, maxEntries: 0, meanEntries: 0, maxBytes: 0, maxLagMs: 0, maxPctwl: 0, bypass: false, senderNotRunning: false };
  let sum = 0;
  const take = () => {
    const v = node.groups.get(name);
    const m = v.metrics;
    s.samples++;
    if (m) {
      sum += m.entriesWaiting;
      s.meanEntries = sum / s.samples;
      s.maxEntries = Math.max(s.maxEntries, m.entriesWaiting);
      s.maxBytes = Math.max(s.maxBytes, m.writelogBytes);
      s.maxLagMs = Math.max(s.maxLagMs, m.oldestEntryAgeMs);
      s.maxPctwl = Math.max(s.maxPctwl, m.pctwl);
    }
    if (v.record.bypass.on) s.bypass = true;
    if (v.senders.some((x) => x.state !== 'running')) s.senderNotRunning = true;
  };
  take();
  const t = setInterval(take, ms);
  return { stop() { clearInterval(t); take(); return s; } };
}

/** ms until the group's journal is empty (polled every 2 ms), or throws after `limitMs`. */
async function drainTime(lab, name, limitMs = 120_000) {
  const node = lab.node('alpha');
  const t0 = performance.now();
  await until(() => node.groups.get(name).metrics?.entriesWaiting === 0, limitMs, `group ${name} to drain`, 2);
  return performance.now() - t0;
}

// ---------- CPU time ----------

const CLK_TCK = Number(tryExec('getconf', ['CLK_TCK'])) || 100;

/** CPU time (us) used so far by this process, the secondary's child process and the emulator's, if any. */
function cpuNow(lab) {
  const u = process.cpuUsage();
  return { self: u.user + u.system, child: processCpuUs(lab.running.bravo?.pid), emu: processCpuUs(lab.emu.pid) };
}

/** What the arrays' CPU figure adds up. */
function arraysCpuText(o) {
  const here = ['alpha', ...(o.secondaryProcess ? [] : ['bravo']), ...(o.emulatorProcess ? [] : ['the link emulator'])];
  const children = [...(o.secondaryProcess ? ["the secondary's process"] : []), ...(o.emulatorProcess ? ["the emulator's process"] : [])];
  return [`this process (${here.join(', ')})`, ...children].join(' + ');
}

/** utime + stime (us) of process `pid`; 0 without one. */
function processCpuUs(pid) {
  if (!pid) return 0;
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK; // utime, stime
  } catch {
    return 0; // gone
  }
}

/** The machine's CPU counters (/proc/stat, all CPUs; jiffies): busy, steal, total. null off Linux. */
function machineCpu() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
    const total = f.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
    return { busy: user + nice + system + irq + softirq, steal: steal || 0, total };
  } catch {
    return null;
  }
}

// ---------- CPU profile of a row ----------

async function startProfile() {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return session;
}

/** Stops the profiler, writes the profile, returns the top functions by self time. */
async function stopProfile(session, file) {
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  writeFileSync(file, JSON.stringify(profile));
  const dt = profile.timeDeltas ?? [];
  const byNode = new Map();
  for (let i = 0; i < (profile.samples ?? []).length; i++) byNode.set(profile.samples[i], (byNode.get(profile.samples[i]) ?? 0) + (dt[i] ?? 0));
  const total = [...byNode.values()].reduce((a, b) => a + b, 0) || 1;
  const agg = new Map();
  for (const n of profile.nodes) {
    const us = byNode.get(n.id) ?? 0;
    if (!us) continue;
    const cf = n.callFrame;
    const where = cf.url ? `${cf.url.replace(/^file:\/\//, '').replace(`${REPO}/`, '')}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'} ${where}`.trim();
    agg.set(key, (agg.get(key) ?? 0) + us);
  }
  const top = [...agg.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([fn, us]) => ({ fn, ms: us / 1000, pct: (100 * us) / total }));
  return { file, totalMs: total / 1000, top };
}

// ---------- the rows ----------

async function run(o, lab, out) {
  const cfgs = configs(o);
  const total = o.latencies.length * o.qds.length * cfgs.length;
  let n = 0;
  const stamp = out.stamp;
  for (const latencyMs of o.latencies) {
    await lab.emu.set({ latencyMs, bandwidth: 0 });
    if (cfgs.some((c) => c.mode === 'sync')) {
      // what the emulator alone delivers at this setting: a 4 KiB / 64-byte ping-pong through a second one
      out.emuRttUs[latencyMs] = await probeRtt(out.lib, latencyMs, latencyMs >= 5 ? 40 : 100, { emulatorProcess: o.emulatorProcess });
      log(`  emulator round trip at ${latencyMs} ms one way: p50 ${out.emuRttUs[latencyMs].toFixed(0)} us (nominal ${2 * latencyMs * 1000} us)`);
    }
    for (const qd of o.qds) {
      for (const c of cfgs) {
        n++;
        const id = `${c.mode}-${latencyMs}ms-qd${qd}`;
        const uri = lab.uri(c.lun);
        const pre = async (when) => {
          if (c.mirror && !c.group) {
            const img = secondaryOf(lab, c.mirror);
            if (img.fractured || img.link !== 'connected') throw new Error(`mirror ${c.mirror}: the secondary is ${img.fractured ? 'fractured' : img.link} ${when}`);
          }
          if (c.group) {
            checkGroup(lab, c.group, when);
            await drainTime(lab, c.group);
          }
        };
        let bound = c.bound ?? null;
        if (c.auto) {
          // half the mean backlog of the async row of this latency and QD (at least 2 entries)
          const a = out.rows.find((r) => r.mode === 'async' && r.latencyMs === latencyMs && r.qd === qd);
          const entries = a ? Math.max(2, Math.floor(a.backlog.meanEntries / 2)) : 16;
          await lab.node('alpha').groups.setAttributes(c.group, { nearSync: entryBound(entries) });
          bound = { entries, bytes: 0 };
        }
        const label = `[${n}/${total}] link ${latencyMs} ms, QD${qd}, ${bound ? `near-sync, bound ${boundDesc(bound)}` : c.label}`;
        await pre(`before ${label}`);
        if (o.warmup > 0) {
          await runFio(randWriteArgs(uri, qd, o.sizeBytes, o.warmup), { label: `${label} warm-up`, seconds: o.warmup });
          await pre(`after the warm-up of ${label}`);
        }
        const t = performance.now();
        const sampler = c.group ? startSampler(lab, c.group, o.sampleMs) : null;
        const delays0 = c.group ? delayCounters(lab, c.group) : null;
        const recv0 = c.group ? receiverCounters(lab, c.group, o.secondaryProcess) : null;
        const prof = o.cpuProf.includes(id) ? await startProfile() : null;
        let fio;
        const cpu0 = cpuNow(lab);
        const m0 = machineCpu();
        const tf = performance.now();
        try {
          fio = await runFio(randWriteArgs(uri, qd, o.sizeBytes, o.runtime), { label, seconds: o.runtime });
        } finally {
          if (prof && !fio) await prof.post('Profiler.stop').catch(() => undefined);
        }
        const cpu1 = cpuNow(lab);
        const m1 = machineCpu();
        const fioWallUs = (performance.now() - tf) * 1000;
        // fio has exited: the backlog maxima, the delay counters, then the time to drain
        const backlog = sampler?.stop();
        const delays1 = c.group ? delayCounters(lab, c.group) : null;
        const drainMs = c.group ? await drainTime(lab, c.group) : null;
        const recv1 = c.group ? receiverCounters(lab, c.group, o.secondaryProcess) : null;
        const profile = prof ? await stopProfile(prof, join(out.dir, `latency-${stamp}-${id}.cpuprofile`)) : null;
        const s = summarizeWrites(fio);
        const row = { id, mode: c.mode, label: c.label, latencyMs, qd, lun: c.lun, ...s };
        // CPU of the arrays (this process, and the secondary's child process if any) while fio ran
        // (fio's start-up and exit included: a little high), per write and as % of one core
        const job = fio.jobs[0];
        const arraysUs = cpu1.self - cpu0.self + (cpu1.child - cpu0.child) + (cpu1.emu - cpu0.emu);
        row.cpu = {
          arraysPct: (100 * arraysUs) / fioWallUs,
          primaryPct: (100 * (cpu1.self - cpu0.self)) / fioWallUs,
          secondaryProcessPct: lab.running.bravo?.pid ? (100 * (cpu1.child - cpu0.child)) / fioWallUs : null,
          emulatorProcessPct: lab.emu.pid ? (100 * (cpu1.emu - cpu0.emu)) / fioWallUs : null,
          arraysUsPerWrite: arraysUs / s.ios,
          fioPct: (job.usr_cpu ?? 0) + (job.sys_cpu ?? 0),
          // the whole machine (all CPUs): busy and stolen by the hypervisor, % of its CPU time
          machineBusyPct: m0 && m1 && m1.total > m0.total ? (100 * (m1.busy - m0.busy)) / (m1.total - m0.total) : null,
          stealPct: m0 && m1 && m1.total > m0.total ? (100 * (m1.steal - m0.steal)) / (m1.total - m0.total) : null,
        };
        if (c.group) {
          row.backlog = backlog;
          row.bound = bound;
          row.drainMs = drainMs;
          // records per transmission the secondary applied (measured pass and drain)
          row.receiver = recv0 && recv1 ? { records: recv1.applied - recv0.applied, batches: recv1.batches - recv0.batches } : null;
          if (delays0 && delays1) row.delayed = { writes: delays1.writes - delays0.writes, ms: delays1.ms - delays0.ms };
          else row.delayed = null;
          if (bound) {
            // reached: some host write waited at the bound (or, without the counters, the sampled backlog got there)
            row.boundReached = row.delayed ? row.delayed.writes > 0 : (bound.entries > 0 && backlog.maxEntries >= bound.entries) || (bound.bytes > 0 && backlog.maxBytes >= bound.bytes);
          }
          if (backlog.bypass) throw new Error(`group ${c.group} went to bypass during ${label}: its writes were not all journaled`);
          checkGroup(lab, c.group, `after ${label}`);
        } else if (c.mirror) {
          const img = secondaryOf(lab, c.mirror);
          row.secondary = { state: img.state, fractured: img.fractured, link: img.link };
          if (img.fractured || img.link !== 'connected') throw new Error(`mirror ${c.mirror}: the secondary was ${img.fractured ? 'fractured' : img.link} during ${label} (writes were not mirrored)`);
        }
        if (profile) row.profile = profile;
        row.wallS = (performance.now() - t) / 1000;
        out.rows.push(row);
        let line = `${label}: ${s.iops.toFixed(0)} IOPS, p50 ${s.p50us.toFixed(1)} us, p99 ${s.p99us.toFixed(1)} us`;
        if (row.backlog) {
          line += `; backlog max ${row.backlog.maxEntries} entries / ${fmtBytes(row.backlog.maxBytes)}, lag max ${row.backlog.maxLagMs.toFixed(0)} ms, drained in ${row.drainMs.toFixed(0)} ms`;
          if (row.delayed) line += `, ${row.delayed.writes} writes waited (${row.delayed.ms.toFixed(0)} ms)`;
        }
        log(line);
        if (profile) {
          log(`  CPU profile of the measured pass: ${profile.file} (${profile.totalMs.toFixed(0)} ms sampled); top self time:`);
          for (const f of profile.top.slice(0, 15)) log(`    ${f.pct.toFixed(1).padStart(5)}%  ${f.ms.toFixed(0).padStart(6)} ms  ${f.fn}`);
        }
      }
    }
  }
  await lab.emu.set({ latencyMs: 0 });
}

// ---------- analysis, tables, chart ----------

function analyze(res) {
  const rows = res.rows;
  const get = (mode, l, qd) => rows.find((r) => r.mode === mode && r.latencyMs === l && r.qd === qd);
  for (const r of rows) {
    const base = get('unmirrored', r.latencyMs, r.qd);
    if (base && base.p50us > 0) {
      r.vsUnmirrored = { p50: r.p50us / base.p50us, p99: r.p99us / base.p99us, iops: r.iops / base.iops };
    }
  }
  const goals = [];
  const g1 = { goal: `async p50 within ${ASYNC_PCT}% of unmirrored at every latency`, checks: [] };
  const g2 = { goal: 'near-sync equal to async until the bound is reached', checks: [] };
  for (const l of res.options.latencies) for (const qd of res.options.qds) {
    const u = get('unmirrored', l, qd);
    const a = get('async', l, qd);
    const ns = get('near-sync', l, qd);
    if (u && a) {
      const ratio = a.p50us / u.p50us;
      g1.checks.push({ latencyMs: l, qd, asyncP50: a.p50us, unmirroredP50: u.p50us, ratio, pass: ratio <= 1 + ASYNC_PCT / 100 });
    }
    if (a && ns) {
      const ratio = ns.p50us / a.p50us;
      const reached = ns.boundReached === true;
      g2.checks.push({ latencyMs: l, qd, nearSyncP50: ns.p50us, asyncP50: a.p50us, ratio, boundReached: reached, pass: !reached && Math.abs(ratio - 1) <= EQUAL_PCT / 100 });
    }
  }
  const g3 = { goal: `sync costs only the round trip: QD1 p50 <= ${(1 + SYNC_PCT / 100).toFixed(2)}x (unmirrored p50 + emulator round trip); 0 ms QD16 IOPS >= ${SYNC_IOPS}x unmirrored`, checks: [] };
  for (const l of res.options.latencies) for (const qd of res.options.qds) {
    const u = get('unmirrored', l, qd);
    const sy = get('sync', l, qd);
    const rtt = res.emuRttUs?.[l];
    if (!u || !sy) continue;
    if (qd === 1 && rtt !== undefined) {
      const target = u.p50us + rtt;
      g3.checks.push({ kind: 'p50', latencyMs: l, qd, syncP50: sy.p50us, unmirroredP50: u.p50us, emuRttUs: rtt, target, ratio: sy.p50us / target, pass: sy.p50us <= (1 + SYNC_PCT / 100) * target });
    }
    if (qd === 16 && l === 0) g3.checks.push({ kind: 'iops', latencyMs: l, qd, syncIops: sy.iops, unmirroredIops: u.iops, ratio: sy.iops / u.iops, pass: sy.iops >= SYNC_IOPS * u.iops });
  }
  for (const g of [g1, g2, g3]) {
    g.result = g.checks.length ? (g.checks.every((c) => c.pass) ? 'PASS' : 'MISS') : 'n/a';
    goals.push(g);
  }
  res.goals = goals;
}


function report(res) {
  const o = res.options;
  const rows = res.rows;
  const x = (v) => (v === undefined ? '' : `${v.toFixed(2)}x`);
  let s = `\n4k random writes, fio nbd engine, ${o.runtime} s per row after ${o.warmup} s warm-up, ${fmtBytes(o.sizeBytes)} LUNs, fsync ${o.fsync ? 'on' : 'off'}, secondary array ${o.secondaryProcess ? 'in a child process' : 'in the same process'}, link emulator ${o.emulatorProcess ? 'in a child process' : 'in the same process'}, ${machineText(res.versions?.machine)}; `;
  s += `link latency one way (round trip 2x); "x unm" = ratio to the unmirrored row of the same latency and QD\n\n`;
  const head = ['link', 'mode'];
  for (const qd of o.qds) head.push(`QD${qd} IOPS`, `QD${qd} p50 us`, `QD${qd} p99 us`, `p50 x unm`, `IOPS x unm`);
  const body = [];
  const modes = [...new Set(rows.map((r) => r.mode))];
  for (const l of o.latencies) for (const m of modes) {
    const rs = o.qds.map((qd) => rows.find((r) => r.mode === m && r.latencyMs === l && r.qd === qd));
    const any = rs.find(Boolean);
    if (!any) continue;
    // near-sync: the bound (per QD when it differs) and whether it was reached
    let name = any.label;
    if (any.bound) {
      const present = rs.filter(Boolean);
      const bounds = [...new Set(present.map((r) => boundDesc(r.bound)))];
      const reached = [...new Set(present.map((r) => (r.boundReached ? 'reached' : 'not reached')))];
      const perQd = (f) => rs.map((r, i) => (r ? `QD${o.qds[i]} ${f(r)}` : null)).filter(Boolean).join(', ');
      name = `near-sync ${bounds.length === 1 ? bounds[0] : perQd((r) => boundDesc(r.bound))}`;
      name += reached.length === 1 ? ` (${reached[0]})` : ` (${perQd((r) => (r.boundReached ? 'reached' : 'not reached'))})`;
    }
    const cells = [`${l} ms`, name];
    for (const r of rs) {
      if (!r) cells.push('', '', '', '', '');
      else cells.push(r.iops.toFixed(0), r.p50us.toFixed(1), r.p99us.toFixed(1), r.mode === 'unmirrored' ? '1.00x' : x(r.vsUnmirrored?.p50), r.mode === 'unmirrored' ? '1.00x' : x(r.vsUnmirrored?.iops));
    }
    body.push(cells);
  }
  s += table(head, body, 2);
  const grp = rows.filter((r) => r.backlog);
  if (grp.length) {
    s += `\nBacklog of the group rows (sampled every ${o.sampleMs} ms during the measured pass; lag = age of the oldest unacknowledged entry; drain = fio exit to an empty journal; waited = host writes held at the near-sync bound)\n\n`;
    s += table(['link', 'mode', 'QD', 'max entries', 'max writelog bytes', 'max lag ms', 'drain ms', 'waited writes', 'waited ms (sum)', 'records/batch'],
      grp.map((r) => [`${r.latencyMs} ms`, rowName(r), String(r.qd), String(r.backlog.maxEntries), fmtBytes(r.backlog.maxBytes), r.backlog.maxLagMs.toFixed(0), r.drainMs.toFixed(0),
        r.delayed ? String(r.delayed.writes) : '?', r.delayed ? r.delayed.ms.toFixed(0) : '?', r.receiver?.batches ? (r.receiver.records / r.receiver.batches).toFixed(1) : '?']), 2);
    s += 'records/batch: records the secondary applied (with --secondary-process: the primary sent) per transmission (each transmission: its writes, a flush of the LUN and of the sequence file, then the ack).\n';
  }
  if (rows.some((r) => r.cpu)) {
    s += `\nCPU while fio ran (% of one core, except machine busy/steal: % of all CPUs, steal = taken by the hypervisor; arrays = ${arraysCpuText(o)}; the machine has ${res.versions.cpus} CPUs)\n\n`;
    const head2 = ['link', 'mode'];
    for (const qd of o.qds) head2.push(`QD${qd} arrays CPU %`, `QD${qd} CPU us/write`, `QD${qd} fio CPU %`, `QD${qd} machine busy/steal %`);
    const body2 = [];
    for (const l of o.latencies) for (const m of modes) {
      const rs = o.qds.map((qd) => rows.find((r) => r.mode === m && r.latencyMs === l && r.qd === qd));
      const any = rs.find(Boolean);
      if (!any) continue;
      const cells = [`${l} ms`, any.bound ? `near-sync ${[...new Set(rs.filter(Boolean).map((r) => boundDesc(r.bound)))].join(' / ')}` : any.label];
      const pct = (v) => (typeof v === 'number' ? v.toFixed(0) : '?');
      for (const r of rs) cells.push(r?.cpu ? r.cpu.arraysPct.toFixed(0) : '', r?.cpu ? r.cpu.arraysUsPerWrite.toFixed(1) : '', r?.cpu ? r.cpu.fioPct.toFixed(0) : '', r?.cpu ? `${pct(r.cpu.machineBusyPct)} / ${pct(r.cpu.stealPct)}` : '');
      body2.push(cells);
    }
    s += table(head2, body2, 2);
  }
  s += '\nGoals\n\n';
  for (const g of res.goals) {
    s += `${g.result.padEnd(4)}  ${g.goal}\n`;
    for (const c of g.checks) {
      if (c.kind === 'p50') s += `        link ${c.latencyMs} ms QD${c.qd}: sync p50 ${c.syncP50.toFixed(1)} us = ${c.ratio.toFixed(2)}x (unmirrored ${c.unmirroredP50.toFixed(1)} + emulator round trip ${c.emuRttUs.toFixed(0)} = ${c.target.toFixed(0)} us) (limit ${(1 + SYNC_PCT / 100).toFixed(2)}x) ${c.pass ? 'PASS' : 'MISS'}\n`;
      else if (c.kind === 'iops') s += `        link ${c.latencyMs} ms QD${c.qd}: sync ${c.syncIops.toFixed(0)} IOPS = ${c.ratio.toFixed(2)}x unmirrored ${c.unmirroredIops.toFixed(0)} (at least ${SYNC_IOPS}x) ${c.pass ? 'PASS' : 'MISS'}\n`;
      else if (c.unmirroredP50 !== undefined) s += `        link ${c.latencyMs} ms QD${c.qd}: async p50 ${c.asyncP50.toFixed(1)} us = ${c.ratio.toFixed(2)}x unmirrored ${c.unmirroredP50.toFixed(1)} us (limit ${(1 + ASYNC_PCT / 100).toFixed(2)}x) ${c.pass ? 'PASS' : 'MISS'}\n`;
      else s += `        link ${c.latencyMs} ms QD${c.qd}: near-sync p50 ${c.nearSyncP50.toFixed(1)} us = ${c.ratio.toFixed(2)}x async ${c.asyncP50.toFixed(1)} us (equal: within ${EQUAL_PCT}%)${c.boundReached ? ', but its bound was reached' : ''} ${c.pass ? 'PASS' : 'MISS'}\n`;
    }
  }
  return s;
}

function chart(res) {
  const o = res.options;
  const modes = [...new Set(res.rows.map((r) => r.mode))];
  const labels = modes.map((m) => {
    const rs = res.rows.filter((r) => r.mode === m);
    if (!rs[0].bound) return rs[0].label;
    const bounds = [...new Set(rs.map((r) => boundDesc(r.bound)))];
    const reached = rs.filter((r) => r.boundReached).length;
    return `near-sync, bound ${bounds.length <= 3 ? bounds.join(' / ') : 'per row'} (reached in ${reached}/${rs.length} rows)`;
  });
  const panels = o.qds.map((qd) => ({
    title: `QD${qd}`,
    groups: o.latencies.map((l) => ({ label: `${l} ms`, values: modes.map((m) => res.rows.find((r) => r.mode === m && r.latencyMs === l && r.qd === qd)?.p50us ?? null) })),
  }));
  return groupedBarsSvg({
    title: '4k random write p50 by replication mode',
    subtitle: `fio nbd engine, ${o.runtime} s per row, fsync ${o.fsync ? 'on' : 'off'}${o.secondaryProcess ? ', secondary in its own process' : ''}${o.emulatorProcess ? ', emulator in its own process' : ''}, sanbox ${res.versions.sanbox}, ${res.started.slice(0, 16)}`,
    panels,
    series: labels,
    yLabel: 'p50 completion latency (µs)',
    xLabel: 'link latency, one way',
  });
}

// ---------- main ----------

let workDir = null;
let lab = null;
async function cleanup() {
  killChildren();
  if (lab) { const l = lab; lab = null; await l.close().catch(() => undefined); }
  if (workDir) { try { rmSync(workDir, { recursive: true, force: true }); } catch { /* ignore */ } workDir = null; }
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { log(`\nbench-latency: ${sig}, stopping`); killChildren(); if (workDir) rmSync(workDir, { recursive: true, force: true }); process.exit(130); });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.from) {
    let res;
    try {
      res = JSON.parse(readFileSync(o.from, 'utf8'));
    } catch (e) {
      die(`--from ${o.from}: ${e.message}`);
    }
    analyze(res);
    const svgFile = o.from.replace(/\.json$/, '') + '.svg';
    if (res.rows.length) writeFileSync(svgFile, chart(res));
    if (o.json) process.stdout.write(JSON.stringify(res, null, 2) + '\n');
    else process.stdout.write(report(res));
    log(`\nbench-latency: chart in ${svgFile}`);
    return;
  }
  const lib = await loadDist();
  mkdirSync(o.dir, { recursive: true });
  workDir = mkdtempSync(join(o.dir, 'sanbox-bench-latency-'));
  const resultsDir = join(REPO, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  let sanbox = tryExec('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']);
  if (lib.dir !== join(REPO, 'dist')) {
    try {
      sanbox = readFileSync(join(lib.dir, '..', 'COMMIT'), 'utf8').trim() || sanbox;
    } catch {
      sanbox = `${lib.dir} (repo at ${sanbox})`;
    }
  }
  applyHaltPoll('bench-latency', log, die);
  const versions = { fio: tryExec('fio', ['--version']), sanbox, dist: lib.dir, node: process.version, cpus: cpus().length, machine: machineFacts() };
  const cfgs = configs(o);
  const res = { started: started.toISOString(), smoke: o.smoke, options: { ...o, dir: undefined }, versions, loadavgStart: loadavg(), rows: [], emuRttUs: {}, goals: [], seconds: 0 };
  const rowsTotal = o.latencies.length * o.qds.length * cfgs.length;
  log(`bench-latency${o.smoke ? ' (smoke)' : ''}: arrays alpha + bravo${o.secondaryProcess ? ' (in a child process)' : ''}${o.emulatorProcess ? ', link emulator in a child process' : ''} in ${workDir}, fsync ${o.fsync ? 'on' : 'off'}; ${versions.fio}, sanbox ${versions.sanbox}, node ${versions.node}, ${versions.cpus} CPUs`);
  log(`bench-latency: ${rowsTotal} rows (${o.latencies.length} latencies x ${o.qds.length} QDs x ${cfgs.map((c) => c.mode).join(', ')}), about ${Math.ceil((rowsTotal * (o.runtime + o.warmup + 1.5)) / 60)} min`);
  if (loadavg()[0] > 1) log(`bench-latency: note: load average ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs: other work competes with the benchmark`);
  let failure = null;
  const out = { rows: res.rows, dir: resultsDir, stamp, emuRttUs: res.emuRttUs, lib };
  try {
    const luns = { alpha: cfgs.map((c) => ({ name: c.lun, size: o.sizeBytes })), bravo: cfgs.filter((c) => c.mirror).map((c) => ({ name: c.lun, size: o.sizeBytes })) };
    lab = await makeLab(lib, workDir, luns, o.fsync, { secondaryProcess: o.secondaryProcess, emulatorProcess: o.emulatorProcess });
    for (const c of cfgs.filter((x) => x.mirror)) await createMirror(lab, c.mirror, c.lun);
    const node = lab.node('alpha');
    for (const c of cfgs.filter((x) => x.group)) {
      await node.groups.create({ name: c.group, members: [c.mirror], attributes: c.attributes });
      // a group starts in bypass until its members' secondaries are in sync
      await until(() => groupReady(lab, c.group), 30_000, `group ${c.group}: out of bypass with its sender running`);
    }
    log(`bench-latency: mirrors ${cfgs.filter((c) => c.mirror).map((c) => c.mirror).join(', ')}${cfgs.some((c) => c.group) ? `; groups ${cfgs.filter((c) => c.group).map((c) => `${c.group} (${c.attributes.mode}${c.bound ? `, bound ${c.bound.entries ? `${c.bound.entries} entries` : fmtBytes(c.bound.bytes)}` : ''})`).join(', ')}` : ''}`);
    await run(o, lab, out);
  } catch (e) {
    failure = e;
  } finally {
    killChildren();
    if (lab) { const l = lab; lab = null; await l.close().catch(() => undefined); }
  }
  res.seconds = (Date.now() - started.getTime()) / 1000;
  res.loadavgEnd = loadavg();
  if (failure) {
    res.error = failure.stack ?? String(failure);
    log(`bench-latency: FAILED: ${res.error}`);
  }
  analyze(res);
  const file = join(resultsDir, `latency-${stamp}.json`);
  writeFileSync(file, JSON.stringify(res, null, 2) + '\n');
  let svgFile = null;
  if (res.rows.length) {
    svgFile = join(resultsDir, `latency-${stamp}.svg`);
    writeFileSync(svgFile, chart(res));
  }
  if (o.json) process.stdout.write(JSON.stringify(res, null, 2) + '\n');
  else process.stdout.write(report(res));
  log(`\nbench-latency: ${res.seconds.toFixed(0)} s; results in ${file}${svgFile ? `, chart in ${svgFile}` : ''}`);
  const t = performance.now();
  await cleanup();
  const rm = (performance.now() - t) / 1000;
  if (rm > 2) log(`bench-latency: removed the arrays' images in ${rm.toFixed(0)} s`);
  process.exit(res.error ? 1 : 0);
}

main().catch(async (e) => {
  log(`bench-latency: ${e.stack ?? e.message}`);
  await cleanup();
  process.exit(1);
});
