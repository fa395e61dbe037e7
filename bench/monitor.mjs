#!/usr/bin/env node
// Pair resync monitor benchmark: how long after a link restore a suspended pair is back in PAIR.
// A real lab (`sanbox up --detach`): alpha and bravo, a link emulator (0 ms), and three
// synchronous 8 MiB mirrors, each brought back a different way, in the same cycles:
//   monitor+events  m0, secondary recovery manual: the lab's monitor (interval --interval)
//                   resynchronizes it; it follows alpha's event stream, so it reacts at once
//   monitor-poll    m1, recovery manual: a second monitor daemon started with --no-events (polling
//                   only, same interval) resynchronizes it: what the event stream saves
//   array-auto      m2, recovery auto: the array resynchronizes it by itself when the link
//                   returns (the baseline: no monitor involved; the lab's monitor only watches it
//                   with autorecover off)
// Each cycle: cut the link, write 64 KiB to each LUN through NBD (qemu-io; a synchronous write
// waits for the remote-write timeout, then the secondary is fractured), wait until all three
// are suspended, restore the link, and take the time until each is connected again (the
// monitors' `resource.state` events, same clock). Median, p90 and max per way, and the ratio to
// the array's own recovery. Every resync is verified identical at the end. The restore comes
// right after the polling monitor saw the suspension: its row is about one interval, polling's
// worst case (its average would be half an interval).
//
//   npm run bench:monitor [-- --cycles 20 --interval 10 --json]
//
// Options:
//   --cycles N      cut/restore cycles                              default 20
//   --interval S    both monitors' poll interval, seconds           default 10
//   --json          the whole result as JSON on stdout (progress on stderr)
//   --smoke         CI: 3 cycles
// Every run also writes bench/results/monitor-<timestamp>.json. Exits non-zero only when the
// benchmark itself failed (a pair that never came back, a mirror that is not identical).
import { mkdtempSync, rmSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { spawnSync, spawn } from 'node:child_process';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { REPO, setProgram, die, log, readHelp, freePort, table } from './lib/common.mjs';

setProgram('bench-monitor');
const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(readHelp(import.meta.url));
  process.exit(0);
}
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const smoke = argv.includes('--smoke');
const json = argv.includes('--json');
const cycles = Number(opt('--cycles', smoke ? '3' : '20'));
const interval = Number(opt('--interval', '10'));
if (!Number.isInteger(cycles) || cycles < 1 || cycles > 1000) die('--cycles must be 1-1000');
if (!Number.isInteger(interval) || interval < 1 || interval > 3600) die('--interval must be 1-3600 seconds');

const BIN = join(REPO, 'bin', 'sanbox.js');
const dir = mkdtempSync(join(tmpdir(), 'sanbox-bench-mon-'));
const env = { ...process.env, SANBOX_IMAGES: dir, SANBOX_LAB: '', SANBOX_API: '', SANBOX_MONITOR_STATE: '' };
const WAYS = [
  { way: 'monitor+events', mirror: 'm0', lun: 'disk0' },
  { way: 'monitor-poll', mirror: 'm1', lun: 'disk1' },
  { way: 'array-auto', mirror: 'm2', lun: 'disk2' },
];

function sanbox(args, timeout = 60_000) {
  const r = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout });
  if (r.status !== 0) throw new Error(`sanbox ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** Follows a monitor's events (sanbox monitor events -f --json) into `sink`. */
function follow(state, sink) {
  const p = spawn(process.execPath, [BIN, 'monitor', 'events', '-f', '--json', '--state', state], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  p.stdout.on('data', (d) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      sink.push(JSON.parse(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
    }
  });
  return p;
}

/** POST /v1/cut or /v1/restore on the lab's link emulator. */
async function linkApi(up, verb, body) {
  const l = up.links[0];
  const headers = { 'Content-Type': 'application/json', ...(l.api.token ? { Authorization: `Bearer ${l.api.token}` } : {}) };
  const r = await fetch(`${l.api.url}/v1/${verb}`, { method: 'POST', headers, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`link ${verb}: HTTP ${r.status} ${await r.text()}`);
}

function hostWrite(port, lun, pattern) {
  return new Promise((resolve, reject) => {
    const p = spawn('qemu-io', ['-f', 'raw', '-c', `write -P ${pattern} 0 64k`, `nbd://127.0.0.1:${port}/${lun}`], { stdio: 'ignore' });
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`qemu-io exited ${code}`))));
  });
}

const pairOf = (events, mirror, since) => [...events].reverse().find((e) => e.type === 'resource.state' && e.deviceGroup === mirror && e.seq > since)?.to;
/** Waits until each [events, mirror] of `pairs` had a state change to `pair` after since[mirror]. */
async function untilPairs(pairs, pair, since, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pairs.every(([evs, m]) => pairOf(evs, m, since[m] ?? 0) === pair)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`not all ${pair} within ${ms} ms: ${pairs.map(([, m]) => m).join(', ')}`);
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

async function main() {
  const [ra, rb] = [await freePort(), await freePort()];
  const luns = '[{ name: disk0, size: 8M }, { name: disk1, size: 8M }, { name: disk2, size: 8M }]';
  const labFile = join(dir, 'benchmon.yaml');
  writeFileSync(
    labFile,
    `lab: benchmon
arrays:
  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${ra} }, luns: ${luns} }
  - { name: bravo, nbd: { port: 0 }, api: { port: 0 }, remoteLink: { port: ${rb} }, luns: ${luns} }
links:
  - { name: ab, between: [alpha, bravo], latency: 0, secret: bench-monitor-link-secret }
mirrors:
  - { name: m0, primary: alpha:disk0, secondaries: [{ image: bravo:disk0, recovery: manual }] }
  - { name: m1, primary: alpha:disk1, secondaries: [{ image: bravo:disk1, recovery: manual }] }
  - { name: m2, primary: alpha:disk2, secondaries: [{ image: bravo:disk2, recovery: auto }] }
monitor:
  resources:
    - { group: m0, interval: ${interval} }
    - { group: m2, interval: ${interval}, autorecover: no }
`,
  );
  log(`lab in ${dir}; ${cycles} cycles, monitor interval ${interval} s`);
  const up = JSON.parse(sanbox(['up', labFile, '--detach', '--json'], 120_000));
  const port = up.arrays[0].nbd.port;
  const pollState = join(dir, 'poll-monitor');
  mkdirSync(pollState);
  const poller = spawn(process.execPath, [BIN, 'monitor', 'serve', '--state', pollState, '--no-events', '--quiet'], { env, stdio: 'ignore' });
  const children = [poller];
  try {
    const labEvents = [];
    const pollEvents = [];
    await new Promise((r) => setTimeout(r, 1000));
    sanbox(['monitor', 'add', 'benchmon', 'm1', 'benchmon:alpha', '--interval', String(interval), '--state', pollState]);
    children.push(follow(up.monitor.stateDir, labEvents), follow(pollState, pollEvents));
    const src = { m0: labEvents, m1: pollEvents, m2: labEvents };
    const all = WAYS.map((w) => [src[w.mirror], w.mirror]);
    await untilPairs([[labEvents, 'm0'], [labEvents, 'm2']], 'connected', {}, 60_000);
    await untilPairs([[pollEvents, 'm1']], 'connected', {}, 60_000 + interval * 1000);
    const samples = Object.fromEntries(WAYS.map((w) => [w.way, []]));
    for (let c = 0; c < cycles; c++) {
      const seq = (evs) => evs.at(-1)?.seq ?? 0;
      const mark = { m0: seq(labEvents), m1: seq(pollEvents), m2: seq(labEvents) };
      await linkApi(up, 'cut', { direction: 'both' });
      await Promise.all(WAYS.map((w, i) => hostWrite(port, w.lun, 0x10 + ((c * 3 + i) % 200))));
      await untilPairs(all, 'suspended', mark, 30_000 + interval * 1000);
      const mark2 = { m0: seq(labEvents), m1: seq(pollEvents), m2: seq(labEvents) };
      const t0 = Date.now(); // the restore is a ~1 ms request to the emulator's API
      await linkApi(up, 'restore', {});
      await untilPairs(all, 'connected', mark2, 120_000 + interval * 1000);
      const row = [];
      for (const w of WAYS) {
        const e = src[w.mirror].find((x) => x.type === 'resource.state' && x.deviceGroup === w.mirror && x.seq > mark2[w.mirror] && x.to === 'connected');
        const ms = Date.parse(e.time) - t0;
        samples[w.way].push(ms);
        row.push(`${w.way} ${ms} ms`);
      }
      log(`cycle ${c + 1}/${cycles}: ${row.join(', ')}`);
    }
    for (const w of WAYS) {
      const v = JSON.parse(sanbox(['mirror', 'verify', w.mirror, '--lab', 'benchmon', '--json']));
      const identical = Array.isArray(v) ? v.every((x) => x.identical) : v.identical;
      if (!identical) throw new Error(`mirror ${w.mirror} is not identical after the cycles`);
    }
    const base = quantile(samples['array-auto'], 0.5);
    const rows = WAYS.map((w) => {
      const xs = samples[w.way];
      const p50 = quantile(xs, 0.5);
      return { way: w.way, mirror: w.mirror, cycles: xs.length, p50Ms: p50, p90Ms: quantile(xs, 0.9), maxMs: Math.max(...xs), minMs: Math.min(...xs), ratioToArrayAuto: base > 0 ? p50 / base : null, samplesMs: xs };
    });
    const result = { time: new Date().toISOString(), cpus: cpus().length, loadavg: loadavg(), cycles, intervalSeconds: interval, rows };
    mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
    writeFileSync(join(REPO, 'bench', 'results', `monitor-${result.time.replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2) + '\n');
    if (json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else {
      process.stdout.write(`link restore -> PAIR, ${cycles} cycles, monitor interval ${interval} s (all three mirrors in the same cycles)\n`);
      process.stdout.write(table(['way', 'mirror', 'p50 ms', 'p90 ms', 'max ms', 'min ms', 'p50 / array-auto'], rows.map((r) => [r.way, r.mirror, String(r.p50Ms), String(r.p90Ms), String(r.maxMs), String(r.minMs), r.ratioToArrayAuto === null ? '-' : r.ratioToArrayAuto.toFixed(2)])) + '\n');
    }
  } finally {
    for (const c of children) c.kill('SIGTERM');
    spawnSync(process.execPath, [BIN, 'monitor', 'stop', '--state', pollState], { env, timeout: 10_000 });
    spawnSync(process.execPath, [BIN, 'down', 'benchmon', '--timeout', '20'], { env, timeout: 30_000 });
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench-monitor: ${e.stack ?? e}\n`);
  process.exitCode = 1;
});
