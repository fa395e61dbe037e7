#!/usr/bin/env node
// Write-cache benchmark (issue 4): 4k random writes through the cache layers of an SP, driven by
// fio's nbd engine, side by side in one run:
//   raw         FileBackingStore only (no cache: the reference)
//   wb          WriteCache write-back, no peer mirror (requireMirror: false)
//   wb-mirror   WriteCache write-back, every write mirrored into a PeerMirrorStore before the ack
//               (in-process LocalCacheMirror: the cost of the cache + mirror bookkeeping, no CMI hop)
//   wt          WriteCache write-through (every write goes below with FUA: fdatasync)
// each at QD1 (latency) and QD16 (throughput), plus
//   takeover    a dead SP's LUN from a PeerMirrorStore holding --dirty MiB: time until the
//               survivor's WriteCache holds the pages and can serve (take + loadDirty), and the
//               time to destage them to the image afterwards
//   vault       dump a full cache (own dirty pages + the peer's mirror, --dirty MiB each) to the
//               vault, then restore it (load + validate, loadDirty, destageAll, markConsumed)
// Each row also reports the serving side's CPU per write (this process, or the chassis + SPs).
// All of the above in-process (one NbdServer on 127.0.0.1), from the compiled dist/ (npm run build
// first). Then the same through a real array with two SP processes (`sanbox up`, CMI over Unix
// sockets), unless --no-sp:
//   sp-owner    SP A's port, A owns the LUN: write-back, each write mirrored to SP B over CMI
//   sp-peer     SP B's port: the non-optimized path, every request forwarded to A over CMI
//   sp-wt       SP A's port after `fault battery-fail` (detected): write-through
//   sp-vault    `fault power-fail` with --dirty MiB dirty (hold-up budget 60 s), `power-restore`
//   sp-takeover `fault sp-crash A` with --dirty MiB dirty: the chassis' measured takeover time
//
//   npm run bench:cache [-- --runtime 5 --rows wb,wb-mirror --qd 1,16 --json]
//
// Options:
//   --runtime S      seconds per fio row (default 4)
//   --rows LIST      raw,wb,wb-mirror,wt (default all)
//   --qd LIST        queue depths (default 1,16)
//   --size SIZE      image size (default 256M); fio writes over all of it
//   --cache SIZE     SP cache budget (default 64M)
//   --dirty SIZE     dirty data for takeover / vault rows (default 32M; SP rows: at most half the cache)
//   --dir DIR        where the temporary image and vault go (default os.tmpdir())
//   --no-fill        skip pre-filling the image (fio then allocates a sparse file as it goes)
//   --no-sp          skip the rows through a real SP pair
//   --json           results as JSON on stdout (progress stays on stderr)
// SANBOX_DIST=DIR measures another build (its bin/sanbox.js beside it runs the SP rows).
// Total runtime with the defaults: 7 rows x 2 QDs x (4 s + ~1 s) + ~20 s of set-up, faults and
// vault: under 2 minutes.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, readFileSync, openSync, writeSync, closeSync, writeFileSync, fdatasyncSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids, procCpuUs, selfCpuUs } from './lib/cpu.mjs';
import { applyHaltPoll, machineFacts, machineText } from './lib/machine.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The build measured: the repo's dist/, or SANBOX_DIST (e.g. a build of an older commit, for before/after). */
const DIST = resolve(process.env.SANBOX_DIST || join(REPO, 'dist'));
/** Its CLI, for the SP rows (`sanbox up`): the bin/ beside SANBOX_DIST when given. */
const SANBOX_BIN = join(DIST, '..', 'bin', 'sanbox.js');
const HOST = '127.0.0.1';
const PAGE = 4096;

const ROWS = {
  raw: 'no cache (FileBackingStore)',
  wb: 'write-back, no peer',
  'wb-mirror': 'write-back + peer mirror',
  wt: 'write-through',
};

function die(msg) {
  process.stderr.write(`bench:cache: ${msg}\n`);
  process.exit(2);
}
const log = (m) => process.stderr.write(`${m}\n`);

function parseSize(s) {
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(String(s).trim());
  if (!m) die(`bad size ${s}`);
  return Number(m[1]) * { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2].toUpperCase()];
}

function parseArgs(argv) {
  const o = { runtime: 4, rows: Object.keys(ROWS), qd: [1, 16], size: '256M', cache: '64M', dirty: '32M', dir: tmpdir(), fill: true, sp: true, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => inline ?? argv[++i] ?? die(`${flag} needs a value`);
    switch (flag) {
      case '--runtime': o.runtime = Number(val()); break;
      case '--rows': o.rows = String(val()).split(',').filter(Boolean); break;
      case '--qd': o.qd = String(val()).split(',').filter(Boolean).map(Number); break;
      case '--size': o.size = val(); break;
      case '--cache': o.cache = val(); break;
      case '--dirty': o.dirty = val(); break;
      case '--dir': o.dir = val(); break;
      case '--no-fill': o.fill = false; break;
      case '--no-sp': o.sp = false; break;
      case '--json': o.json = true; break;
      case '-h': case '--help': {
        const src = readFileSync(fileURLToPath(import.meta.url), 'utf8');
        process.stdout.write(src.split('\n').slice(1).filter((l) => l.startsWith('//')).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
        process.exit(0);
      }
      default: die(`unknown option ${a} (try --help)`);
    }
  }
  if (!(o.runtime > 0 && o.runtime <= 60)) die('--runtime must be in (0, 60] seconds');
  for (const r of o.rows) if (!ROWS[r]) die(`unknown row ${r}; rows: ${Object.keys(ROWS).join(', ')}`);
  for (const q of o.qd) if (!(Number.isInteger(q) && q >= 1 && q <= 256)) die(`bad queue depth ${q}`);
  o.bytes = parseSize(o.size);
  o.cacheBytes = parseSize(o.cache);
  o.dirtyBytes = parseSize(o.dirty);
  return o;
}

// ---------- fio ----------

const children = new Set();
function runFio(args, label, seconds) {
  return new Promise((res, rej) => {
    const child = spawn('fio', ['--output-format=json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    const t0 = Date.now();
    const tick = process.stderr.isTTY && seconds ? setInterval(() => process.stderr.write(`\r  ${label}: ${((Date.now() - t0) / 1000).toFixed(0)}/${seconds} s `), 500) : null;
    const bound = setTimeout(() => child.kill('SIGKILL'), ((seconds ?? 60) + 30) * 1000);
    child.on('close', (code, signal) => { // 'close': every byte of fio's JSON has been read
      children.delete(child);
      clearTimeout(bound);
      if (tick) {
        clearInterval(tick);
        process.stderr.write('\r\x1b[K');
      }
      if (code !== 0) return rej(new Error(`fio failed (exit ${code} ${signal ?? ''}) for ${label}\n$ fio ${args.join(' ')}\n${err}\n${out.slice(-2000)}`));
      try {
        res(JSON.parse(out.slice(out.indexOf('{'))));
      } catch (e) {
        rej(new Error(`cannot parse fio output for ${label}: ${e.message}\n${out.slice(0, 2000)}`));
      }
    });
  });
}

function fioSummary(json) {
  const job = json.jobs[0];
  if (job.error) throw new Error(`fio job error ${job.error}`);
  const d = job.write;
  const p = d.clat_ns?.percentile ?? {};
  return { iops: d.iops, ios: d.total_ios, p50us: (p['50.000000'] ?? 0) / 1000, p99us: (p['99.000000'] ?? 0) / 1000 };
}

function tryExec(cmd, args) {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split('\n')[0];
  } catch {
    return 'unknown';
  }
}

// ---------- the stacks ----------

async function loadModules() {
  try {
    const cache = await import(join(DIST, 'array/cache/index.js'));
    const block = await import(join(DIST, 'block/index.js'));
    const nbd = await import(join(DIST, 'nbd/index.js'));
    const vault = await import(join(DIST, 'array/vault/index.js'));
    return { ...cache, ...block, ...nbd, ...vault };
  } catch (e) {
    die(`cannot load dist/ (run npm run build first): ${e.message}`);
  }
}

/** An export whose device can be swapped between rows. */
function catalog() {
  const exp = { name: 'disk', device: null };
  return { exp, cat: { lookup: (n) => (n === 'disk' || n === '' ? exp : undefined), list: () => [exp] } };
}

function buildStack(M, kind, store, cacheBytes) {
  if (kind === 'raw') return { device: store, cache: null, peer: null };
  const budget = new M.CacheBudget(cacheBytes);
  const peer = kind === 'wb-mirror' ? new M.PeerMirrorStore() : null;
  const cache = new M.WriteCache({ lun: 0, lower: store, budget, mode: kind === 'wt' ? 'write-through' : 'write-back', requireMirror: kind !== 'wb' });
  return { device: cache, cache, peer, budget };
}

/** Fake-but-valid page content: distinct per page, cheap to make. */
function pageData(i) {
  const b = Buffer.allocUnsafe(PAGE);
  b.fill(i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

function fmtMs(ms) {
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(0);
}

// ---------- main ----------

let workDir = null;
function cleanup() {
  for (const c of children) c.kill('SIGKILL');
  if (workDir) {
    try {
      rmSync(workDir, { recursive: true, force: true });
    } catch {
      /* ignore */
    }
    workDir = null;
  }
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { log(`\nbench:cache: ${sig}, stopping`); cleanup(); process.exit(130); });

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const M = await loadModules();
  mkdirSync(o.dir, { recursive: true });
  workDir = mkdtempSync(join(o.dir, 'sanbox-bench-cache-'));
  const started = Date.now();
  applyHaltPoll('bench-cache', log, die);
  const versions = { fio: tryExec('fio', ['--version']), sanbox: tryExec('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']), node: process.version, cpus: cpus().length, machine: machineFacts() };
  log(`bench:cache: rows ${o.rows.join(',')} x QD ${o.qd.join(',')}, ${o.runtime} s each; image ${o.size}, cache ${o.cache}, dirty ${o.dirty}; in ${workDir}`);
  log(`  ${versions.fio}, sanbox ${versions.sanbox}, node ${versions.node}, ${versions.cpus} CPUs, ${machineText(versions.machine)}`);

  const results = { versions, options: { runtime_s: o.runtime, size: o.bytes, cache: o.cacheBytes, dirty: o.dirtyBytes, qd: o.qd }, rows: [], takeover: null, vault: null, sp: null };
  const img = join(workDir, 'lun0.img');
  await M.FileBackingStore.create(img, o.bytes);
  if (o.fill) {
    const t0 = Date.now();
    const fd = openSync(img, 'r+');
    const chunk = Buffer.alloc(1 << 20, 0x5a);
    for (let off = 0; off < o.bytes; off += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, o.bytes - off), off);
    fdatasyncSync(fd); // on disk: no row's flushes pay for the fill's writeback
    closeSync(fd);
    log(`  filled the image in ${Date.now() - t0} ms`);
  }
  const store = await M.FileBackingStore.open(img);
  const { exp, cat } = catalog();
  results.rows = [];
  const server = new M.NbdServer({ catalog: cat });
  const { port } = await server.listen(0, HOST);
  const uri = `nbd://${HOST}:${port}/disk`;

  try {
    const total = o.rows.length * o.qd.length;
    let n = 0;
    for (const kind of o.rows) {
      const row = { row: kind, label: ROWS[kind] };
      for (const qd of o.qd) {
        n++;
        const stack = buildStack(M, kind, store, o.cacheBytes);
        exp.device = stack.device;
        let mirror = null;
        if (stack.peer) {
          mirror = new M.LocalCacheMirror(stack.peer);
          await stack.cache.attachMirror(mirror);
          stack.cache.setMode('write-back');
        }
        const label = `[${n}/${total}] ${ROWS[kind]} QD${qd}`;
        log(`${label} ...`);
        const cpu0 = selfCpuUs();
        const json = await runFio(['--name=bench', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', `--iodepth=${qd}`, `--size=${o.bytes}`, `--runtime=${o.runtime}`, '--time_based', '--randrepeat=1'], label, o.runtime);
        const s = { ...fioSummary(json), cpuUsPerWrite: null };
        s.cpuUsPerWrite = (selfCpuUs() - cpu0) / s.ios; // this process: NBD server, cache, its threads
        let drainMs = null;
        let dirtyAtEnd = 0;
        if (stack.cache) {
          dirtyAtEnd = stack.cache.dirtyBytes;
          const t = performance.now();
          await stack.cache.destageAll();
          drainMs = performance.now() - t;
          if (stack.peer && stack.peer.bytes !== 0) log(`  warning: peer still holds ${stack.peer.bytes} bytes after destageAll`);
          await stack.cache.halt();
        } else {
          // No cache: what it left in the page cache goes to disk now, not in the next row's flushes.
          const t = performance.now();
          await store.flush();
          drainMs = performance.now() - t;
        }
        row[`qd${qd}`] = { ...s, dirtyAtEndBytes: dirtyAtEnd, drainMs };
        log(`  ${label}: ${s.iops.toFixed(0)} IOPS, p50 ${s.p50us.toFixed(1)} us, p99 ${s.p99us.toFixed(1)} us${stack.cache ? `; ${(dirtyAtEnd / 2 ** 20).toFixed(1)} MiB dirty at end, drained in ${fmtMs(drainMs)} ms` : `; flushed afterwards in ${fmtMs(drainMs)} ms`}`);
      }
      results.rows.push(row);
    }
    exp.device = store;

    // ---- takeover: the survivor turns its PeerMirrorStore copy into a serving WriteCache ----
    {
      const pages = Math.floor(Math.min(o.dirtyBytes, o.bytes) / PAGE);
      log(`takeover: dead SP's LUN with ${(pages * PAGE) / 2 ** 20} MiB dirty in the survivor's PeerMirrorStore ...`);
      const peer = new M.PeerMirrorStore();
      const batch = [];
      for (let i = 0; i < pages; i++) {
        batch.push({ index: i * Math.floor(o.bytes / PAGE / pages), generation: i + 1, data: pageData(i) });
        if (batch.length === 256 || i === pages - 1) peer.mirror(0, batch.splice(0));
      }
      const budget = new M.CacheBudget(Math.max(o.cacheBytes, pages * PAGE));
      const t0 = performance.now();
      const taken = peer.take(0);
      const maxGen = taken.reduce((m, p) => Math.max(m, p.generation), 0);
      const cache = new M.WriteCache({ lun: 0, lower: store, budget, mode: 'write-through', initialGeneration: maxGen });
      await cache.loadDirty(taken);
      const readyMs = performance.now() - t0;
      const t1 = performance.now();
      await cache.destageAll();
      const destageMs = performance.now() - t1;
      await cache.halt();
      results.takeover = { dirtyBytes: pages * PAGE, readyMs, destageMs };
      log(`  takeover: ready to serve after ${fmtMs(readyMs)} ms; destaged ${(pages * PAGE) / 2 ** 20} MiB in ${fmtMs(destageMs)} ms`);
    }

    // ---- vault: dump a full cache (own + peer) and restore it ----
    {
      const pages = Math.floor(Math.min(o.dirtyBytes, o.bytes) / PAGE);
      log(`vault: dump and restore ${(2 * pages * PAGE) / 2 ** 20} MiB (own cache + peer mirror, ${pages} pages each) ...`);
      const budget = new M.CacheBudget(pages * PAGE);
      const own = new M.WriteCache({ lun: 0, lower: store, budget, mode: 'write-back', requireMirror: false, autoDestage: false });
      const stride = Math.floor(o.bytes / PAGE / pages);
      for (let i = 0; i < pages; i += 256) {
        const ws = [];
        for (let j = i; j < Math.min(pages, i + 256); j++) ws.push(own.write(j * stride * PAGE, pageData(j)));
        await Promise.all(ws);
      }
      const peerPages = [];
      for (let i = 0; i < pages; i++) peerPages.push({ index: i * stride, generation: i + 1, data: pageData(i ^ 0x5555) });
      const vault = new M.Vault(join(workDir, 'vault-A'), 'A');
      await vault.ensure();
      const t0 = performance.now();
      const image = { caches: [{ lun: 0, role: 'own', pageSize: PAGE, pages: own.dirtyPages() }, { lun: 1, role: 'peer', pageSize: PAGE, pages: peerPages }], logs: [] };
      const collectMs = performance.now() - t0;
      const d = await vault.dump(image, { deadlineMs: 60_000 });
      const dumpMs = performance.now() - t0;
      if (!d.complete) throw new Error(`vault dump incomplete: ${JSON.stringify(d)}`);
      await own.halt(); // power off: the cache is gone
      const t1 = performance.now();
      const loaded = await vault.loadOrThrow();
      const loadMs = performance.now() - t1;
      const budget2 = new M.CacheBudget(pages * PAGE);
      const restored = new M.WriteCache({ lun: 0, lower: store, budget: budget2, mode: 'write-through' });
      const ownSection = loaded.caches.find((c) => c.role === 'own');
      await restored.loadDirty(ownSection.pages);
      await restored.destageAll();
      const peerStore = new M.PeerMirrorStore();
      const peerSection = loaded.caches.find((c) => c.role === 'peer');
      peerStore.mirror(peerSection.lun, peerSection.pages);
      await vault.markConsumed(loaded.generation);
      const restoreMs = performance.now() - t1;
      await restored.halt();
      results.vault = { bytes: d.totalBytes, dumpMs, collectMs, loadMs, restoreMs };
      log(`  vault: dump ${(d.totalBytes / 2 ** 20).toFixed(1)} MiB in ${fmtMs(dumpMs)} ms (collect ${fmtMs(collectMs)} ms); restore in ${fmtMs(restoreMs)} ms (load + validate ${fmtMs(loadMs)} ms, then replay + destage)`);
    }
  } finally {
    await server.close(1000).catch(() => {});
    await store.close().catch(() => {});
  }
  if (o.sp) {
    try {
      await spSection(o, results);
    } catch (e) {
      log(`SP pair rows failed: ${e.stack ?? e.message}`);
      results.spError = e.message;
    }
  }
  cleanup();
  results.elapsedS = (Date.now() - started) / 1000;

  if (o.json) {
    process.stdout.write(JSON.stringify(results, null, 2) + '\n');
    return;
  }
  const qcols = o.qd.map((q) => `QD${q}`);
  const header = ['mode', ...qcols.flatMap((q) => [`${q} IOPS`, `${q} p50 us`, `${q} p99 us`, `${q} CPU us/w`])];
  const lines = results.rows.map((r) => [r.label, ...o.qd.flatMap((q) => [r[`qd${q}`].iops.toFixed(0), r[`qd${q}`].p50us.toFixed(1), r[`qd${q}`].p99us.toFixed(1), r[`qd${q}`].cpuUsPerWrite?.toFixed(1) ?? '-'])]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |';
  const out = [
    '',
    `4k random writes, fio nbd engine, ${o.runtime} s per cell, image ${o.size}, cache ${o.cache} (${versions.cpus} CPUs, node ${versions.node})`,
    fmt(header),
    '| ' + widths.map((w, i) => (i === 0 ? '-'.repeat(w) : '-'.repeat(w - 1) + ':')).join(' | ') + ' |',
    ...lines.map(fmt),
    'CPU us/w: CPU per write of the serving side while fio ran (not fio): in-process rows this process (NBD server, cache, its threads); SP rows the chassis and both SP processes',
    '',
  ];
  if (results.takeover) out.push(`takeover of a dead SP's LUN (${results.takeover.dirtyBytes / 2 ** 20} MiB dirty in the PeerMirrorStore): ready to serve in ${fmtMs(results.takeover.readyMs)} ms, destaged in ${fmtMs(results.takeover.destageMs)} ms`);
  if (results.vault) out.push(`vault: dump of a full cache (${(results.vault.bytes / 2 ** 20).toFixed(1)} MiB, own + peer) ${fmtMs(results.vault.dumpMs)} ms; restore (validate, replay, destage) ${fmtMs(results.vault.restoreMs)} ms`);
  if (results.sp?.vault) {
    const v = results.sp.vault;
    out.push(`SP pair vault: power-fail with ${(v.dirtyBytes / 2 ** 20).toFixed(1)} MiB dirty on SP A: dump ${v.dump.map((d) => `SP ${d.sp} ${((d.bytes ?? 0) / 2 ** 20).toFixed(1)} MiB in ${d.ms} ms`).join(', ')} (power off after ${v.powerFailMs} ms); power-restore ${v.restoreMs} ms (${v.replay})`);
  }
  if (results.sp?.takeover) {
    const t = results.sp.takeover;
    out.push(`SP pair takeover: sp-crash A with ${(t.dirtyBytes / 2 ** 20).toFixed(1)} MiB dirty: SP B took over LUNs ${JSON.stringify(t.luns)} (${t.pages} pages) in ${t.ms} ms (chassis), ${t.spMs} ms inside the SP`);
  }
  if (results.spError) out.push(`SP pair rows failed: ${results.spError}`);
  out.push(`total ${results.elapsedS.toFixed(0)} s`, '');
  process.stdout.write(out.join('\n'));
}

// ---------- through a real SP pair ----------

const SP_ROWS = {
  'sp-owner': { label: 'SP pair: owner port (write-back, CMI mirror)', sp: 'A' },
  'sp-peer': { label: 'SP pair: peer port (forwarded over CMI)', sp: 'B' },
  'sp-wt': { label: 'SP pair: owner, battery failed (write-through)', sp: 'A' },
};

function sanbox(args, env, timeoutMs = 60_000) {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [SANBOX_BIN, ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      children.delete(child);
      clearTimeout(t);
      if (code !== 0) return rej(new Error(`sanbox ${args.join(' ')} exited ${code}: ${err}${out}`));
      try {
        res(JSON.parse(out));
      } catch {
        res(out);
      }
    });
  });
}

async function spSection(o, results) {
  const images = join(workDir, 'sp-images');
  const env = { SANBOX_IMAGES: images };
  const lab = join(workDir, 'sp-lab.yaml');
  const dirty = Math.min(o.dirtyBytes, Math.floor(o.cacheBytes / 2));
  writeFileSync(
    lab,
    ['lab: benchcache', 'arrays:', '  - name: bench', '    nbd: { port: 0 }', '    api: { port: 0 }', '    sps:', `      cacheSize: ${o.cacheBytes}`, '      idleMs: 0', '      battery: { charge: 100, holdUpMs: 60000 }', '    luns:', `      - { name: disk0, size: ${o.bytes} }`, ''].join('\n'),
  );
  log(`SP pair: sanbox up (two SP processes, cache ${o.cache} each, idle destaging off) ...`);
  const up = await sanbox(['up', lab, '--detach', '--json'], env);
  const ports = Object.fromEntries(up.arrays[0].sps.map((x) => [x.name, x.port]));
  // CPU of the array: the chassis and its SP processes (SP A crashes only after the rows).
  const arrayPids = [up.arrays[0].pid, ...childPids(up.arrays[0].pid)];
  const arrayCpuUs = () => arrayPids.reduce((n, pid) => n + procCpuUs(pid), 0);
  const uriOf = (sp) => `nbd://${HOST}:${ports[sp]}/disk0`;
  const sp = { rows: [], vault: null, takeover: null };
  results.sp = sp;
  try {
    if (o.fill) {
      // Nothing is cached yet: filling the image behind the SPs' backs is safe.
      const fd = openSync(join(images, 'bench', 'lun0.img'), 'r+');
      const chunk = Buffer.alloc(1 << 20, 0x5a);
      for (let off = 0; off < o.bytes; off += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, o.bytes - off), off);
      fdatasyncSync(fd); // on disk: the first row's destaging does not pay for the fill's writeback
      closeSync(fd);
    }
    const ids = Object.keys(SP_ROWS);
    let n = 0;
    for (const id of ids) {
      const def = SP_ROWS[id];
      if (id === 'sp-wt') {
        await sanbox(['fault', 'battery-fail', 'bench', '--json'], env);
        const st = await sanbox(['status', '--json'], env);
        log(`  battery failed: SP A cache mode ${st.sps.find((x) => x.name === 'A').cache.mode}`);
      }
      const row = { row: id, label: def.label };
      for (const qd of o.qd) {
        n++;
        const label = `[SP ${n}/${ids.length * o.qd.length}] ${def.label} QD${qd}`;
        log(`${label} ...`);
        const cpu0 = arrayCpuUs();
        const s = fioSummary(await runFio(['--name=bench', '--ioengine=nbd', `--uri=${uriOf(def.sp)}`, '--rw=randwrite', '--bs=4k', `--iodepth=${qd}`, `--size=${o.bytes}`, `--runtime=${o.runtime}`, '--time_based', '--randrepeat=1'], label, o.runtime));
        s.cpuUsPerWrite = (arrayCpuUs() - cpu0) / s.ios;
        row[`qd${qd}`] = s;
        log(`  ${label}: ${s.iops.toFixed(0)} IOPS, p50 ${s.p50us.toFixed(1)} us, p99 ${s.p99us.toFixed(1)} us`);
      }
      results.rows.push(row);
      sp.rows.push(row);
    }
    await sanbox(['fault', 'battery-repair', 'bench', '--json'], env);

    const makeDirty = async (what) => {
      // Sequential 64k writes of `dirty` bytes somewhere the earlier rows' pages were destaged from.
      log(`  writing ${(dirty / 2 ** 20).toFixed(0)} MiB through SP A for ${what} ...`);
      await runFio(['--name=dirty', '--ioengine=nbd', `--uri=${uriOf('A')}`, '--rw=write', '--bs=64k', '--iodepth=8', `--size=${dirty}`], `dirty for ${what}`, null);
      const st = await sanbox(['status', '--json'], env);
      return st.sps.find((x) => x.name === 'A').cache.dirtyBytes;
    };

    // vault: power-fail with a full-ish cache, then power-restore
    {
      // Let the battery repair settle into write-back before dirtying the cache.
      for (let i = 0; i < 20; i++) {
        const st = await sanbox(['status', '--json'], env);
        if (st.sps.every((x) => x.cache.mode === 'write-back')) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const dirtyNow = await makeDirty('the vault');
      log(`SP pair vault: power-fail with ${(dirtyNow / 2 ** 20).toFixed(1)} MiB dirty on SP A ...`);
      const pf = await sanbox(['fault', 'power-fail', 'bench', '--json'], env, 120_000);
      const pr = await sanbox(['fault', 'power-restore', 'bench', '--json'], env, 120_000);
      const replay = Object.entries(pr.restored ?? {}).map(([k, v]) => `SP ${k} replayed ${JSON.stringify(v.replayedPages)} pages in ${v.ms} ms`).join(', ');
      sp.vault = { dirtyBytes: dirtyNow, powerFailMs: pf.ms, dump: pf.sps.map((x) => ({ sp: x.sp, dumped: x.dumped, bytes: x.bytes, ms: x.ms, pages: x.pages })), restoreMs: pr.ms, replay, raw: { powerFail: pf, powerRestore: pr } };
      log(`  dump: ${pf.sps.map((x) => `SP ${x.sp} ${x.dumped ? `${((x.bytes ?? 0) / 2 ** 20).toFixed(1)} MiB in ${x.ms} ms` : 'no dump'}`).join(', ')}; restore ${pr.ms} ms (${replay})`);
    }

    // takeover: crash the owner with a full-ish cache
    {
      const dirtyNow = await makeDirty('the takeover');
      log(`SP pair takeover: sp-crash A with ${(dirtyNow / 2 ** 20).toFixed(1)} MiB dirty ...`);
      const r = await sanbox(['fault', 'sp-crash', 'bench', 'A', '--json'], env);
      sp.takeover = { dirtyBytes: dirtyNow, ...r.takeover };
      log(`  SP B took over LUNs ${JSON.stringify(r.takeover?.luns)} (${r.takeover?.pages} pages) in ${r.takeover?.ms} ms (${r.takeover?.spMs} ms inside the SP)`);
    }
  } finally {
    const t = Date.now();
    await sanbox(['down', 'benchcache'], env, 60_000).catch((e) => log(`  down failed: ${e.message}`));
    log(`SP pair: lab down in ${Date.now() - t} ms`);
  }
}

main().catch((e) => {
  log(`bench:cache: ${e.stack ?? e.message}`);
  cleanup();
  process.exit(1);
});
