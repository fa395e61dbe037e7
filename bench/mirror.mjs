#!/usr/bin/env node
// Remote-mirror benchmark: what synchronous mirroring costs a host write, and how fast a
// fractured secondary catches up. Two real arrays (alpha, bravo) in this process, each with its
// remote-link port, joined by a real LinkEmulator (a TCP proxy that delays and throttles), the
// way test/support/mirror-lab.ts does it; everything from the compiled dist/ (npm run build first).
//
// 1. Latency: fio's nbd engine (4k random writes, QD1 and QD16) against LUNs that alpha serves
//    over NBD: an UNMIRRORED LUN, then a SYNCHRONOUSLY MIRRORED LUN (alpha -> bravo) with the
//    link's one-way latency at each of --latencies (set on both directions, so the round trip
//    is 2x). Each row first runs a --warmup pass (the first write to a region also persists the
//    write-intent log), then --runtime seconds measured. For each mirrored row: the target
//    "unmirrored p50 + link round trip", the overhead over it, and whether it meets the goal
//    sync p50 <= 1.10 x (unmirrored p50 + RTT). "emu RTT" is a 4 KiB ping-pong measured through
//    a second emulator with the same latency (what the emulator's timers actually deliver).
// 2. Resync: a mirrored --resync-size LUN, the link capped at --bandwidth bytes/s (both
//    directions), the mirror's syncRate above the cap. The secondary is fractured, --dirty
//    percent of its regions (spread evenly) are written through alpha's host device, then
//    `synchronize`; the time until `mirror.resync-done`, the bytes it moved, the bytes that
//    crossed the link (emulator counters), the rate and its ratio to the cap (goal >= 90%), and
//    the check bytes moved == dirty regions x region size.
// 3. Resync under host load (bench/lib/adaptive.mjs): host writes to a mirror while it resyncs,
//    with the fixed and the adaptive resync controller, against the host alone: the host's p99
//    and the resync's share of the bandwidth the host leaves (issue 18, goal 4).
// 4. Unclean stop (bench/lib/unclean.mjs): the primary array in its own process, SIGKILLed after
//    --unclean-writes of scattered 4 KiB writes over an --unclean-size LUN full of data (the
//    write-intent log marks 1 MiB extents); restarted, resynced with checksums off (resyncChecksums
//    never) and on (auto), from fresh arrays with the same writes: bytes that differ (image files
//    compared), bytes on the link, their ratio (goal: <= 1.1x with checksums on), time. Two
//    scenarios: "link cut" (the secondary fractured during the writes) and "link up" (the kill and
//    a link reset at once: only writes in flight differ).
//
//   npm run bench:mirror [-- --runtime 5 --latencies 0,1,5 --bandwidth 100M --json]
//
// Options:
//   --runtime S        seconds measured per latency row               default 5
//   --warmup S         warm-up seconds per latency row (0: none)      default 2
//   --latencies LIST   one-way link latencies, ms                     default 0,1,5
//   --qd LIST          queue depths                                   default 1,16
//   --no-unmirrored    only the mirrored rows (no targets; e.g. to profile them alone)
//   --size SIZE        latency LUNs (unmirrored and mirrored)         default 1G
//   --bandwidth RATE   link cap for the resync, bytes/s (K/M/G: 1000s) default 100M
//   --sync-rate RATE   the mirror's syncRate                          default 4 x --bandwidth
//   --resync-size SIZE the resync LUN                                 default 1G
//   --dirty LIST       percentages of the regions to dirty            default 1,10,100
//   --resync-repeat N  runs of each --dirty row, interleaved (1%, 10%, 100%, 1%, ...); the goal
//                      is judged on each percentage's median              default 1
//   --resync-latency MS one-way link latency during the resync        default 0
//   --resync-controller C  the resync mirror's syncController: adaptive or fixed  default adaptive
//   --resync-protect on|off  the resync mirror's protectResync (on: the secondary saves each
//                      region's old data to a snapshot before the resync overwrites it)  default on
//   --unclean-size SIZE  the unclean-stop LUN                        default 256M
//   --unclean-writes SIZE  scattered 4 KiB writes before the kill     default 8M
//   --unclean-latency MS one-way link latency during those writes    default 1
//   --adaptive-latency MS  resync under host load (bench/lib/adaptive.mjs): one-way latency  default 1
//   --adaptive-bandwidth RATE  its link cap                                      default 40M
//   --adaptive-qd N     the host's fio queue depth                                default 4
//   --adaptive-host SIZE  the span the host writes (in sync)                     default 64M
//   --adaptive-dirty SIZE  dirtied per row, resynced while fio runs              default 256M
//   --adaptive-repeat N  interleaved repeats (alone, fixed, adaptive)            default 2
//   --adaptive-protect on|off  the mirror's protectResync                        default on
//   --no-latency / --no-resync / --no-adaptive / --no-unclean   skip a section
//   --secondary-process  bravo (the secondary) in a child process with its own event loop (as a
//                      real remote array); default: in this process, like alpha
//   --emulator-process  the link emulator in a child process too, as `sanbox up` runs it (in its
//                      supervisor); default: in this process, with alpha (the unclean section
//                      keeps its own emulator here)
//   --no-fsync         arrays with sync: false (no fdatasync of metadata and bitmaps); default
//                      is what `sanbox up` runs: fsync on
//   --prefill          write the latency LUNs in full first (below the mirror layer, on both
//                      arrays, then flushed), so fio's writes never allocate blocks in the images
//   --region-size SIZE region size of the latency mirror's write-intent log (default: the
//                      driver's default, 64K)
//   --stages           also time the stages of each mirrored host write (write-intent log
//                      persist, local write, remote write, the whole hostModify) by wrapping
//                      the driver's methods; adds a little overhead; for analysis
//   --dir DIR          where the arrays go                            default os.tmpdir()
//   --json             the whole result as JSON on stdout (progress stays on stderr)
//   --smoke            CI: 1 s rows (0.5 s warm-up), latencies 0,1, resync 1% and 10% of 256M
// Every run also writes bench/results/mirror-<timestamp>.json. Exits non-zero only when the
// benchmark itself failed (fio error, a resync that never finished, wrong byte counts), never
// on slow numbers.
import { mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { REPO, MiB, setProgram, die, log, readHelp, parseSize, fmtBytes, until, tryExec, table } from './lib/common.mjs';
import { runFio, summarizeWrites, randWriteArgs, killChildren } from './lib/fio.mjs';
import { loadDist, makeLab, createMirror, secondaryOf, probeRtt } from './lib/lab.mjs';
import { benchProgress } from './lib/progress.mjs';
import { uncleanSection, uncleanReport } from './lib/unclean.mjs';
import { adaptiveSection, adaptiveReport, adaptiveLun, median, ADAPTIVE_DEFAULTS } from './lib/adaptive.mjs';

import { applyHaltPoll, machineFacts, machineText } from './lib/machine.mjs';

setProgram('bench-mirror');

// ---------- options ----------

/** An on|off option's value as a boolean; anything else ends the run. */
function onOff(name, value) {
  if (value !== 'on' && value !== 'off') die(`${name}: on or off`);
  return value === 'on';
}

function parseArgs(argv) {
  const o = {
    runtime: 5,
    warmup: 2,
    latencies: [0, 1, 5],
    qds: [1, 16],
    size: '1G',
    bandwidth: '100M',
    syncRate: null,
    resyncSize: '1G',
    dirty: [1, 10, 100],
    resyncRepeat: 1,
    resyncProtect: 'on',
    latency: true,
    resync: true,
    fsync: true,
    dir: tmpdir(),
    json: false,
    smoke: false,
    stages: false,
    prefill: false,
    regionSize: null,
    unmirrored: true,
    resyncLatency: 0,
    resyncController: 'adaptive',
    unclean: true,
    uncleanSize: '256M',
    uncleanWrites: '8M',
    uncleanLatency: 1,
    adaptive: true,
    secondaryProcess: false,
    emulatorProcess: false,
    ...ADAPTIVE_DEFAULTS,
  };
  const set = new Set();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => inline ?? argv[++i];
    const list = () => String(val()).split(',').filter(Boolean).map(Number);
    set.add(flag);
    switch (flag) {
      case '--runtime': o.runtime = Number(val()); break;
      case '--warmup': o.warmup = Number(val()); break;
      case '--latencies': o.latencies = list(); break;
      case '--qd': o.qds = list(); break;
      case '--size': o.size = String(val()); break;
      case '--bandwidth': o.bandwidth = String(val()); break;
      case '--sync-rate': o.syncRate = String(val()); break;
      case '--resync-size': o.resyncSize = String(val()); break;
      case '--dirty': o.dirty = list(); break;
      case '--resync-repeat': o.resyncRepeat = Number(val()); break;
      case '--resync-protect': o.resyncProtect = String(val()); break;
      case '--resync-latency': o.resyncLatency = Number(val()); break;
      case '--resync-controller': o.resyncController = String(val()); break;
      case '--no-latency': o.latency = false; break;
      case '--no-unmirrored': o.unmirrored = false; break;
      case '--no-resync': o.resync = false; break;
      case '--no-unclean': o.unclean = false; break;
      case '--unclean-size': o.uncleanSize = String(val()); break;
      case '--unclean-writes': o.uncleanWrites = String(val()); break;
      case '--unclean-latency': o.uncleanLatency = Number(val()); break;
      case '--no-adaptive': o.adaptive = false; break;
      case '--secondary-process': o.secondaryProcess = true; break;
      case '--emulator-process': o.emulatorProcess = true; break;
      case '--adaptive-latency': o.adaptiveLatency = Number(val()); break;
      case '--adaptive-bandwidth': o.adaptiveBandwidth = String(val()); break;
      case '--adaptive-qd': o.adaptiveQd = Number(val()); break;
      case '--adaptive-host': o.adaptiveHost = String(val()); break;
      case '--adaptive-dirty': o.adaptiveDirty = String(val()); break;
      case '--adaptive-repeat': o.adaptiveRepeat = Number(val()); break;
      case '--adaptive-protect': o.adaptiveProtect = String(val()); break;
      case '--no-fsync': o.fsync = false; break;
      case '--dir': o.dir = String(val()); break;
      case '--json': o.json = true; break;
      case '--smoke': o.smoke = true; break;
      case '--stages': o.stages = true; break;
      case '--prefill': o.prefill = true; break;
      case '--region-size': o.regionSize = parseSize(String(val()), 1024); break;
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
    if (!set.has('--size')) o.size = '256M';
    if (!set.has('--resync-size')) o.resyncSize = '256M';
    if (!set.has('--dirty')) o.dirty = [1, 10];
    if (!set.has('--unclean-size')) o.uncleanSize = '64M';
    if (!set.has('--unclean-writes')) o.uncleanWrites = '2M';
    if (!set.has('--adaptive-dirty')) o.adaptiveDirty = '96M';
    if (!set.has('--adaptive-repeat')) o.adaptiveRepeat = 1;
  }
  if (!(o.runtime > 0)) die('--runtime must be a positive number of seconds');
  if (!(o.warmup >= 0)) die('--warmup must be >= 0');
  if (!o.latencies.length || o.latencies.some((x) => !(x >= 0))) die('--latencies: non-negative numbers of ms');
  if (!o.qds.length || o.qds.some((x) => !Number.isInteger(x) || x < 1)) die('--qd: positive integers');
  if (!o.dirty.length || o.dirty.some((x) => !(x > 0 && x <= 100))) die('--dirty: percentages in (0, 100]');
  if (!Number.isInteger(o.resyncRepeat) || o.resyncRepeat < 1) die('--resync-repeat: a positive integer');
  o.sizeBytes = parseSize(o.size, 1024);
  o.resyncBytes = parseSize(o.resyncSize, 1024);
  o.uncleanBytes = parseSize(o.uncleanSize, 1024);
  o.uncleanWriteBytes = parseSize(o.uncleanWrites, 1024);
  o.bandwidthBps = parseSize(o.bandwidth, 1000);
  o.adaptiveBandwidthBps = parseSize(o.adaptiveBandwidth, 1000);
  o.resyncProtect = onOff('--resync-protect', o.resyncProtect);
  if (typeof o.adaptiveProtect === 'string') o.adaptiveProtect = onOff('--adaptive-protect', o.adaptiveProtect);
  o.adaptiveHostBytes = parseSize(o.adaptiveHost, 1024);
  o.adaptiveDirtyBytes = parseSize(o.adaptiveDirty, 1024);
  if (!(o.adaptiveBandwidthBps > 0) || !(o.adaptiveLatency >= 0) || !Number.isInteger(o.adaptiveQd) || o.adaptiveQd < 1 || !Number.isInteger(o.adaptiveRepeat) || o.adaptiveRepeat < 1) die('--adaptive-*: a positive bandwidth, a latency >= 0, positive integer QD and repeat');
  o.syncRateBps = o.syncRate ? parseSize(o.syncRate, 1000) : 4 * o.bandwidthBps;
  if (!(o.bandwidthBps > 0)) die('--bandwidth must be positive');
  if (!['adaptive', 'fixed'].includes(o.resyncController)) die('--resync-controller: adaptive or fixed');
  return o;
}

// ---------- --stages: time the driver's data path ----------

/**
 * Wraps DataPath.hostModify (the whole mirrored write below the NBD server), its local closure
 * and its remote request (sendRemote), and BitmapFile.persist / writeOnce (the write-intent log's
 * pwrite + fdatasync) to collect per-write stage times. Relies on the compiled driver's method
 * names; a driver that renamed them is reported, not fatal.
 */
function instrument(lib) {
  const rec = { writes: [], wilWrites: 0, wilWriteUs: 0, fractureWrites: 0 };
  const DP = lib.DataPath?.prototype;
  const BF = lib.BitmapFile?.prototype;
  if (!DP?.hostModify || !DP?.sendRemote || !BF?.persist || !BF?.writeOnce) return { ok: false, rec, reset() {} };
  const now = () => performance.now() * 1000;
  let hostPersist = null;
  const origPersist = BF.persist;
  BF.persist = function (...a) {
    const p = origPersist.apply(this, a);
    if (hostPersist && this.path.endsWith('wil.bitmap')) {
      const w = hostPersist;
      const t = now();
      p.then(() => { w.wilUs = now() - t; }, () => undefined);
    }
    return p;
  };
  const origWriteOnce = BF.writeOnce;
  BF.writeOnce = function (...a) {
    const wil = this.path.endsWith('wil.bitmap');
    const t = now();
    const p = origWriteOnce.apply(this, a);
    if (wil) { rec.wilWrites++; p.then(() => { rec.wilWriteUs += now() - t; }, () => undefined); }
    else rec.fractureWrites++;
    return p;
  };
  const origHost = DP.hostModify;
  let current = null; // the write whose remote request is being built (sendRemote runs in hostModify's tick)
  DP.hostModify = function (lunId, op, local) {
    const w = { t0: now(), fresh: false, wilUs: 0, localUs: 0, remoteUs: 0, totalUs: 0 };
    try {
      const e = this.records.entryOfLun(lunId);
      const bm = e?.primary?.wil?.bitmap;
      const rs = e?.db?.regionSize;
      if (bm && rs) w.fresh = bm.countRegions(op.offset, op.length) < Math.floor((op.offset + op.length - 1) / rs) - Math.floor(op.offset / rs) + 1;
    } catch { /* best effort */ }
    const l = () => { const t = now(); return local().finally(() => { w.localUs = now() - t; }); };
    hostPersist = w;
    current = w;
    let ret;
    try {
      ret = origHost.call(this, lunId, op, l);
    } finally {
      hostPersist = null;
    }
    return ret.finally(() => { if (current === w) current = null; w.totalUs = now() - w.t0; rec.writes.push(w); });
  };
  const origRemote = DP.sendRemote;
  DP.sendRemote = function (...a) {
    const w = current;
    const t = now();
    const p = origRemote.apply(this, a);
    if (w) p.finally(() => { w.remoteUs = now() - t; }).catch(() => undefined);
    return p;
  };
  // resync: each chunk's copy (block status, read, the write request and its reply) and the
  // time the syncRate limiter made it wait
  rec.chunks = [];
  rec.limiterWaits = [];
  const RS = lib.Resync?.prototype;
  const copyName = RS?.copy ? 'copy' : 'copyChunk'; // copyChunk: a build before batches of scattered chunks
  const origCopy = RS?.[copyName];
  if (origCopy) {
    RS[copyName] = function (...a) {
      const t = now();
      const c = a[2]; // (e, p, batch of chunks, run, stopped); copyChunk: (e, p, chunk, run, stopped)
      const bytes = Array.isArray(c) ? c.reduce((n, x) => n + x.length, 0) : (c?.length ?? 0);
      return origCopy.apply(this, a).finally(() => rec.chunks.push({ us: now() - t, bytes }));
    };
  }
  const RL = lib.RateLimiter?.prototype;
  if (RL?.take) {
    const origTake = RL.take;
    RL.take = function (...a) {
      const t = now();
      return origTake.apply(this, a).finally(() => rec.limiterWaits.push(now() - t));
    };
  }
  return {
    ok: true,
    rec,
    reset() { rec.writes = []; rec.wilWrites = 0; rec.wilWriteUs = 0; rec.fractureWrites = 0; rec.chunks = []; rec.limiterWaits = []; },
  };
}

function chunkSummary(rec) {
  const cs = rec.chunks;
  if (!cs.length) return null;
  const us = cs.map((c) => c.us).sort((a, b) => a - b);
  const w = [...rec.limiterWaits].sort((a, b) => a - b);
  return {
    chunks: cs.length,
    meanChunkBytes: cs.reduce((n, c) => n + c.bytes, 0) / cs.length,
    copyMeanUs: us.reduce((a, b) => a + b, 0) / us.length,
    copyP50Us: us[Math.floor(us.length / 2)],
    limiterWaitMeanUs: w.length ? w.reduce((a, b) => a + b, 0) / w.length : 0,
  };
}

function stageSummary(rec, seconds) {
  const ws = rec.writes;
  if (!ws.length) return null;
  const mean = (f, xs = ws) => (xs.length ? xs.reduce((n, w) => n + f(w), 0) / xs.length : 0);
  const p50 = (f, xs = ws) => { if (!xs.length) return 0; const v = xs.map(f).sort((a, b) => a - b); return v[Math.floor(v.length / 2)]; };
  const fresh = ws.filter((w) => w.fresh);
  const reuse = ws.filter((w) => !w.fresh);
  return {
    writes: ws.length,
    freshPct: (100 * fresh.length) / ws.length,
    wilWaitMeanUs: mean((w) => w.wilUs),
    wilWaitFreshP50Us: p50((w) => w.wilUs, fresh),
    localMeanUs: mean((w) => w.localUs),
    remoteMeanUs: mean((w) => w.remoteUs),
    remoteP50Us: p50((w) => w.remoteUs),
    hostModifyMeanUs: mean((w) => w.totalUs),
    hostModifyP50Us: p50((w) => w.totalUs),
    hostModifyFreshP50Us: p50((w) => w.totalUs, fresh),
    hostModifyReuseP50Us: p50((w) => w.totalUs, reuse),
    wilFileWritesPerS: rec.wilWrites / seconds,
    wilFileWriteMeanUs: rec.wilWrites ? rec.wilWriteUs / rec.wilWrites : 0,
  };
}

// ---------- section 1: latency ----------

async function latencySection(o, lab, lib, out, stages) {
  const configs = [...(o.unmirrored ? [{ id: 'unmirrored', lun: 'plain', latencyMs: null }] : []), ...o.latencies.map((l) => ({ id: `sync-${l}ms`, lun: 'lat', latencyMs: l }))];
  const rtt = {};
  for (const l of o.latencies) {
    rtt[l] = await probeRtt(lib, l, l >= 5 ? 40 : 100, { emulatorProcess: o.emulatorProcess });
    log(`  emulator round trip at ${l} ms one way: p50 ${rtt[l].toFixed(0)} us (nominal ${2 * l * 1000} us)`);
  }
  const total = o.qds.length * configs.length;
  let n = 0;
  for (const qd of o.qds) {
    let base = null;
    for (const c of configs) {
      n++;
      const label = `[${n}/${total}] 4k randwrite QD${qd} ${c.id === 'unmirrored' ? 'unmirrored' : `sync mirror, link ${c.latencyMs} ms`}`;
      if (c.latencyMs !== null) {
        await lab.emu.set({ latencyMs: c.latencyMs, bandwidth: 0 });
        const img = secondaryOf(lab, 'mlat');
        if (img.fractured || img.link !== 'connected') throw new Error(`mirror mlat: secondary is ${img.fractured ? 'fractured' : img.link} before ${label}`);
      }
      const uri = lab.uri(c.lun);
      if (o.warmup > 0) {
        log(`${label}: warm-up ${o.warmup} s ...`);
        await runFio(randWriteArgs(uri, qd, o.sizeBytes, o.warmup), { label: `${label} warm-up`, seconds: o.warmup });
      }
      log(`${label} ...`);
      stages?.reset();
      const s = summarizeWrites(await runFio(randWriteArgs(uri, qd, o.sizeBytes, o.runtime), { label, seconds: o.runtime }));
      const row = { qd, config: c.id, lun: c.lun, latencyMs: c.latencyMs, ...s };
      if (stages && c.latencyMs !== null) row.stages = stageSummary(stages.rec, o.runtime);
      if (c.latencyMs === null) base = s;
      else {
        const img = secondaryOf(lab, 'mlat');
        row.secondary = { state: img.state, fractured: img.fractured, link: img.link };
        if (img.fractured || img.link !== 'connected') throw new Error(`mirror mlat: the secondary was ${img.fractured ? 'fractured' : img.link} during ${label} (writes were not mirrored)`);
        row.rttUs = 2 * c.latencyMs * 1000;
        row.emuRttUs = rtt[c.latencyMs];
        if (base) {
          // issue 18 goal 2: unmirrored p50 + the round trip the emulator measurably delivers, + 10%
          row.targetUs = base.p50us + row.emuRttUs;
          row.overheadUs = s.p50us - row.targetUs;
          row.overheadPct = (100 * row.overheadUs) / row.targetUs;
          row.goalMet = s.p50us <= 1.1 * row.targetUs;
          row.iopsRatio = s.iops / base.iops;
        }
      }
      log(`  ${label}: ${s.iops.toFixed(0)} IOPS, p50 ${s.p50us.toFixed(1)} us, p99 ${s.p99us.toFixed(1)} us` +
        (row.targetUs !== undefined ? `, target ${row.targetUs.toFixed(0)} us, overhead ${row.overheadUs.toFixed(0)} us (${row.overheadPct.toFixed(0)}%)` : ''));
      out.push(row);
    }
  }
  await lab.emu.set({ latencyMs: 0 });
}

// ---------- section 2: resync ----------

/** Writes random data over `regions` (sorted region indexes) of `dev`, contiguous ones together (<= 1 MiB per write). */
async function dirtyRegions(dev, regions, rs) {
  const pool = randomBytes(8 * MiB);
  const runs = [];
  for (let i = 0; i < regions.length;) {
    let j = i + 1;
    while (j < regions.length && regions[j] === regions[j - 1] + 1 && (j - i + 1) * rs <= MiB) j++;
    runs.push([regions[i] * rs, (j - i) * rs]);
    i = j;
  }
  let next = 0;
  let poolOff = 0;
  const worker = async () => {
    while (next < runs.length) {
      const [off, len] = runs[next++];
      if (poolOff + len > pool.length) poolOff = 0;
      const data = pool.subarray(poolOff, poolOff + len);
      poolOff += 4096 + len; // a different slice each time
      await dev.write(off, data);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

async function resyncSection(o, lab, out, stages) {
  const a = lab.node('alpha');
  const dev = lab.hostDevice('alpha', 'rsync');
  const rs = a.get('mrs').record.regionSize;
  const nRegions = Math.ceil(o.resyncBytes / rs);
  await lab.emu.set({ latencyMs: o.resyncLatency, bandwidth: o.bandwidthBps });
  // repeats interleaved: the machine's drift over the section spreads over every percentage alike
  const runs = Array.from({ length: o.resyncRepeat }, (_, rep) => o.dirty.map((pct) => ({ pct, rep }))).flat();
  for (const [k, { pct, rep }] of runs.entries()) {
    const label = `[${k + 1}/${runs.length}] resync ${pct}% of ${fmtBytes(o.resyncBytes)}`;
    const count = Math.max(1, Math.round((nRegions * pct) / 100));
    // evenly spread: region floor(i * n / count)
    const regions = Array.from({ length: count }, (_, i) => Math.floor((i * nRegions) / count));
    await a.fracture('mrs');
    await until(() => secondaryOf(lab, 'mrs').fractured, 10_000, 'fracture');
    log(`${label}: fractured; writing ${count} regions (${fmtBytes(count * rs)}) through alpha's host device ...`);
    const tw = performance.now();
    await dirtyRegions(dev, regions, rs);
    const fl = secondaryOf(lab, 'mrs').fractureLog;
    log(`  dirtied in ${((performance.now() - tw) / 1000).toFixed(1)} s; fracture log: ${fl.regions} regions, ${fmtBytes(fl.bytes)}`);
    if (fl.regions !== count) throw new Error(`fracture log holds ${fl.regions} regions after dirtying ${count}`);

    let done = null;
    let failed = null;
    const progress = [];
    // the bar (or a sentence every few seconds in a log); every event stays in the results
    let total = count * rs;
    const meter = await benchProgress(`  ${label}`, total);
    const t0 = performance.now();
    const off = lab.onEvent((arr, e) => {
      if (arr !== 'alpha' || !String(e.mirrorId ?? '').startsWith('mrs-')) return;
      if (e.type === 'mirror.resync-progress') {
        const el = (performance.now() - t0) / 1000;
        progress.push({ t: el, bytesDone: e.bytesDone, bytesTotal: e.bytesTotal, rate: e.rate });
        total = e.bytesTotal;
        meter.update(Math.min(e.bytesDone, total), { total });
      } else if (e.type === 'mirror.resync-done') {
        done ??= { e, t: performance.now() };
      } else if (e.type === 'mirror.resync-stopped') {
        failed ??= e;
      }
    });
    stages?.reset();
    const before = (await lab.emu.status()).totals.bytes;
    log(`${label}: synchronize ...`);
    try {
      await a.synchronize('mrs');
      const limitMs = 60_000 + (count * rs * 3000) / o.bandwidthBps;
      await until(() => done || failed, limitMs, `mirror.resync-done (${label})`);
      meter.finish(failed ? 'failed' : 'done', failed ? undefined : Math.min(done.e.bytesDone, total)); // a mismatch is the row's to say
    } finally {
      meter.finish('failed'); // a wait that threw: the bar ends here, the error says why
      off();
    }
    if (failed) throw new Error(`resync stopped: ${JSON.stringify(failed)}`);
    const after = (await lab.emu.status()).totals.bytes;
    const seconds = (done.t - t0) / 1000;
    const expect = count * rs;
    const linkAB = after['a-to-b'] - before['a-to-b'];
    const linkBA = after['b-to-a'] - before['b-to-a'];
    const row = {
      pct,
      repeat: rep + 1,
      lunBytes: o.resyncBytes,
      regionSize: rs,
      regions: count,
      expectedBytes: expect,
      seconds,
      driverSeconds: done.e.seconds,
      bytesDone: done.e.bytesDone,
      bytesCopied: done.e.bytesCopied,
      bytesZeroed: done.e.bytesZeroed,
      linkBytes: { 'a-to-b': linkAB, 'b-to-a': linkBA },
      mbps: done.e.bytesDone / seconds / 1e6,
      linkMbps: linkAB / seconds / 1e6,
      capMbps: o.bandwidthBps / 1e6,
      ratio: linkAB / seconds / o.bandwidthBps,
      bytesOk: done.e.bytesDone === expect && done.e.bytesCopied === expect,
      progress,
    };
    row.goalMet = row.ratio >= 0.9;
    if (stages) row.stages = chunkSummary(stages.rec);
    log(`  ${label}: ${seconds.toFixed(2)} s, moved ${fmtBytes(row.bytesDone)} (copied ${fmtBytes(row.bytesCopied)}), link a->b ${fmtBytes(linkAB)}, ${row.mbps.toFixed(1)} MB/s = ${(100 * row.ratio).toFixed(0)}% of the cap${row.bytesOk ? '' : `  BYTES MISMATCH (expected ${expect})`}`);
    out.push(row);
    await until(() => { const i = secondaryOf(lab, 'mrs'); return i.state !== 'SYNCHRONIZING' && !i.resync && !i.fractured; }, 30_000, 'the image to leave SYNCHRONIZING');
  }
  await lab.emu.set({ latencyMs: 0, bandwidth: 0 });
}

function report(res) {
  let s = '';
  if (res.latency.length) {
    s += `\nSynchronous mirror, 4k random writes (fio nbd engine, ${res.options.runtime} s per row after ${res.options.warmup} s warm-up, ${fmtBytes(res.options.sizeBytes)} LUNs, fsync ${res.options.fsync ? 'on' : 'off'})\n\n`;
    const head = ['row', 'IOPS', 'p50 us', 'p99 us', 'RTT us', 'emu RTT us', 'target p50 us', 'overhead us', 'overhead %', 'goal'];
    const rows = res.latency.map((r) => {
      const name = `QD${r.qd} ${r.latencyMs === null ? 'unmirrored' : `sync, link ${r.latencyMs} ms`}`;
      const m = r.latencyMs !== null && r.targetUs !== undefined;
      return [name, r.iops.toFixed(0), r.p50us.toFixed(1), r.p99us.toFixed(1),
        r.latencyMs === null ? '' : String(r.rttUs), r.latencyMs === null ? '' : r.emuRttUs.toFixed(0),
        m ? r.targetUs.toFixed(0) : '', m ? r.overheadUs.toFixed(0) : '', m ? `${r.overheadPct.toFixed(0)}%` : '', m ? (r.goalMet ? 'yes' : 'NO') : ''];
    });
    s += table(head, rows);
    s += '\nRTT = 2 x one-way link latency; emu RTT = p50 of a 4 KiB/64 B ping-pong through a link emulator at that latency (no arrays);\n';
    s += 'target = unmirrored p50 (same QD) + emu RTT; goal: sync p50 <= 1.10 x target.\n';
    const st = res.latency.filter((r) => r.stages);
    if (st.length) {
      s += '\nStages of the mirrored host writes (--stages; us; fresh = the write had to persist the write-intent log first)\n\n';
      const h2 = ['row', 'writes', 'fresh %', 'WIL wait mean', 'WIL wait p50 (fresh)', 'local mean', 'remote mean', 'remote p50', 'hostModify mean', 'hostModify p50', 'p50 fresh', 'p50 not fresh', 'fio clat mean', 'WIL writes/s', 'WIL write mean'];
      s += table(h2, st.map((r) => {
        const g = r.stages;
        return [`QD${r.qd} sync, link ${r.latencyMs} ms`, String(g.writes), g.freshPct.toFixed(0), g.wilWaitMeanUs.toFixed(0), g.wilWaitFreshP50Us.toFixed(0), g.localMeanUs.toFixed(0),
          g.remoteMeanUs.toFixed(0), g.remoteP50Us.toFixed(0), g.hostModifyMeanUs.toFixed(0), g.hostModifyP50Us.toFixed(0), g.hostModifyFreshP50Us.toFixed(0), g.hostModifyReuseP50Us.toFixed(0),
          r.meanUs.toFixed(0), g.wilFileWritesPerS.toFixed(0), g.wilFileWriteMeanUs.toFixed(0)];
      }));
    }
  }
  if (res.resync.length) {
    const r0 = res.resync[0];
    s += `\nResync after a fracture: ${fmtBytes(r0.lunBytes)} LUN, ${fmtBytes(r0.regionSize)} regions, link capped at ${(res.options.bandwidthBps / 1e6).toFixed(0)} MB/s, latency ${res.options.resyncLatency} ms one way, syncRate ${(res.options.syncRateBps / 1e6).toFixed(0)} MB/s, protectResync ${res.options.resyncProtect ? 'on' : 'off'}\n\n`;
    const head = ['dirty', 'run', 'regions', 'time s', 'bytesDone', 'bytesCopied', 'link a->b', 'link b->a', 'MB/s', 'link MB/s', 'of cap', 'goal', 'bytes'];
    const rows = res.resync.map((r) => [`${r.pct}%`, String(r.repeat ?? 1), String(r.regions), r.seconds.toFixed(2), String(r.bytesDone), String(r.bytesCopied),
      String(r.linkBytes['a-to-b']), String(r.linkBytes['b-to-a']), r.mbps.toFixed(1), r.linkMbps.toFixed(1), `${(100 * r.ratio).toFixed(0)}%`,
      r.goalMet ? 'yes' : 'NO', r.bytesOk ? 'ok' : `MISMATCH (expected ${r.expectedBytes})`]);
    s += table(head, rows);
    s += '\ntime = synchronize() call to the mirror.resync-done event; MB/s = bytesDone / time; of cap = link a->b bytes / time / cap; goal: >= 90%.\n';
    s += 'bytes: bytesDone and bytesCopied == dirty regions x region size.\n';
    s += "The emulator serializes at the cap from the first byte (no burst); a short resync's time includes its start (the record's push, the secondary's protection snapshot), which weighs on the small rows.\n";
    const st = res.resync.filter((r) => r.stages);
    if (st.length) {
      s += '\nResync chunks (--stages; a copy: one chunk, or chunks of scattered regions in one write; block status + read + write request to its reply, us)\n\n';
      s += table(['dirty', 'chunks', 'mean chunk', 'copy mean us', 'copy p50 us', 'syncRate wait mean us'], st.map((r) => [`${r.pct}%`, String(r.stages.chunks), fmtBytes(Math.round(r.stages.meanChunkBytes)),
        r.stages.copyMeanUs.toFixed(0), r.stages.copyP50Us.toFixed(0), r.stages.limiterWaitMeanUs.toFixed(0)]));
    }
  }
  s += adaptiveReport(res.adaptive ?? [], res.options);
  s += uncleanReport(res.unclean ?? []);
  s += goalsReport(res);
  return s;
}

/** Issue 18's goals, each MET or MISSED from this run's rows (a section not run: not measured). */
function goalsReport(res) {
  const lines = [];
  const mark = (ok) => (ok ? 'MET   ' : 'MISSED');
  const lat = res.latency.filter((r) => r.latencyMs !== null && r.targetUs !== undefined);
  if (lat.length) {
    const emu = [...new Map(lat.map((r) => [r.latencyMs, r.emuRttUs])).entries()].filter(([l]) => l > 0);
    if (emu.length) {
      const ok = emu.every(([l, rtt]) => rtt <= 2 * l * 1000 * 1.05 + 50);
      lines.push(`${mark(ok)} 1. emulator round trip within 2x setting + 5% + 50 us: ${emu.map(([l, rtt]) => `${l} ms: ${rtt.toFixed(0)} us (limit ${(2 * l * 1000 * 1.05 + 50).toFixed(0)})`).join(', ')} (timers mode; bench:link measures the precise mode)`);
    }
    lines.push(`${mark(lat.every((r) => r.goalMet))} 2. sync p50 <= 1.10 x (unmirrored p50 + emu RTT): ${lat.map((r) => `QD${r.qd} ${r.latencyMs} ms ${(r.p50us / r.targetUs).toFixed(2)}x`).join(', ')}`);
    const q16 = lat.filter((r) => r.qd === 16 && r.latencyMs === 0);
    if (q16.length) lines.push(`${mark(q16.every((r) => r.iopsRatio >= 0.5))} 2. sync QD16 IOPS at a 0 ms link >= 0.5x unmirrored: ${q16.map((r) => `${r.iopsRatio.toFixed(2)}x`).join(', ')}`);
  }
  const unc = (res.unclean ?? []).filter((r) => r.mode !== 'never' && typeof r.ratio === 'number');
  if (unc.length) lines.push(`${mark(unc.every((r) => r.ratio <= 1.1))} 3. checksum resync: link bytes <= 1.1x differing bytes: ${unc.map((r) => `${r.scenario} ${r.ratio.toFixed(2)}x (${fmtBytes(r.linkBytes - r.differBytes)} beyond them, ${fmtBytes(r.hashBytes ?? 0)} of it hashes)`).join(', ')}`);
  const ad = res.adaptive ?? [];
  if (ad.some((r) => r.mode === 'adaptive')) {
    const med = (m, k) => median(ad.filter((r) => r.mode === m).map((r) => r[k]));
    const p99x = med('adaptive', 'p99us') / med('alone', 'p99us');
    const share = med('adaptive', 'share');
    lines.push(`${mark(p99x <= 1.2 && share >= 0.9)} 4. adaptive resync: host p99 ${p99x.toFixed(2)}x alone (<= 1.2x), ${(100 * share).toFixed(0)}% of the spare bandwidth (>= 90%)`);
  }
  if (res.resync.length) {
    // each percentage's median over its runs (the runs themselves in brackets when repeated)
    const pcts = [...new Set(res.resync.map((r) => r.pct))];
    const ratios = pcts.map((pct) => res.resync.filter((r) => r.pct === pct).map((r) => r.ratio));
    const text = pcts.map((pct, i) => `${pct}% dirty ${(100 * median(ratios[i])).toFixed(0)}%${ratios[i].length > 1 ? ` (${ratios[i].map((x) => (100 * x).toFixed(0)).join(' / ')})` : ''}`);
    lines.push(`${mark(ratios.every((rs) => median(rs) >= 0.9))}    resync alone at >= 90% of the link cap (median of the runs): ${text.join(', ')}`);
  }
  return lines.length ? `\nGoals (issue 18)\n\n${lines.join('\n')}\n` : '';
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
  process.on(sig, () => { log(`\nbench-mirror: ${sig}, stopping`); killChildren(); if (workDir) rmSync(workDir, { recursive: true, force: true }); process.exit(130); });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const lib = await loadDist();
  mkdirSync(o.dir, { recursive: true });
  workDir = mkdtempSync(join(o.dir, 'sanbox-bench-mirror-'));
  applyHaltPoll('bench-mirror', log, die);
  const versions = { fio: tryExec('fio', ['--version']), sanbox: tryExec('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']), node: process.version, cpus: cpus().length, machine: machineFacts() };
  const started = new Date();
  log(`bench-mirror${o.smoke ? ' (smoke)' : ''}: arrays alpha + bravo in ${workDir}, fsync ${o.fsync ? 'on' : 'off'}; ${versions.fio}, sanbox ${versions.sanbox}, node ${versions.node}, ${versions.cpus} CPUs, ${machineText(versions.machine)}`);
  const luns = {
    alpha: [
      ...(o.latency ? [{ name: 'plain', size: o.sizeBytes }, { name: 'lat', size: o.sizeBytes }] : []),
      ...(o.resync ? [{ name: 'rsync', size: o.resyncBytes }] : []),
      ...(o.adaptive ? [adaptiveLun(o)] : []),
    ],
    bravo: [
      ...(o.latency ? [{ name: 'lat', size: o.sizeBytes }] : []),
      ...(o.resync ? [{ name: 'rsync', size: o.resyncBytes }] : []),
      ...(o.adaptive ? [adaptiveLun(o)] : []),
    ],
  };
  const res = { started: started.toISOString(), smoke: o.smoke, options: { ...o, dir: undefined }, versions, loadavgStart: loadavg(), latency: [], resync: [], adaptive: [], unclean: [], seconds: 0 };
  if (loadavg()[0] > 1.5) log(`bench-mirror: note: load average ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs: other work competes with the benchmark`);
  let failure = null;
  let stages = null;
  if (o.stages) {
    stages = instrument(lib);
    if (!stages.ok) { log('bench-mirror: --stages: the compiled driver lacks DataPath.hostModify/sendRemote or BitmapFile.persist/writeOnce; no stage times'); stages = null; }
  }
  try {
    if (o.secondaryProcess && o.prefill) die('--prefill writes bravo in this process: not with --secondary-process');
    lab = await makeLab(lib, workDir, luns, o.fsync, { secondaryProcess: o.secondaryProcess, emulatorProcess: o.emulatorProcess });
    if (o.latency) {
      if (o.prefill) {
        const t = performance.now();
        const pool = randomBytes(MiB);
        for (const [arr, lun] of [['alpha', 'plain'], ['alpha', 'lat'], ['bravo', 'lat']]) {
          const dev = lab.running[arr].array.device(lun);
          for (let off = 0; off < o.sizeBytes; off += MiB) await dev.write(off, pool.subarray(0, Math.min(MiB, o.sizeBytes - off)));
          await dev.flush();
        }
        log(`prefilled the latency LUNs in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      }
      await createMirror(lab, 'mlat', 'lat', undefined, o.regionSize);
      log(`latency: ${o.qds.length * ((o.unmirrored ? 1 : 0) + o.latencies.length)} rows (unmirrored LUN "plain", mirror mlat of LUN "lat", alpha -> bravo)`);
      await latencySection(o, lab, lib, res.latency, stages);
    }
    if (o.resync) {
      await createMirror(lab, 'mrs', 'rsync', { syncRate: o.syncRateBps, syncController: o.resyncController, protectResync: o.resyncProtect });
      log(`resync: ${o.dirty.length * o.resyncRepeat} rounds on mirror mrs (protectResync ${o.resyncProtect ? 'on' : 'off'}, ${fmtBytes(o.resyncBytes)}), link capped at ${(o.bandwidthBps / 1e6).toFixed(0)} MB/s, syncRate ${(o.syncRateBps / 1e6).toFixed(0)} MB/s`);
      await resyncSection(o, lab, res.resync, stages);
    }
    if (o.adaptive) await adaptiveSection(o, lab, res.adaptive);
    if (o.unclean) {
      killChildren();
      if (lab) { const l = lab; lab = null; await l.close().catch(() => undefined); }
      await uncleanSection({ ...o, workDir }, lib, res.unclean);
    }
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
    log(`bench-mirror: FAILED: ${res.error}`);
  }
  const bad = res.resync.filter((r) => !r.bytesOk);
  if (!failure && bad.length) res.error = `resync byte counts differ from dirty regions x region size: ${bad.map((r) => `${r.pct}%`).join(', ')}`;
  const differ = res.unclean.filter((r) => !r.identicalAfter);
  if (!failure && differ.length) res.error = `images differ after the unclean-stop resync: ${differ.map((r) => `${r.scenario} checksums ${r.mode}`).join(', ')}`;

  const dir = join(REPO, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `mirror-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(res, null, 2) + '\n');
  if (o.json) process.stdout.write(JSON.stringify(res, null, 2) + '\n');
  else process.stdout.write(report(res));
  log(`\nbench-mirror: ${res.seconds.toFixed(0)} s; results in ${file}`);
  if (workDir) {
    // fragmented sparse images can take long to unlink (ext4 with discard): after the results
    const t = performance.now();
    await cleanup();
    const s = (performance.now() - t) / 1000;
    if (s > 2) log(`bench-mirror: removed the arrays' images in ${s.toFixed(0)} s`);
  }
  if (res.error) {
    if (!failure) log(`bench-mirror: FAILED: ${res.error}`);
    process.exit(1);
  }
  process.exit(0);
}

main().catch(async (e) => {
  log(`bench-mirror: ${e.stack ?? e.message}`);
  await cleanup();
  process.exit(1);
});
