#!/usr/bin/env node
// End-to-end NBD benchmark: fio's nbd engine (libnbd) against `sanbox serve`
// and against nbdkit's file plugin, same kind of image (a sparse 1 GiB file
// each, filled through the server before the rows so reads hit real data), in
// the same run, rows interleaved (sanbox, nbdkit, then nbdkit, sanbox, ...) so
// drift hits both alike.
//
//   npm run bench:nbd [-- --runtime 10 --rows randwrite-4k-qd1,write-1m-qd4 --json]
//
// Options (env in brackets):
//   --runtime S     seconds per row and server            [NBD_BENCH_RUNTIME]  default 10
//   --rows LIST     comma-separated row ids (see below)   [NBD_BENCH_ROWS]     default all
//   --servers LIST  sanbox,nbdkit (either or both)        [NBD_BENCH_SERVERS]  default both
//   --size SIZE     image size, e.g. 1G, 512M             [NBD_BENCH_SIZE]     default 1G
//   --dir DIR       where the temporary images go         [NBD_BENCH_DIR]      default os.tmpdir()
//   --repeat N      runs per row and server; the median (by IOPS) is reported   default 1
//   --no-fill       skip the fill pass
//   --tls           both servers with --tls require and an x509 certificate (made with openssl);
//                   fio connects with nbds:// and finds the CA in $HOME/.pki/libnbd of a temporary
//                   HOME (fio's nbd engine refuses tls-psk-file and tls-certificates in URIs) [NBD_BENCH_TLS=1]
//   --json          print the results as JSON on stdout (progress stays on stderr)
// SANBOX_BIN=path runs another sanbox entry point instead of the repo's bin/sanbox.js.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, openSync, ftruncateSync, closeSync, readFileSync, copyFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { probeNbd } from './lib/common.mjs';
import { applyHaltPoll, machineFacts, machineText } from './lib/machine.mjs';
import { procCpuUs } from './lib/cpu.mjs';
import { tmpdir, cpus } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HOST = '127.0.0.1';

const ROWS = {
  'randwrite-4k-qd1': { rw: 'randwrite', bs: '4k', qd: 1, label: '4k randwrite QD1' },
  'randwrite-4k-qd16': { rw: 'randwrite', bs: '4k', qd: 16, label: '4k randwrite QD16' },
  'randread-4k-qd16': { rw: 'randread', bs: '4k', qd: 16, label: '4k randread QD16' },
  'write-1m-qd4': { rw: 'write', bs: '1m', qd: 4, label: '1M seq write QD4' },
};

function parseArgs(argv) {
  const o = {
    runtime: Number(process.env.NBD_BENCH_RUNTIME ?? 10),
    rows: (process.env.NBD_BENCH_ROWS ?? Object.keys(ROWS).join(',')).split(',').filter(Boolean),
    servers: (process.env.NBD_BENCH_SERVERS ?? 'sanbox,nbdkit').split(',').filter(Boolean),
    size: process.env.NBD_BENCH_SIZE ?? '1G',
    dir: process.env.NBD_BENCH_DIR ?? tmpdir(),
    repeat: 1,
    fill: true,
    json: false,
    tls: process.env.NBD_BENCH_TLS === '1',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => inline ?? argv[++i];
    switch (flag) {
      case '--runtime': o.runtime = Number(val()); break;
      case '--rows': o.rows = String(val()).split(',').filter(Boolean); break;
      case '--servers': o.servers = String(val()).split(',').filter(Boolean); break;
      case '--size': o.size = String(val()); break;
      case '--dir': o.dir = String(val()); break;
      case '--repeat': o.repeat = Number(val()); break;
      case '--no-fill': o.fill = false; break;
      case '--tls': o.tls = true; break;
      case '--json': o.json = true; break;
      case '-h': case '--help':
        process.stdout.write(readHelp());
        process.exit(0);
        break;
      default:
        die(`unknown option ${a} (try --help)`);
    }
  }
  if (!(o.runtime > 0)) die('--runtime must be a positive number of seconds');
  if (!(o.repeat >= 1)) die('--repeat must be >= 1');
  for (const r of o.rows) if (!ROWS[r]) die(`unknown row ${r}; rows: ${Object.keys(ROWS).join(', ')}`);
  for (const s of o.servers) if (s !== 'sanbox' && s !== 'nbdkit') die(`unknown server ${s}; servers: sanbox, nbdkit`);
  o.bytes = parseSize(o.size);
  return o;
}

function readHelp() {
  const src = readFileSync(fileURLToPath(import.meta.url), 'utf8');
  return src.split('\n').slice(1).filter((l) => l.startsWith('//')).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n';
}

function parseSize(s) {
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(String(s).trim());
  if (!m) die(`bad size ${s}`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2].toUpperCase()];
  return Number(m[1]) * mult;
}

function die(msg) {
  process.stderr.write(`nbd-fio: ${msg}\n`);
  process.exit(2);
}

const log = (msg) => process.stderr.write(`${msg}\n`);

// ---------- servers ----------

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, HOST, () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}


const children = new Set();
function killAll() {
  for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { log(`\nnbd-fio: ${sig}, stopping`); cleanup(); process.exit(130); });
}

/** With --tls: the certificates directory both servers require TLS with (the same options for sanbox and nbdkit). */
let certDir = null;
/** With --tls: fio's environment, HOME holding .pki/libnbd/ca-cert.pem (libnbd's default place). */
let fioEnv = undefined;
const tlsArgs = () => (certDir ? ['--tls', 'require', '--tls-certificates', certDir] : []);

async function startServer(kind, dir, bytes) {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  let cmd;
  let args;
  if (kind === 'nbdkit') {
    const img = join(dir, 'disk.img');
    const fd = openSync(img, 'w');
    ftruncateSync(fd, bytes); // sparse, like the image sanbox creates
    closeSync(fd);
    cmd = 'nbdkit';
    args = ['-f', '--exit-with-parent', '-p', String(port), '-i', HOST, ...tlsArgs(), '--exportname', 'disk', 'file', `file=${img}`];
  } else {
    cmd = process.execPath;
    args = [process.env.SANBOX_BIN ?? join(REPO, 'bin', 'sanbox.js'), 'serve', '--dir', dir, '--port', String(port), '--bind', HOST, '--api-port', '0', '--lun', `disk=${bytes}`, ...tlsArgs()];
  }
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO });
  children.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => { stderr = (stderr + d).slice(-20000); });
  child.stdout.resume();
  let exited = null;
  const exitP = new Promise((r) => child.on('exit', (code, signal) => { exited = { code, signal }; children.delete(child); r(); }));
  child.on('error', (e) => { stderr += `\n[spawn error: ${e.message}]`; });
  const deadline = Date.now() + 30000;
  let delay = 20;
  while (!exited && Date.now() < deadline) {
    if (await probeNbd(port)) {
      return {
        kind, port, pid: child.pid, uri: `${certDir ? 'nbds' : 'nbd'}://${HOST}:${port}/disk`, stderr: () => stderr, alive: () => !exited,
        stop: async () => {
          if (exited) return;
          child.kill('SIGTERM');
          const t = new Promise((r) => setTimeout(r, 10000).unref());
          await Promise.race([exitP, t]);
          if (!exited) { child.kill('SIGKILL'); await exitP; }
        },
      };
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 250);
  }
  if (!exited) { child.kill('SIGKILL'); await exitP; }
  throw new Error(`${kind} did not start (exit ${JSON.stringify(exited)})\n$ ${[cmd, ...args].join(' ')}\n${stderr}`);
}

// ---------- fio ----------

function runFio(args, { label, seconds, server }) {
  return new Promise((res, rej) => {
    const child = spawn('fio', ['--output-format=json', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: fioEnv });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
    const t0 = Date.now();
    const tty = process.stderr.isTTY;
    const tick = tty && seconds ? setInterval(() => {
      const el = (Date.now() - t0) / 1000;
      process.stderr.write(`\r  ${label}: ${el.toFixed(0)}/${seconds} s `);
    }, 500) : null;
    // hard bound: runtime + generous setup/teardown allowance
    const bound = setTimeout(() => child.kill('SIGKILL'), ((seconds ?? 120) + 60) * 1000);
    child.on('close', (code, signal) => { // 'close': every byte of fio's JSON has been read
      children.delete(child);
      clearTimeout(bound);
      if (tick) { clearInterval(tick); process.stderr.write('\r\x1b[K'); }
      if (code !== 0) {
        return rej(new Error(`fio failed (exit ${code} ${signal ?? ''}) for ${label}\n$ fio ${args.join(' ')}\n${err}\n${out.slice(-2000)}\n--- ${server.kind} stderr ---\n${server.stderr().slice(-4000)}`));
      }
      try {
        res(JSON.parse(out.slice(out.indexOf('{'))));
      } catch (e) {
        rej(new Error(`cannot parse fio output for ${label}: ${e.message}\n${out.slice(0, 2000)}`));
      }
    });
  });
}

function summarize(json, rw) {
  const job = json.jobs[0];
  if (job.error) throw new Error(`fio job error ${job.error}`);
  const d = rw.includes('read') ? job.read : job.write;
  // Total latency (submission + completion): the nbd engine sends a request while submitting it,
  // so a fast server's reply can arrive before the completion clock starts (clat p50s of 3 us).
  const p = d.lat_ns?.percentile ?? d.clat_ns?.percentile ?? {};
  return {
    iops: d.iops,
    ios: d.total_ios,
    mbps: (d.bw_bytes ?? d.bw * 1024) / 1e6,
    p50us: (p['50.000000'] ?? 0) / 1000,
    p99us: (p['99.000000'] ?? 0) / 1000,
  };
}

async function fill(server, bytes) {
  const label = `${server.kind} fill ${fmtBytes(bytes)}`;
  log(`  filling ${server.kind} image through NBD (1M sequential writes)...`);
  const t0 = Date.now();
  await runFio(['--name=fill', '--ioengine=nbd', `--uri=${server.uri}`, '--rw=write', '--bs=1m', '--iodepth=8', `--size=${bytes}`], { label, seconds: null, server });
  log(`  filled ${server.kind} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

function fmtBytes(n) {
  for (const [u, m] of [['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]]) if (n >= m && n % m === 0) return `${n / m}${u}`;
  return String(n);
}

// ---------- main ----------

let workDir = null;
const servers = {};
function cleanup() {
  killAll();
  if (workDir) { try { rmSync(workDir, { recursive: true, force: true }); } catch { /* ignore */ } workDir = null; }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  applyHaltPoll('nbd-fio', log, die);
  mkdirSync(o.dir, { recursive: true });
  workDir = mkdtempSync(join(o.dir, 'sanbox-bench-'));
  if (o.tls) {
    certDir = join(workDir, 'pki');
    const home = join(workDir, 'home');
    mkdirSync(certDir);
    mkdirSync(join(home, '.pki', 'libnbd'), { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${HOST}`, '-addext', `subjectAltName=IP:${HOST}`,
      '-keyout', join(certDir, 'server-key.pem'), '-out', join(certDir, 'server-cert.pem')], { stdio: 'ignore' });
    copyFileSync(join(certDir, 'server-cert.pem'), join(certDir, 'ca-cert.pem'));
    copyFileSync(join(certDir, 'server-cert.pem'), join(home, '.pki', 'libnbd', 'ca-cert.pem'));
    fioEnv = { ...process.env, HOME: home };
  }
  const versions = {
    fio: tryExec('fio', ['--version']),
    nbdkit: tryExec('nbdkit', ['--version']),
    sanbox: tryExec('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']),
    node: process.version,
    cpus: cpus().length,
    machine: machineFacts(),
  };
  log(`nbd-fio: ${o.rows.length} rows x ${o.servers.join('+')}, ${o.runtime} s each${o.repeat > 1 ? ` x${o.repeat}` : ''}, ${fmtBytes(o.bytes)} sparse images in ${workDir}${o.tls ? ', TLS required (x509)' : ''}`);
  log(`  ${versions.fio}, ${versions.nbdkit}, sanbox ${versions.sanbox}, node ${versions.node}, ${versions.cpus} CPUs, ${machineText(versions.machine)}`);

  try {
    for (const kind of o.servers) {
      servers[kind] = await startServer(kind, join(workDir, kind), o.bytes);
      log(`  ${kind} listening on ${servers[kind].uri}`);
    }
    if (o.fill) for (const kind of o.servers) await fill(servers[kind], o.bytes);

    const results = [];
    const total = o.rows.length * o.servers.length * o.repeat;
    let n = 0;
    for (const [i, id] of o.rows.entries()) {
      const row = ROWS[id];
      const order = i % 2 === 0 ? [...o.servers] : [...o.servers].reverse();
      const runs = Object.fromEntries(o.servers.map((k) => [k, []]));
      for (let rep = 0; rep < o.repeat; rep++) {
        for (const kind of (rep % 2 === 0 ? order : [...order].reverse())) {
          const srv = servers[kind];
          if (!srv.alive()) throw new Error(`${kind} is not running any more\n${srv.stderr().slice(-4000)}`);
          n++;
          const label = `[${n}/${total}] ${row.label} on ${kind}`;
          log(`${label} ...`);
          const cpu0 = procCpuUs(srv.pid);
          const json = await runFio(['--name=bench', '--ioengine=nbd', `--uri=${srv.uri}`, `--rw=${row.rw}`, `--bs=${row.bs}`, `--iodepth=${row.qd}`,
            `--size=${o.bytes}`, `--runtime=${o.runtime}`, '--time_based', '--lat_percentiles=1'], { label, seconds: o.runtime, server: srv });
          const s = summarize(json, row.rw);
          // The server's CPU (all its threads) over fio's run, setup and teardown of the job included.
          s.cpuUsPerOp = (procCpuUs(srv.pid) - cpu0) / Math.max(1, s.ios);
          runs[kind].push(s);
          log(`  ${label}: ${s.iops.toFixed(0)} IOPS, ${s.mbps.toFixed(1)} MB/s, p50 ${s.p50us.toFixed(1)} us, p99 ${s.p99us.toFixed(1)} us, CPU ${s.cpuUsPerOp.toFixed(1)} us/op`);
        }
      }
      const r = { row: id, label: row.label };
      for (const kind of o.servers) {
        const sorted = [...runs[kind]].sort((a, b) => a.iops - b.iops);
        r[kind] = sorted[Math.floor(sorted.length / 2)];
        if (o.repeat > 1) r[`${kind}_runs`] = runs[kind];
      }
      if (r.sanbox && r.nbdkit) r.ratio = r.sanbox.iops / r.nbdkit.iops;
      results.push(r);
    }

    if (o.json) {
      process.stdout.write(JSON.stringify({ runtime_s: o.runtime, size_bytes: o.bytes, repeat: o.repeat, tls: o.tls, versions, rows: results }, null, 2) + '\n');
    } else {
      process.stdout.write(table(results, o.servers));
      if (results.some((r) => r.ratio !== undefined)) {
        process.stdout.write('\nratio = sanbox IOPS / nbdkit IOPS (same as the MB/s ratio); p50/p99 are fio total latencies (submission + completion);\nCPU us/op = the server process\'s CPU time (all threads, from /proc, 10 ms ticks) over the row / requests.\n');
      }
    }
  } finally {
    for (const s of Object.values(servers)) await s.stop();
    cleanup();
  }
}

function tryExec(cmd, args) {
  try { return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split('\n')[0]; } catch { return 'unknown'; }
}

function table(results, kinds) {
  const head = ['row'];
  for (const k of kinds) head.push(`${k} IOPS`, `${k} MB/s`, `${k} p50 us`, `${k} p99 us`, `${k} CPU us/op`);
  if (kinds.length === 2) head.push('ratio');
  const rows = results.map((r) => {
    const cells = [r.label];
    for (const k of kinds) {
      const s = r[k];
      cells.push(s.iops.toFixed(0), s.mbps.toFixed(1), s.p50us.toFixed(1), s.p99us.toFixed(1), s.cpuUsPerOp.toFixed(1));
    }
    if (kinds.length === 2) cells.push(r.ratio !== undefined ? r.ratio.toFixed(2) : '');
    return cells;
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((c) => c[i].length)));
  const line = (cells) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |\n';
  return '\n' + line(head) + '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|\n' + rows.map(line).join('');
}

main().catch((e) => {
  log(`nbd-fio: ${e.stack ?? e.message}`);
  cleanup();
  process.exit(1);
});
