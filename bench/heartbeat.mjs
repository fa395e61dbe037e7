#!/usr/bin/env node
// Heartbeat service (issue 15, seed 004): does a lab of processes fail over only on a real site
// loss, and how fast? Two parts, each on labs of its own (`sanbox up --detach` with SANBOX_IMAGES
// in a temp dir, a lab file written there: ports 0 where allowed, the arrays' nbd, api and
// remote-link ports from a free-port probe, as a heartbeat lab needs them fixed):
//
//   1. soak   one lab, N runs; each draws (seeded) one single-path fault and its length, applies
//             it, undoes it, waits a moment past it (2 intervals), and waits (bounded) until every path is
//             ALIVE/ENABLE again at the standby master and at the production master. Kinds:
//               net-cut-short   hb-net cut for 0.3-0.75 x timeout
//               net-cut-long    hb-net cut for 1.5-2.5 x timeout (the network path FAILS)
//               link-latency    alpha-bravo one-way latency 0.1-0.35 x timeout for 1-2 x timeout
//               link-cut-short  alpha-bravo cut for 0.3-0.75 x timeout
//               net-loss        hb-net loss-like stalls (--loss 30-70 %, --rto 0.2-0.45 x timeout)
//               mirror-fail     one heartbeat mirror's path fails: reads of bravo:hb0 or hb1 fail
//                               (sanbox fault disk --errors read) for 1.5-2.5 x timeout
//               standby-restart bravo-1 SIGKILLed, down 0.3-1 x timeout, started again
//               master-kill     the production master SIGKILLed (the other production host must
//                               take over), restarted after 0.5-1 x timeout
//             Links are set through their emulator's API (a sanbox command costs 1-2 s on a loaded
//             machine); the disk fault and the site failure go through sanbox. Each run prints the
//             fault as applied (from before the call that applies it to after the one that undoes
//             it: an upper bound). A kind not covered: one heartbeat mirror's *link* failing alone
//             (sanbox link cut acts on the whole arrays' link; mirror-fail stands in for it).
//             After each run bravo-1's events are read: hb.failover / hb.failover-started is a false
//             failover; a production host's hb.fenced is a false fence.
//   2. losses M runs, each on a fresh lab: every path ALIVE, `sanbox fault site-fail alpha`; the
//             time from the supervisor's site.failed to bravo-1's hb.failover, detectionMs and
//             promoteMs, against the bound timeout + one interval + promoteMs.
//
//   node bench/heartbeat.mjs [--seed N] [--soak N] [--losses N] [--interval MS] [--timeout K] [--json]
//
// Options:
//   --seed N        base seed of the fault draws                    default 1
//   --soak N        soak runs (0: skip)                             default 200
//   --losses N      site losses (0: skip)                           default 20
//   --interval MS   heartbeat interval                              default 300
//   --timeout K     timeout, in intervals                           default 6
//   --recover K     recoverAfter                                    default 2
//   --kinds LIST    draw only these soak kinds (comma-separated)    default all
//   --json          the result as JSON on stdout
// Progress goes to stderr, the table to stdout. Exit 1 when a false failover (or fence) happened or
// a site loss was not failed over; 2 on bad options. SANBOX_KEEP=1 keeps the temp dirs.
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(REPO, 'bin', 'sanbox.js');
const DIST = resolve(process.env.SANBOX_DIST || join(REPO, 'dist'));
const { mulberry32, mixSeed } = await import(pathToFileURL(join(DIST, 'random', 'index.js')).href);
const { freePorts } = await import(pathToFileURL(join(DIST, 'scenario', 'runner', 'lab.js')).href);

const KINDS = ['net-cut-short', 'net-cut-long', 'link-latency', 'link-cut-short', 'net-loss', 'mirror-fail', 'standby-restart', 'master-kill'];
// ---- options -------------------------------------------------------------------------------------
const opts = { kinds: null, seed: 1, soak: 200, losses: 20, interval: 300, timeout: 6, recover: 2, json: false };
{
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const k = a[i];
    if (k === '--json') opts.json = true;
    else if (k === '--kinds') opts.kinds = String(a[++i]).split(',');
    else if (k === '-h' || k === '--help') {
      process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1).join('\n').split(/\n(?!\/\/)/)[0].split('\n').map((l) => l.slice(3)).join('\n') + '\n');
      process.exit(0);
    } else if (['--seed', '--soak', '--losses', '--interval', '--timeout', '--recover'].includes(k)) {
      const v = Number(a[++i]);
      if (!Number.isInteger(v) || v < 0) die(`${k} wants a whole number >= 0`);
      opts[k.slice(2)] = v;
    } else die(`unknown option ${k}`);
  }
  if (opts.kinds?.some((k) => !KINDS.includes(k))) die(`--kinds: one of ${KINDS.join(', ')}`);
  if (opts.interval < 50) die('--interval: at least 50 ms');
  if (opts.timeout < 2) die('--timeout: at least 2 intervals');
  if (opts.recover < 1) die('--recover: at least 1');
}
function die(msg) {
  process.stderr.write(`heartbeat bench: ${msg}\n`);
  process.exit(2);
}

const PROD = 'alpha'; // the lab's production site
const I = opts.interval;
const T = opts.interval * opts.timeout;
const log = (s) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the lab -------------------------------------------------------------------------------------
const labYaml = (name, rl) => `
lab: ${name}
arrays:
  - name: alpha
    nbd: { port: ${rl[2]} }
    api: { port: ${rl[3]} }
    remoteLink: { port: ${rl[0]} }
    luns: [{ name: disk0, size: 8M }, { name: hb0, size: 1M }, { name: hb1, size: 1M }, { name: rhb0, size: 1M }]
  - name: bravo
    nbd: { port: ${rl[4]} }
    api: { port: ${rl[5]} }
    remoteLink: { port: ${rl[1]} }
    luns: [{ name: disk0, size: 8M }, { name: hb0, size: 1M }, { name: hb1, size: 1M }, { name: rhb0, size: 1M }]
links:
  - { name: alpha-bravo, between: [alpha, bravo], latency: 1, secret: heartbeat-bench-link-secret }
mirrors:
  - { name: m0, primary: alpha:disk0, secondaries: [bravo:disk0] }
  - { name: hb0, primary: alpha:hb0, secondaries: [bravo:hb0], secondaryReads: true }
  - { name: hb1, primary: alpha:hb1, secondaries: [bravo:hb1], secondaryReads: true }
  - { name: rhb0, primary: bravo:rhb0, secondaries: [alpha:rhb0], secondaryReads: true }
dashboard: off
heartbeat:
  cluster: bench
  production: alpha
  standby: bravo
  interval: ${I}ms
  timeout: ${opts.timeout}
  recoverAfter: ${opts.recover}
  hosts:
    - { name: alpha-1, site: alpha }
    - { name: alpha-2, site: alpha }
    - { name: bravo-1, site: bravo }
  network: { latency: 1 }
  mirrors: [hb0, hb1]
  reverseMirrors: [rhb0]
  witness: { port: 0, latency: 1 }
  failover: { promote: [m0], automatic: yes }
  fence: yes
`;

/** A running lab of our own: its images dir, the sanbox command against it, its agents. */
class Lab {
  constructor(name) {
    this.name = name;
    this.dir = '';
    this.spawned = new Map(); // host -> pid of an agent we started again ourselves
    this.restarts = 0;
  }

  sanbox(args, timeoutMs = 60_000) {
    return new Promise((ok) => {
      const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, SANBOX_IMAGES: this.dir, SANBOX_LAB: '', SANBOX_API: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
      p.on('close', (code) => {
        clearTimeout(timer);
        let json;
        try {
          json = JSON.parse(out);
        } catch {}
        ok({ code: code ?? -1, out, err, json });
      });
    });
  }

  async must(args, timeoutMs) {
    const r = await this.sanbox(args, timeoutMs);
    if (r.code !== 0) throw new Error(`sanbox ${args.join(' ')}: exit ${r.code}: ${(r.err || r.out).trim().slice(0, 400)}`);
    return r;
  }

  /** A link emulator's API, straight (a sanbox command costs a second or two on a loaded machine:
   *  too much for a cut meant to be shorter than the timeout). op: cut, restore, set. */
  async link(name, op, body = {}) {
    const l = (this.state.links ?? []).find((x) => x.name === name);
    if (!l) throw new Error(`no link ${name} in the lab state`);
    const headers = { Accept: 'application/json', 'Content-Type': 'application/json', ...(l.api.token ? { Authorization: `Bearer ${l.api.token}` } : {}) };
    const r = await fetch(`${l.api.url}/v1/${op}`, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    if (!r.ok) throw new Error(`link ${name} ${op}: HTTP ${r.status} ${await r.text()}`);
  }

  async up() {
    active = this;
    this.dir = await mkdtemp(join(tmpdir(), 'sanbox-hbbench-'));
    await writeFile(join(this.dir, 'lab.yaml'), labYaml(this.name, await freePorts(6)));
    const t0 = Date.now();
    await this.must(['up', join(this.dir, 'lab.yaml'), '--detach'], 180_000);
    this.state = JSON.parse(await readFile(join(this.dir, '.labs', `${this.name}.json`), 'utf8'));
    this.hosts = Object.fromEntries(this.state.heartbeat.hosts.map((h) => [h.name, h]));
    await this.until('every path ALIVE after up', () => this.allAlive(), 60_000);
    return Date.now() - t0;
  }

  async down() {
    if (!this.dir) return;
    for (const [h, pid] of this.spawned) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {}
      this.spawned.delete(h);
    }
    await this.sanbox(['down', this.name], 90_000);
    if (!process.env.SANBOX_KEEP) await rm(this.dir, { recursive: true, force: true });
    else log(`kept ${this.dir}`);
    this.dir = '';
  }

  async status(host) {
    try {
      const r = await fetch(`${this.hosts[host].url}/v1/status`, { signal: AbortSignal.timeout(2000) });
      return r.ok ? await r.json() : undefined;
    } catch {
      return undefined;
    }
  }

  async events(host, sinceMs = 0) {
    try {
      const r = await fetch(`${this.hosts[host].url}/v1/events`, { headers: { Accept: 'application/json' }, signal: AbortSignal.timeout(3000) });
      const all = (await r.json()).events;
      return all.filter((e) => Date.parse(e.time) >= sinceMs);
    } catch {
      return [];
    }
  }

  async until(what, fn, ms) {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await sleep(100);
    }
  }

  /** Every path ALIVE/ENABLE at the standby master and the production master; null when not. */
  async allAlive() {
    const names = Object.keys(this.hosts);
    const st = await Promise.all(names.map((h) => this.status(h)));
    if (st.some((s) => !s)) return null;
    const by = Object.fromEntries(names.map((h, i) => [h, st[i]]));
    const prod = names.filter((h) => by[h].site === PROD);
    const masters = prod.filter((h) => by[h].isMaster);
    if (masters.length !== 1 || prod.some((h) => by[h].master !== masters[0])) return null;
    const sb = by['bravo-1'];
    const ok = (t) =>
      t.networkEnable === 'ENABLE' && t.remoteGroupStatusByNetwork === 'ALIVE' && t.remoteGroupStatusByMirror === 'ALIVE' && t.remoteCopyEnable === 'ENABLE' && t.devices.every((d) => d.mirror === null || d.status === 'ENABLE');
    if (!sb.isMaster || sb.failedOver || !ok(sb.table) || !ok(by[masters[0]].table)) return null;
    return { master: masters[0], by };
  }

  /** SIGKILL a host's agent (the one `up` started, or ours). */
  async killHost(host) {
    const pid = this.spawned.get(host) ?? this.hosts[host].pid;
    process.kill(pid, 'SIGKILL');
    this.spawned.delete(host);
    await this.until(`${host} gone`, async () => !(await this.status(host)), 10_000);
  }

  /** Start a host's agent again, as `up` does, detached, output to a file in the images dir. */
  async startHost(host) {
    const out = openSync(join(this.dir, `bench-${host}-${++this.restarts}.log`), 'a');
    const p = spawn(process.execPath, [BIN, 'hb', 'serve', '--config', this.hosts[host].config], { detached: true, stdio: ['ignore', out, out], env: { ...process.env, SANBOX_IMAGES: this.dir } });
    closeSync(out);
    p.unref();
    this.spawned.set(host, p.pid);
    await this.until(`${host} answering`, async () => !!(await this.status(host)), 20_000);
  }
}

// ---- 1. soak -------------------------------------------------------------------------------------

// rough seconds a run costs beyond its fault (sanbox commands, the moment past it, recovery)
const OVERHEAD_S = { 'net-cut-short': 2, 'net-cut-long': 3.5, 'link-latency': 2.5, 'link-cut-short': 3, 'net-loss': 2.5, 'mirror-fail': 3.5, 'standby-restart': 4, 'master-kill': 5 };
const between = (r, a, b) => a + (b - a) * r();

/** The plan: every run's kind and parameters, drawn from the seed alone. */
function plan(seed, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const s = mixSeed(seed, i);
    const r = mulberry32(s);
    const kinds = opts.kinds ?? KINDS;
    const kind = kinds[Math.floor(r() * kinds.length)];
    const p = { run: i + 1, seed: s, kind };
    if (kind === 'net-cut-short' || kind === 'link-cut-short') p.ms = Math.round(between(r, 0.3, 0.75) * T);
    else if (kind === 'net-cut-long') p.ms = Math.round(between(r, 1.5, 2.5) * T);
    else if (kind === 'link-latency') Object.assign(p, { latency: Math.round(between(r, 0.1, 0.35) * T), ms: Math.round(between(r, 1, 2) * T) });
    else if (kind === 'net-loss') Object.assign(p, { loss: Math.round(between(r, 30, 70)), rto: Math.round(between(r, 0.2, 0.45) * T), ms: Math.round(between(r, 1, 2) * T) });
    else if (kind === 'mirror-fail') Object.assign(p, { mirror: r() < 0.5 ? 'hb0' : 'hb1', ms: Math.round(between(r, 1.5, 2.5) * T) });
    else if (kind === 'standby-restart') p.ms = Math.round(between(r, 0.3, 1) * T);
    else if (kind === 'master-kill') p.ms = Math.round(between(r, 0.5, 1) * T);
    out.push(p);
  }
  return out;
}

const MOMENT = () => 2 * I; // waited past the undone fault before checking the recovery
const RECOVER_MS = 30_000;

async function applyFault(lab, p, alive) {
  const f = {}; // what the run saw beyond the events
  switch (p.kind) {
    case 'net-cut-short':
    case 'net-cut-long':
      f.on = Date.now(); // upper bound: from before the command that applies it to after the one that undoes it
      await lab.link('hb-net', 'cut');
      await sleep(p.ms);
      await lab.link('hb-net', 'restore');
      f.off = Date.now();
      break;
    case 'link-cut-short':
      f.on = Date.now(); // upper bound: from before the command that applies it to after the one that undoes it
      await lab.link('alpha-bravo', 'cut');
      await sleep(p.ms);
      await lab.link('alpha-bravo', 'restore');
      f.off = Date.now();
      break;
    case 'link-latency':
      f.on = Date.now(); // upper bound: from before the command that applies it to after the one that undoes it
      await lab.link('alpha-bravo', 'set', { latencyMs: p.latency });
      await sleep(p.ms);
      await lab.link('alpha-bravo', 'set', { latencyMs: 1 });
      f.off = Date.now();
      break;
    case 'net-loss':
      f.on = Date.now(); // upper bound: from before the command that applies it to after the one that undoes it
      await lab.link('hb-net', 'set', { lossPercent: p.loss, rtoMs: p.rto });
      await sleep(p.ms);
      await lab.link('hb-net', 'set', { lossPercent: 0 });
      f.off = Date.now();
      break;
    case 'mirror-fail':
      f.on = Date.now(); // upper bound: from before the command that applies it to after the one that undoes it
      await lab.must(['fault', 'disk', 'bravo', p.mirror, '--errors', 'read']);
      await sleep(p.ms);
      await lab.must(['fault', 'disk', 'bravo', p.mirror, '--clear']);
      f.off = Date.now();
      break;
    case 'standby-restart': {
      const pre = await lab.events('bravo-1', p.t0); // what it said before it died
      f.preEvents = pre;
      f.on = Date.now();
      await lab.killHost('bravo-1');
      await sleep(p.ms);
      await lab.startHost('bravo-1');
      f.off = Date.now(); // answering again
      break;
    }
    case 'master-kill': {
      const victim = alive.master;
      const survivor = Object.keys(lab.hosts).find((h) => h !== victim && lab.hosts[h].site === PROD);
      f.victim = victim;
      f.survivor = survivor;
      f.preEvents = await lab.events(victim, p.t0);
      const t = Date.now();
      f.on = t;
      await lab.killHost(victim);
      const took = await lab.until(`${survivor} takes over`, async () => (await lab.status(survivor))?.isMaster, 3 * T + 5_000).then(
        () => Date.now() - t,
        () => null,
      );
      f.takeoverMs = took;
      await sleep(p.ms);
      await lab.startHost(victim);
      f.off = Date.now();
      break;
    }
  }
  await sleep(MOMENT()); // a moment past the fault before checking the recovery
  return f;
}

/** A path failing: a table change to FAILED of the network or a device (not the derived fields). */
function failedPaths(events, host, slotNames) {
  return events
    .filter((e) => e.type === 'hb.table' && e.to === 'FAILED' && (e.field === 'networkEnable' || e.field === 'device'))
    .map((e) => `${host}:${e.field === 'device' ? e.mirror ?? slotNames[e.slot] ?? `slot${e.slot}` : 'network'}`);
// a path by its receiving site: `bravo:hb0` (alpha -> bravo), `alpha:network` (bravo -> alpha), ...
// (the production hosts keep a table each: a path they all saw fail counts once)
}

async function soak() {
  const runs = plan(opts.seed, opts.soak);
  const est = runs.reduce((s, p) => s + p.ms / 1000 + MOMENT() / 1000 + OVERHEAD_S[p.kind], 0);
  log(`soak: ${runs.length} runs, seed ${opts.seed}, interval ${I} ms, timeout ${opts.timeout} (${T} ms), recoverAfter ${opts.recover}; estimate ${(est / 60).toFixed(1)} min plus the lab's start`);
  const lab = new Lab('hbsoak');
  const t0 = Date.now();
  log(`soak: lab up in ${await lab.up()} ms (${lab.dir})`);
  const per = Object.fromEntries(KINDS.map((k) => [k, { runs: 0, pathsFailed: 0, runsWithFailedPath: 0, falseFailovers: 0, falseFences: 0, unrecovered: 0, masterChanges: 0, takeoverMs: [], applied: [], ms: 0 }]));
  const incidents = [];
  let relabs = 0;
  try {
    for (const p of runs) {
      const k = per[p.kind];
      const alive = await lab.allAlive().then((a) => a ?? lab.until('every path ALIVE', () => lab.allAlive(), RECOVER_MS));
      const slotNames = Object.fromEntries(alive.by['bravo-1'].table.devices.map((d, i) => [d.slot ?? i, d.mirror]));
      const prodSlots = Object.fromEntries(alive.by[alive.master].table.devices.map((d, i) => [d.slot ?? i, d.mirror]));
      p.t0 = Date.now();
      let f = {};
      let err = null;
      try {
        f = await applyFault(lab, p, alive);
      } catch (e) {
        err = e.message;
      }
      let recovered = await lab.until('every path ALIVE again', () => lab.allAlive(), RECOVER_MS).then(
        () => true,
        () => false,
      );
      const runMs = Date.now() - p.t0;
      // the events of the run: bravo-1's and the production hosts' (a killed agent's from before it died)
      const ev = {};
      for (const h of Object.keys(lab.hosts)) ev[h] = await lab.events(h, p.t0);
      if (p.kind === 'standby-restart') ev['bravo-1'] = [...(f.preEvents ?? []), ...ev['bravo-1']];
      if (p.kind === 'master-kill') ev[f.victim] = [...(f.preEvents ?? []), ...ev[f.victim]];
      const failovers = ev['bravo-1'].filter((e) => e.type === 'hb.failover' || e.type === 'hb.failover-started');
      const fences = Object.keys(lab.hosts)
        .filter((h) => lab.hosts[h].site === PROD)
        .flatMap((h) => ev[h].filter((e) => e.type === 'hb.fenced'));
      const paths = new Set([...failedPaths(ev['bravo-1'], 'bravo', slotNames), ...Object.keys(lab.hosts).filter((h) => h !== 'bravo-1').flatMap((h) => failedPaths(ev[h], PROD, prodSlots))]);
      k.runs++;
      k.ms += runMs;
      k.pathsFailed += paths.size;
      if (paths.size) k.runsWithFailedPath++;
      if (failovers.length) k.falseFailovers++;
      if (fences.length) k.falseFences++;
      if (!recovered || err) k.unrecovered++;
      if (p.kind === 'master-kill') {
        k.masterChanges += ev[f.survivor].filter((e) => e.type === 'hb.master' && e.master === f.survivor).length;
        if (f.takeoverMs != null) k.takeoverMs.push(f.takeoverMs);
      }
      const params = Object.entries(p)
        .filter(([x]) => !['run', 'seed', 'kind', 't0'].includes(x))
        .map(([x, v]) => `${x}=${v}`)
        .join(' ');
      const applied = f.on && f.off ? f.off - f.on : null;
      if (applied != null) k.applied.push(applied);
      log(
        `soak ${p.run}/${runs.length} ${p.kind} ${params} (applied ${applied ?? '?'} ms): ${(runMs / 1000).toFixed(1)} s, paths failed ${paths.size ? [...paths].join(',') : '-'}` +
          `${p.kind === 'master-kill' ? `, ${f.survivor} took over in ${f.takeoverMs ?? 'NEVER'} ms` : ''}${failovers.length ? ' FALSE FAILOVER' : ''}${fences.length ? ' FALSE FENCE' : ''}${recovered ? '' : ' NOT RECOVERED'}${err ? ` ERROR ${err}` : ''}`,
      );
      if (failovers.length || fences.length || !recovered || err) {
        const around = Object.fromEntries(Object.entries(ev).map(([h, es]) => [h, es.filter((e) => e.type !== 'hb.notice' && e.type !== 'hb.action').map(({ seq, ...e }) => e)]));
        incidents.push({ run: p.run, seed: p.seed, kind: p.kind, params, falseFailover: failovers.length > 0, falseFence: fences.length > 0, recovered, error: err, events: around });
      }
      if (failovers.length || !recovered) {
        // the lab is spoiled (promoted, or stuck): a fresh one for the rest
        relabs++;
        log(`soak: a fresh lab after run ${p.run}`);
        await lab.down();
        log(`soak: lab up in ${await lab.up()} ms`);
      }
    }
  } finally {
    await lab.down();
  }
  return { runs: runs.length, seconds: Math.round((Date.now() - t0) / 1000), estimateSeconds: Math.round(est), relabs, per, incidents };
}

// ---- 2. site losses ------------------------------------------------------------------------------
async function losses() {
  const out = [];
  for (let i = 1; i <= opts.losses; i++) {
    const lab = new Lab(`hbloss${i}`);
    const row = { run: i };
    try {
      const upMs = await lab.up();
      const r = await lab.must(['fault', 'site-fail', 'alpha', '--json']);
      row.hostsKilled = r.json?.hostsKilled;
      const sup = (await readFile(join(lab.dir, '.labs', `${lab.name}.events.jsonl`), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const failedAt = Date.parse(sup.find((e) => e.type === 'site.failed').time);
      const fo = await lab
        .until('bravo-1 failed over', async () => (await lab.events('bravo-1', failedAt - 1000)).find((e) => e.type === 'hb.failover'), 10 * T + 10_000)
        .catch(() => null);
      if (fo) {
        row.lossToFailoverMs = Date.parse(fo.time) - failedAt;
        row.detectionMs = fo.detectionMs;
        row.promoteMs = fo.promoteMs;
        row.promoted = fo.promoted;
        row.boundMs = T + I + fo.promoteMs;
        row.met = row.lossToFailoverMs <= row.boundMs;
      } else row.detected = false;
      log(`loss ${i}/${opts.losses}: up ${upMs} ms; ${fo ? `loss -> failover ${row.lossToFailoverMs} ms (detection ${row.detectionMs}, promote ${row.promoteMs}, bound ${row.boundMs}) ${row.met ? 'met' : 'MISSED'}` : 'NO FAILOVER'}`);
    } catch (e) {
      row.error = e.message;
      row.detected = false;
      log(`loss ${i}: ERROR ${e.message}`);
    } finally {
      await lab.down();
    }
    out.push(row);
  }
  return out;
}

// ---- report --------------------------------------------------------------------------------------
function table(rows) {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows.map((r) => r.map((v, c) => (c === 0 ? String(v).padEnd(w[c]) : String(v).padStart(w[c]))).join('  ')).join('\n');
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : Math.round((s[s.length / 2 - 1] + s[s.length / 2]) / 2)) : null;
};

let active = null;
process.on('SIGINT', async () => {
  log('interrupted: taking the lab down');
  await active?.down?.();
  process.exit(130);
});

const result = { settings: { seed: opts.seed, soak: opts.soak, losses: opts.losses, intervalMs: I, timeoutIntervals: opts.timeout, timeoutMs: T, recoverAfter: opts.recover }, soak: null, losses: null };
log(`settings: seed ${opts.seed}, soak ${opts.soak}, losses ${opts.losses}, interval ${I} ms, timeout ${opts.timeout} intervals = ${T} ms, recoverAfter ${opts.recover}`);
try {
  if (opts.soak) result.soak = await soak();
  if (opts.losses) result.losses = await losses();
} catch (e) {
  log(`aborted: ${e.stack ?? e}`);
  await active?.down?.();
  process.exit(1);
}

const soakBad = result.soak ? Object.values(result.soak.per).reduce((s, k) => s + k.falseFailovers + k.falseFences, 0) : 0;
const lossBad = result.losses ? result.losses.filter((r) => r.detected === false).length : 0;
result.ok = soakBad === 0 && lossBad === 0;

if (opts.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
else {
  const o = [];
  o.push(`heartbeat bench: seed ${opts.seed}, interval ${I} ms, timeout ${opts.timeout} intervals (${T} ms), recoverAfter ${opts.recover}`);
  if (result.soak) {
    const s = result.soak;
    o.push('', `soak: ${s.runs} single-path faults on one lab in ${s.seconds} s (estimate ${s.estimateSeconds} s + start)${s.relabs ? `, ${s.relabs} fresh lab(s)` : ''}`);
    const rows = [['kind', 'runs', 'runs w/ failed path', 'paths failed', 'false failovers', 'false fences', 'not recovered', 'applied ms (min-max)', 'mean run s']];
    const tot = { runs: 0, runsWithFailedPath: 0, pathsFailed: 0, falseFailovers: 0, falseFences: 0, unrecovered: 0, ms: 0 };
    for (const [kind, k] of Object.entries(s.per)) {
      rows.push([kind, k.runs, k.runsWithFailedPath, k.pathsFailed, k.falseFailovers, k.falseFences, k.unrecovered, k.applied.length ? `${Math.min(...k.applied)}-${Math.max(...k.applied)}` : '-', k.runs ? (k.ms / k.runs / 1000).toFixed(1) : '-']);
      for (const f of Object.keys(tot)) tot[f] += k[f];
    }
    rows.push(['total', tot.runs, tot.runsWithFailedPath, tot.pathsFailed, tot.falseFailovers, tot.falseFences, tot.unrecovered, '', tot.runs ? (tot.ms / tot.runs / 1000).toFixed(1) : '-']);
    o.push(table(rows));
    const mk = s.per['master-kill'];
    o.push(`master kills: ${mk.runs}, master changes seen at the surviving host: ${mk.masterChanges}, takeovers ${mk.takeoverMs.length}/${mk.runs} (median ${median(mk.takeoverMs) ?? '-'} ms, max ${mk.takeoverMs.length ? Math.max(...mk.takeoverMs) : '-'} ms)`);
    for (const x of s.incidents) o.push(`incident: run ${x.run} seed ${x.seed} ${x.kind} ${x.params}:${x.falseFailover ? ' false failover' : ''}${x.falseFence ? ' false fence' : ''}${x.recovered ? '' : ' not recovered'}${x.error ? ` error: ${x.error}` : ''}`);
  }
  if (result.losses) {
    const L = result.losses;
    o.push('', `site losses: ${L.length} (a fresh lab each; bound = timeout ${T} + interval ${I} + promoteMs)`);
    const rows = [['run', 'loss->failover ms', 'detectionMs', 'promoteMs', 'bound ms', 'over bound ms', 'met']];
    for (const r of L) rows.push([r.run, r.lossToFailoverMs ?? 'none', r.detectionMs ?? '-', r.promoteMs ?? '-', r.boundMs ?? '-', r.boundMs ? r.lossToFailoverMs - r.boundMs : '-', r.error ? 'ERROR' : r.detected === false ? 'NOT DETECTED' : r.met ? 'yes' : 'no']);
    const ok = L.filter((r) => r.lossToFailoverMs != null);
    const col = (f) => ok.map((r) => r[f]);
    if (ok.length) {
      rows.push(['median', median(col('lossToFailoverMs')), median(col('detectionMs')), median(col('promoteMs')), median(col('boundMs')), median(ok.map((r) => r.lossToFailoverMs - r.boundMs)), `${ok.filter((r) => r.met).length}/${L.length} met`]);
      rows.push(['max', Math.max(...col('lossToFailoverMs')), Math.max(...col('detectionMs')), Math.max(...col('promoteMs')), Math.max(...col('boundMs')), Math.max(...ok.map((r) => r.lossToFailoverMs - r.boundMs)), '']);
    }
    o.push(table(rows));
  }
  o.push('', result.ok ? 'ok: no false failover or fence, every site loss failed over' : `FAILED: ${soakBad} false failover/fence run(s), ${lossBad} site loss(es) not failed over`);
  process.stdout.write(o.join('\n') + '\n');
}
if (result.soak?.incidents?.length) log(`incidents (events around them): ${JSON.stringify(result.soak.incidents).slice(0, 20000)}`);
process.exit(result.ok ? 0 : 1);
