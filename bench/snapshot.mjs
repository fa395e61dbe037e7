#!/usr/bin/env node
// Snapshot benchmark: what copy-on-write snapshots cost a host write, and how long taking one
// takes. One `sanbox serve` (a single-process array; --sps: two SPs) with LUN disk0 (--size, filled in full with
// 1M writes first, so a copy-on-write reads real data) and --group-luns - 1 more LUNs of the same
// size (sparse) for the group snapshot; fio's nbd engine (libnbd) as the host.
//
// 1. Writes: disk0 with 0, 1 and 8 snapshots (--configs), side by side in one run: each round
//    runs every configuration (rounds alternate the order: 0,1,8 then 8,1,0 ...; --repeat
//    rounds), and each configuration is: take its snapshots (back to back, so every saved region
//    serves all of them), then
//    (a) FIRST OVERWRITE: 4k writes strided one region apart (fio rw=write:<region-4k>), so every
//        write is the first to its 64 KiB region since the snapshots: each copies the region's
//        old data into the snapshot store first. One fresh --first-area of the LUN per queue
//        depth; with snapshots the row ends when --runtime is up or its area is used up (the
//        table marks that: it bounds the store a round fills, and so the time its deletes take),
//        without snapshots it is time-based (rewriting a region costs nothing then).
//    (b) LATER WRITES: the last --later-area of the LUN is written in full (1M writes) after the
//        snapshots are taken, so all its regions are saved; then 4k random writes over it,
//        time-based (after --warmup s), whose regions need no copy any more.
//    at each of --qd; then the snapshots are deleted (the store must be empty again). After
//    every fill and delete the file system is synced (sync -f), so a row does not pay for the
//    writeback or the discards of what came before it.
//    Per row: IOPS, p50 and p99 (fio completion latency), medians over the rounds, and the
//    IOPS ratio to the same row with 0 snapshots (per round, paired, then the median). Goal:
//    later writes >= 0.90 x no snapshot.
// 2. Creation: snapshot disk0 (API round trip of POST /v1/luns/disk0/snapshots, and the
//    server's pauseMs: how long new writes waited) and a group snapshot of the --group-luns LUNs
//    (POST /v1/snapshot-groups), --creates times each (each deleted again right after), with no
//    writer and with a QD1 4k random writer on disk0. Goal: creation under 10 ms for a 1 GiB LUN.
//
//   npm run bench:snapshot [-- --runtime 5 --repeat 3 --json]
//
// Options:
//   --runtime S      seconds per write row                             default 4
//   --warmup S       unmeasured seconds before each LATER WRITES row   default 0.5
//   --repeat N       rounds (each runs every configuration)            default 3
//   --configs LIST   snapshot counts                                   default 0,1,8
//   --qd LIST        queue depths                                      default 1,16
//   --size SIZE      LUN size                                          default 1G
//   --first-area SIZE  area of each FIRST OVERWRITE row               default 256M
//   --later-area SIZE  area of the LATER WRITES rows (end of the LUN)  default 64M
//   --creates N      creations measured per case                       default 9
//   --group-luns N   LUNs in the group snapshot (disk0 and N-1 more)   default 4
//   --no-writes / --no-create   skip a section
//   --dir DIR        where the array goes                              default os.tmpdir()
//   --sps            a two-SP array (`sanbox serve --sps`), fio on SP A (disk0's owner): with a
//                    snapshot every write crosses the chassis (SP -> chassis -> owner SP's cache)
//   --json           the whole result as JSON on stdout (progress stays on stderr)
//   --smoke          CI: --runtime 1 --warmup 0 --repeat 1 --size 256M --later-area 16M --creates 3
// Every run also writes bench/results/snapshot-<timestamp>.json. SANBOX_BIN=path runs another
// sanbox entry point instead of bin/sanbox.js. Exits non-zero only when the benchmark itself
// failed (the server, fio or an API call failed, or a deleted snapshot left the store in use),
// never on slow numbers.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { REPO, HOST, MiB, setProgram, die, log, sleep, readHelp, parseSize, fmtBytes, freePort, tryExec, table, probeNbd } from './lib/common.mjs';
import { runFio, summarizeWrites, randWriteArgs, killChildren } from './lib/fio.mjs';

setProgram('bench-snapshot');

const PAUSE_GOAL_MS = 10;
const LATER_GOAL = 0.9;

// ---------- options ----------

function parseArgs(argv) {
  const o = {
    runtime: 4,
    warmup: 0.5,
    repeat: 3,
    configs: [0, 1, 8],
    qds: [1, 16],
    size: '1G',
    laterArea: '64M',
    firstArea: '256M',
    creates: 9,
    groupLuns: 4,
    writes: true,
    create: true,
    dir: tmpdir(),
    json: false,
    smoke: false,
    sps: false,
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
      case '--repeat': o.repeat = Number(val()); break;
      case '--configs': o.configs = list(); break;
      case '--qd': o.qds = list(); break;
      case '--size': o.size = String(val()); break;
      case '--later-area': o.laterArea = String(val()); break;
      case '--first-area': o.firstArea = String(val()); break;
      case '--creates': o.creates = Number(val()); break;
      case '--group-luns': o.groupLuns = Number(val()); break;
      case '--no-writes': o.writes = false; break;
      case '--no-create': o.create = false; break;
      case '--dir': o.dir = String(val()); break;
      case '--json': o.json = true; break;
      case '--smoke': o.smoke = true; break;
      case '--sps': o.sps = true; break;
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
    if (!set.has('--warmup')) o.warmup = 0;
    if (!set.has('--repeat')) o.repeat = 1;
    if (!set.has('--size')) o.size = '256M';
    if (!set.has('--later-area')) o.laterArea = '16M';
    if (!set.has('--first-area')) o.firstArea = '64M';
    if (!set.has('--creates')) o.creates = 3;
  }
  if (!(o.runtime > 0)) die('--runtime must be a positive number of seconds');
  if (!(o.warmup >= 0)) die('--warmup must be >= 0');
  if (!Number.isInteger(o.repeat) || o.repeat < 1) die('--repeat must be a positive integer');
  if (!o.configs.length || o.configs.some((x) => !Number.isInteger(x) || x < 0 || x > 64)) die('--configs: snapshot counts 0-64');
  if (!o.qds.length || o.qds.some((x) => !Number.isInteger(x) || x < 1)) die('--qd: positive integers');
  if (!Number.isInteger(o.creates) || o.creates < 1) die('--creates must be a positive integer');
  if (!Number.isInteger(o.groupLuns) || o.groupLuns < 2 || o.groupLuns > 16) die('--group-luns must be 2-16');
  o.sizeBytes = parseSize(o.size, 1024);
  o.laterBytes = parseSize(o.laterArea, 1024);
  o.firstBytes = parseSize(o.firstArea, 1024);
  if (o.sizeBytes % MiB !== 0 || o.laterBytes % MiB !== 0 || o.firstBytes % MiB !== 0) die('--size, --first-area and --later-area must be whole MiB');
  if (o.laterBytes <= 0 || o.firstBytes <= 0) die('--first-area and --later-area must be positive');
  if (o.firstBytes * o.qds.length + o.laterBytes > o.sizeBytes) die(`--first-area x ${o.qds.length} QDs + --later-area must fit in --size`);
  return o;
}

// ---------- the server ----------

const server = { child: null, stderr: '', exited: null };


/** `sanbox serve` with disk0 and the group's other LUNs; resolves with its NBD URI base and API URL once both answer. */
async function startServer(dir, o) {
  const port = await freePort();
  const apiPort = await freePort();
  const luns = ['disk0', ...Array.from({ length: o.groupLuns - 1 }, (_, i) => `grp${i + 1}`)];
  const args = [process.env.SANBOX_BIN ?? join(REPO, 'bin', 'sanbox.js'), 'serve', '--dir', dir, '--port', String(port), '--bind', HOST,
    '--api-port', String(apiPort), '--quiet', ...luns.flatMap((l) => ['--lun', `${l}=${o.sizeBytes}`]), ...(o.sps ? ['--sps'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: REPO });
  server.child = child;
  child.stderr.setEncoding('utf8').on('data', (d) => { server.stderr = (server.stderr + d).slice(-20000); });
  server.exitP = new Promise((r) => child.on('exit', (code, signal) => { server.exited = { code, signal }; r(); }));
  child.on('error', (e) => { server.stderr += `\n[spawn error: ${e.message}]`; });
  const apiUrl = `http://${HOST}:${apiPort}`;
  const deadline = Date.now() + 30_000;
  while (!server.exited && Date.now() < deadline) {
    if (await probeNbd(port)) {
      API = { host: HOST, port: apiPort };
      try {
        await api('GET', '/v1/luns/disk0/snapshots');
        return { nbd: `nbd://${HOST}:${port}`, apiUrl, luns, cmd: args.slice(1).join(' ') };
      } catch { /* not yet */ }
    }
    await sleep(100);
  }
  await stopServer();
  throw new Error(`sanbox serve did not start (exit ${JSON.stringify(server.exited)})\n$ node ${args.join(' ')}\n${server.stderr}`);
}

async function stopServer() {
  const c = server.child;
  if (!c || server.exited) return;
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
  await server.exitP;
  clearTimeout(t);
}

function serverAlive() {
  if (server.exited) throw new Error(`sanbox serve exited (${JSON.stringify(server.exited)})\n${server.stderr.slice(-4000)}`);
}

let API = null;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
/** One API call (node:http, one kept-alive connection); resolves with the answer and the round trip in ms; throws on an HTTP error. */
function api(method, path, body) {
  const payload = body !== undefined ? Buffer.from(JSON.stringify(body)) : null;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({ host: API.host, port: API.port, path, method, agent, headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : method !== 'GET' ? { 'content-type': 'application/json' } : {} }, (r) => {
      let text = '';
      r.setEncoding('utf8').on('data', (d) => { text += d; });
      r.on('end', () => {
        const ms = performance.now() - t0;
        if (r.statusCode >= 300) {
          if (server.exited) return reject(new Error(`sanbox serve exited (${JSON.stringify(server.exited)})\n${server.stderr.slice(-4000)}`));
          return reject(new Error(`${method} ${path}: HTTP ${r.statusCode} ${text}\n--- sanbox stderr ---\n${server.stderr.slice(-4000)}`));
        }
        try {
          resolve({ json: text ? JSON.parse(text) : undefined, ms });
        } catch (e) {
          reject(new Error(`${method} ${path}: not JSON: ${text.slice(0, 500)}`));
        }
      });
      r.on('error', reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error(`${method} ${path}: no answer in 120 s`)));
    req.on('error', reject);
    req.end(payload ?? undefined);
  });
}

const storeOf = async (lun) => (await api('GET', `/v1/luns/${lun}/snapshots`)).json;

// ---------- stats ----------

function median(xs) {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
const fmtMiB = (n) => `${(n / MiB).toFixed(n < 10 * MiB ? 1 : 0)} MiB`;
const fx = (v, d = 0) => (v === null || v === undefined ? '-' : v.toFixed(d));

// ---------- 1. writes ----------

function strideArgs(uri, qd, offset, length, seconds, regionSize, timeBased) {
  return ['--name=bench', '--ioengine=nbd', `--uri=${uri}`, `--rw=write:${regionSize - 4096}`, '--bs=4k', `--iodepth=${qd}`,
    `--offset=${offset}`, `--size=${length}`, `--runtime=${Math.max(1, Math.round(seconds * 1000))}ms`, ...(timeBased ? ['--time_based'] : [])];
}

/** 1M sequential writes over [offset, offset+length), then a flush (so the rows after it do not pay for its writeback). */
async function fillArea(uri, offset, length, label) {
  const t = performance.now();
  await runFio(['--name=fill', '--ioengine=nbd', `--uri=${uri}`, '--rw=write', '--bs=1m', '--iodepth=8', `--offset=${offset}`, `--size=${length}`, '--end_fsync=1'], { label, seconds: 300 });
  return (performance.now() - t) / 1000;
}

/** Syncs the file system of the array (its writeback and, on a discard mount, its discards); returns the seconds it took. */
function settle() {
  const t = performance.now();
  try {
    execFileSync('sync', ['-f', workDir], { stdio: 'ignore' });
  } catch {
    execFileSync('sync', [], { stdio: 'ignore' });
  }
  return (performance.now() - t) / 1000;
}

async function writesSection(o, srv, res) {
  const uri = `${srv.nbd}/disk0`;
  const st = (await storeOf('disk0')).store;
  const rs = st.regionSize;
  res.regionSize = rs;
  // the LUN: [first-overwrite area per QD ...][later area]
  const laterOff = o.sizeBytes - o.laterBytes;
  const per = Math.floor(o.firstBytes / rs) * rs;
  const areas = Object.fromEntries(o.qds.map((qd, i) => [qd, { offset: i * per, length: per }]));
  res.layout = { firstOverwrite: areas, later: { offset: laterOff, length: o.laterBytes } };
  log(`writes: ${o.repeat} round(s) x configs ${o.configs.join(',')} snapshots x (first overwrite, later writes) x QD ${o.qds.join(',')}, ${o.runtime} s per row; regions of ${fmtBytes(rs)}`);
  log(`  first-overwrite areas: ${o.qds.map((qd) => `QD${qd} ${fmtBytes(areas[qd].offset)}+${fmtBytes(per)} (${per / rs} regions)`).join(', ')}; later area ${fmtBytes(laterOff)}+${fmtBytes(o.laterBytes)}`);
  const rowsPerRound = o.configs.length * o.qds.length * 2;
  const total = rowsPerRound * o.repeat;
  let n = 0;
  for (let round = 0; round < o.repeat; round++) {
    const order = round % 2 === 0 ? [...o.configs] : [...o.configs].reverse();
    for (const cfg of order) {
      serverAlive();
      const run = { round, snapshots: cfg, created: [], rows: [] };
      const before = (await storeOf('disk0')).store.usedBytes;
      if (before !== 0) throw new Error(`round ${round}: the snapshot store of disk0 holds ${before} bytes before ${cfg} snapshots are taken`);
      for (let i = 0; i < cfg; i++) {
        const r = await api('POST', '/v1/luns/disk0/snapshots', { name: `r${round}-n${cfg}-${i}` });
        run.created.push({ ms: r.ms, pauseMs: r.json.pauseMs });
      }
      const tag = `${cfg} snap${cfg === 1 ? '' : 's'}`;
      for (const qd of o.qds) {
        n++;
        const label = `[${n}/${total}] round ${round + 1}, ${tag}, first overwrite QD${qd}`;
        const a = areas[qd];
        const json = await runFio(strideArgs(uri, qd, a.offset, a.length, o.runtime, rs, cfg === 0), { label, seconds: o.runtime });
        const s = summarizeWrites(json);
        s.seconds = (json.jobs[0].write.runtime ?? 0) / 1000;
        s.areaUsedUp = cfg > 0 && s.ios >= a.length / rs;
        run.rows.push({ phase: 'first', qd, ...s });
        log(`  ${label}: ${s.iops.toFixed(0)} IOPS, p50 ${s.p50us.toFixed(0)} us, p99 ${s.p99us.toFixed(0)} us${s.areaUsedUp ? ` (area used up after ${s.seconds.toFixed(1)} s)` : ''}`);
      }
      run.laterFillS = await fillArea(uri, laterOff, o.laterBytes, `round ${round + 1}, ${tag}, filling the later area`);
      settle();
      run.storeAfterFill = (await storeOf('disk0')).store.usedBytes;
      for (const qd of o.qds) {
        n++;
        const label = `[${n}/${total}] round ${round + 1}, ${tag}, later writes QD${qd}`;
        const args = [...randWriteArgs(uri, qd, o.laterBytes, o.runtime), `--offset=${laterOff}`, ...(o.warmup > 0 ? [`--ramp_time=${Math.round(o.warmup * 1000)}ms`] : [])];
        const json = await runFio(args, { label, seconds: o.runtime + o.warmup });
        const s = summarizeWrites(json);
        s.seconds = (json.jobs[0].write.runtime ?? 0) / 1000;
        run.rows.push({ phase: 'later', qd, ...s });
        log(`  ${label}: ${s.iops.toFixed(0)} IOPS, p50 ${s.p50us.toFixed(0)} us, p99 ${s.p99us.toFixed(0)} us`);
      }
      run.storeBeforeDelete = (await storeOf('disk0')).store.usedBytes;
      const td = performance.now();
      for (let i = 0; i < cfg; i++) await api('DELETE', `/v1/luns/disk0/snapshots/r${round}-n${cfg}-${i}`);
      run.deleteS = (performance.now() - td) / 1000;
      run.settleS = settle();
      const after = await storeOf('disk0');
      run.storeAfterDelete = after.store.usedBytes;
      if (after.snapshots.length || after.store.usedBytes !== 0) {
        throw new Error(`round ${round}, ${cfg} snapshots deleted: disk0 still lists ${after.snapshots.length} snapshot(s) and its store holds ${after.store.usedBytes} bytes`);
      }
      if (cfg > 0) log(`  round ${round + 1}, ${tag}: store ${fmtMiB(run.storeBeforeDelete)} used (later area filled in ${run.laterFillS.toFixed(1)} s), deleted in ${(run.deleteS * 1000).toFixed(0)} ms, store empty again; sync ${(run.settleS * 1000).toFixed(0)} ms`);
      res.runs.push(run);
    }
  }
  // medians per configuration, phase and QD; ratios to 0 snapshots
  for (const phase of ['first', 'later']) {
    for (const qd of o.qds) {
      for (const cfg of o.configs) {
        const rows = res.runs.filter((r) => r.snapshots === cfg).flatMap((r) => r.rows.filter((x) => x.phase === phase && x.qd === qd));
        res.rows.push({
          snapshots: cfg, phase, qd, n: rows.length,
          iops: median(rows.map((r) => r.iops)), p50us: median(rows.map((r) => r.p50us)), p99us: median(rows.map((r) => r.p99us)),
          areaUsedUp: rows.some((r) => r.areaUsedUp),
        });
      }
      // the ratio to 0 snapshots: each round's row over the same round's 0-snapshot row (paired,
      // so drift between rounds cancels), the median of the rounds
      const iopsOf = (round, cfg) => res.runs.find((r) => r.round === round && r.snapshots === cfg)?.rows.find((x) => x.phase === phase && x.qd === qd)?.iops;
      for (const r of res.rows.filter((x) => x.phase === phase && x.qd === qd)) {
        const pairs = [];
        for (let round = 0; round < o.repeat; round++) {
          const [n, z] = [iopsOf(round, r.snapshots), iopsOf(round, 0)];
          if (n !== undefined && z) pairs.push(n / z);
        }
        r.ratios = pairs;
        r.ratio = median(pairs);
        if (phase === 'later' && r.snapshots > 0 && r.ratio !== null) r.goal = r.ratio >= LATER_GOAL ? 'PASS' : 'MISS';
      }
    }
  }
}

// ---------- 2. creation ----------

function caseStats(samples) {
  return {
    n: samples.length,
    msP50: median(samples.map((s) => s.ms)),
    msMax: Math.max(...samples.map((s) => s.ms)),
    pauseP50: median(samples.map((s) => s.pauseMs)),
    pauseMax: Math.max(...samples.map((s) => s.pauseMs)),
    deleteMsP50: median(samples.map((s) => s.deleteMs)),
  };
}

async function createOnce(kind, luns, name) {
  if (kind === 'single') {
    const r = await api('POST', '/v1/luns/disk0/snapshots', { name });
    const t = performance.now();
    await api('DELETE', `/v1/luns/disk0/snapshots/${name}`);
    return { ms: r.ms, pauseMs: r.json.pauseMs, deleteMs: performance.now() - t };
  }
  const r = await api('POST', '/v1/snapshot-groups', { luns, name });
  if (r.json.snapshots?.length !== luns.length) throw new Error(`group snapshot ${name}: ${r.json.snapshots?.length} snapshots for ${luns.length} LUNs`);
  const t = performance.now();
  for (const l of luns) await api('DELETE', `/v1/luns/${l}/snapshots/${name}`);
  return { ms: r.ms, pauseMs: r.json.pauseMs, deleteMs: performance.now() - t };
}

/** --creates rounds of (one LUN, group), each created then deleted, 50 ms apart. */
async function createLoop(o, luns, tag, out) {
  for (let i = 0; i < o.creates; i++) {
    for (const kind of i % 2 === 0 ? ['single', 'group'] : ['group', 'single']) {
      out[kind].push(await createOnce(kind, luns, `${tag}-${kind}-${i}`));
      await sleep(50);
    }
  }
}

async function createSection(o, srv, res) {
  const uri = `${srv.nbd}/disk0`;
  const laterOff = o.sizeBytes - o.laterBytes;
  log(`creation: ${o.creates} x (snapshot of disk0 ${fmtBytes(o.sizeBytes)}, group snapshot of ${srv.luns.length} LUNs), each deleted again; no writer, then a QD1 4k random writer on disk0`);
  // unmeasured: the first snapshot of a LUN opens its store
  await createOnce('single', srv.luns, 'warm');
  await createOnce('group', srv.luns, 'warm');
  const idle = { single: [], group: [] };
  const t0 = performance.now();
  await createLoop(o, srv.luns, 'idle', idle);
  const loopS = (performance.now() - t0) / 1000;
  // the writer must outlast the loop: twice the idle loop's time, and at least 3 s
  const writerS = Math.max(3, Math.ceil(2 * loopS + 1));
  const busy = { single: [], group: [] };
  let writerDone = false;
  const writer = runFio(randWriteArgs(uri, 1, o.laterBytes, writerS).concat(`--offset=${laterOff}`), { label: 'QD1 writer', seconds: writerS })
    .finally(() => { writerDone = true; });
  writer.catch(() => undefined);
  await sleep(500);
  await createLoop(o, srv.luns, 'busy', busy);
  const covered = !writerDone;
  const w = summarizeWrites(await writer);
  const wmax = (await writer).jobs[0].write.clat_ns?.max / 1000;
  res.create = {
    luns: srv.luns,
    lunBytes: o.sizeBytes,
    idle: { single: caseStats(idle.single), group: caseStats(idle.group), samples: idle },
    writer: { single: caseStats(busy.single), group: caseStats(busy.group), samples: busy, covered, fio: { seconds: writerS, iops: w.iops, p50us: w.p50us, p99us: w.p99us, maxUs: wmax } },
  };
  if (!covered) log('bench-snapshot: note: the QD1 writer ended before the creations did; the last ones ran without it');
  const one = [res.create.idle.single, res.create.writer.single];
  res.create.goal = {
    roundTrip: one.every((c) => c.msP50 < PAUSE_GOAL_MS) ? 'PASS' : 'MISS',
    pause: one.every((c) => c.pauseP50 < PAUSE_GOAL_MS) ? 'PASS' : 'MISS',
  };
}

// ---------- report ----------

function report(res, o) {
  const out = [];
  out.push(`\nsnapshot benchmark: sanbox serve (${res.options.sps ? 'two SPs: fio on SP A, the snapshots in the chassis' : 'single-process array'}), LUN disk0 ${fmtBytes(res.options.sizeBytes)} filled with data; fio nbd engine; ${res.versions.fio}, sanbox ${res.versions.sanbox}, node ${res.versions.node}, ${res.versions.cpus} CPUs`);
  if (res.rows.length) {
    out.push(`\nWrites: 4k, medians of ${o.repeat} round(s) of ${o.runtime} s rows (rounds interleaved ${o.configs.join(',')} / ${[...o.configs].reverse().join(',')}); regions of ${fmtBytes(res.regionSize)}`);
    out.push('  first overwrite: each write is the first to its region since the snapshots (a copy-on-write of the region)');
    out.push(`  later writes:    random writes over ${fmtBytes(o.laterBytes)} whose regions are all saved already (goal: IOPS >= ${LATER_GOAL.toFixed(2)} x no snapshot)`);
    out.push('  vs 0 snaps:      median of the rounds\' IOPS ratios (each round\'s row over the same round\'s 0-snapshot row)\n');
    const body = res.rows.map((r) => [
      `${r.snapshots} snapshot${r.snapshots === 1 ? '' : 's'}`,
      r.phase === 'first' ? 'first overwrite' : 'later writes',
      `QD${r.qd}`,
      fx(r.iops) + (r.areaUsedUp ? '*' : ''),
      fx(r.p50us),
      fx(r.p99us),
      r.snapshots === 0 ? '1.00' : fx(r.ratio, 2),
      r.goal ? `>= ${LATER_GOAL.toFixed(2)} ${r.goal}` : '',
    ]);
    out.push(table(['config', 'phase', 'QD', 'IOPS', 'p50 us', 'p99 us', 'vs 0 snaps', 'goal'], body, 3).trimEnd());
    if (res.rows.some((r) => r.areaUsedUp)) out.push(`  * the row ended before --runtime in some round: its ${fmtBytes(o.firstBytes)} area (${o.firstBytes / res.regionSize} regions) was used up (--first-area)`);
    const snapRuns = res.runs.filter((r) => r.snapshots > 0);
    if (snapRuns.length) {
      const fill = median(snapRuns.map((r) => r.laterFillS));
      const del = median(snapRuns.map((r) => r.deleteS));
      const used = median(snapRuns.map((r) => r.storeBeforeDelete));
      out.push(`  with snapshots (medians): store ${fmtMiB(used)} used per round, later area (${fmtBytes(o.laterBytes)}, 1M writes) filled in ${fx(fill, 1)} s, the round's snapshots deleted in ${fx(del * 1000)} ms; the store was empty after every delete`);
    }
  }
  if (res.create) {
    const c = res.create;
    out.push(`\nCreation: median (max) of ${o.creates}; round trip = the API call as a client sees it, pause = how long new writes waited (the server's pauseMs)\n`);
    const line = (what, writer, s) => [what, writer, `${fx(s.msP50, 2)} (${fx(s.msMax, 2)})`, `${fx(s.pauseP50, 2)} (${fx(s.pauseMax, 2)})`, fx(s.deleteMsP50, 2)];
    const body = [
      line(`1 LUN (${fmtBytes(c.lunBytes)})`, 'none', c.idle.single),
      line(`1 LUN (${fmtBytes(c.lunBytes)})`, 'QD1 4k', c.writer.single),
      line(`group of ${c.luns.length} LUNs`, 'none', c.idle.group),
      line(`group of ${c.luns.length} LUNs`, 'QD1 4k', c.writer.group),
    ];
    out.push(table(['snapshot of', 'writer', 'round trip ms', 'pause ms', 'delete ms'], body, 2).trimEnd());
    out.push(`  goal: creation of a ${fmtBytes(c.lunBytes)} LUN's snapshot under ${PAUSE_GOAL_MS} ms (median): round trip ${c.goal.roundTrip}, pause ${c.goal.pause}`);
    const w = c.writer.fio;
    out.push(`  the QD1 writer meanwhile: ${fx(w.iops)} IOPS, p50 ${fx(w.p50us)} us, p99 ${fx(w.p99us)} us, max ${fx(w.maxUs / 1000, 1)} ms (its first writes after each creation copy regions)${c.writer.covered ? '' : '; it ended before the last creations'}`);
  }
  out.push(`\n${res.seconds.toFixed(0)} s in all`);
  return out.join('\n') + '\n';
}

// ---------- main ----------

let workDir = null;
async function cleanup() {
  killChildren();
  await stopServer().catch(() => undefined);
  if (workDir) { rmSync(workDir, { recursive: true, force: true }); workDir = null; }
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    log(`\nbench-snapshot: ${sig}, stopping`);
    killChildren();
    server.child?.kill('SIGKILL');
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    process.exit(130);
  });
}
process.on('exit', () => { killChildren(); if (server.child && !server.exited) server.child.kill('SIGKILL'); });

async function main() {
  const o = parseArgs(process.argv.slice(2));
  mkdirSync(o.dir, { recursive: true });
  workDir = mkdtempSync(join(o.dir, 'sanbox-bench-snapshot-'));
  const versions = { fio: tryExec('fio', ['--version']), sanbox: tryExec('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']), node: process.version, cpus: cpus().length };
  const started = new Date();
  const res = { started: started.toISOString(), smoke: o.smoke, options: { ...o, dir: undefined }, versions, loadavgStart: loadavg(), runs: [], rows: [], create: null, seconds: 0 };
  log(`bench-snapshot${o.smoke ? ' (smoke)' : ''}: sanbox serve in ${workDir}; ${versions.fio}, sanbox ${versions.sanbox}, node ${versions.node}, ${versions.cpus} CPUs`);
  if (loadavg()[0] > 1.5) log(`bench-snapshot: note: load average ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs: other work competes with the benchmark`);
  let failure = null;
  try {
    const srv = await startServer(join(workDir, 'array'), o);
    log(`  ${srv.nbd} (LUNs ${srv.luns.join(', ')}, ${fmtBytes(o.sizeBytes)} each), API ${srv.apiUrl}`);
    log(`  filling disk0 (${fmtBytes(o.sizeBytes)}, 1M writes)...`);
    const fs = await fillArea(`${srv.nbd}/disk0`, 0, o.sizeBytes, 'filling disk0');
    settle();
    log(`  filled in ${fs.toFixed(1)} s`);
    if (o.writes) await writesSection(o, srv, res);
    if (o.create) await createSection(o, srv, res);
  } catch (e) {
    failure = e;
  }
  killChildren();
  await stopServer();
  res.seconds = (Date.now() - started.getTime()) / 1000;
  res.loadavgEnd = loadavg();
  if (failure) {
    res.error = failure.stack ?? String(failure);
    log(`bench-snapshot: FAILED: ${res.error}`);
  }
  const dir = join(REPO, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `snapshot-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(res, null, 2) + '\n');
  if (o.json) process.stdout.write(JSON.stringify(res, null, 2) + '\n');
  else if (!failure) process.stdout.write(report(res, o));
  log(`\nbench-snapshot: ${res.seconds.toFixed(0)} s; results in ${file}`);
  await cleanup();
  process.exit(failure ? 1 : 0);
}

main().catch(async (e) => {
  log(`bench-snapshot: ${e.stack ?? e.message}`);
  await cleanup();
  process.exit(1);
});
