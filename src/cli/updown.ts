/**
 * `sanbox up LAB.yaml` / `sanbox down [LAB]`: the lab supervisor.
 *
 * `up` validates the lab file, starts one child process per array (`sanbox array serve --config`;
 * a two-SP array's chassis starts its SPs), waits until each reports ready over IPC, writes the
 * lab state file, prints the endpoints and a client command, and runs in the foreground until
 * SIGINT/SIGTERM/SIGHUP; then it stops every array gracefully and removes the state file. An
 * array dying meanwhile is an event (`array.crashed`), never the end of the lab: it waits for
 * the operator (`sanbox fault array-restart`) or the lab's restart policy (src/cli/supervisor).
 * `--detach` runs the same supervisor in the background (logging to `<images>/.labs/<lab>.log`)
 * and returns once the lab is up.
 */
import { spawn } from 'node:child_process';
import { openSync, readFileSync, closeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ignoreOnClose } from '../errors/index.js';
import { hostPort, nbdUri } from '../control/index.js';
import { BIN, CliError, EXIT, labsDir, pidAlive, printJson, sleep, usage } from './common.js';
import {
  eventsPath,
  labAlive,
  labNameOf,
  loadLab,
  readState,
  removeState,
  runningLabs,
  writeState,
  type Lab,
  type LabState,
  type LinkListeners,
} from './lab.js';
import { ControlServer, LabSupervisor, SupervisorEvents, chainSiteHooks } from './supervisor/index.js';
import { startLabLinks, stopLabLinks, type RunningLink } from './link-verbs.js';
import { setupLabMirrors } from './lab-mirrors.js';
import { setupLabGroups } from './lab-groups.js';
import { startLabMonitor, stopLabMonitor } from './lab-monitor.js';
import { LabHeartbeatRunner } from './heartbeat/lab.js';
import { LabAutomationRunner } from './automation/lab.js';
import { DashboardServer } from '../dashboard/index.js';

export interface UpFlags {
  detach?: boolean;
  json?: boolean;
  timeout?: string;
}

/** `up`: how long the arrays get to be ready (--timeout). */
const UP_TIMEOUT_MS = 60_000;
/** `up --detach`: what the waiting parent allows beyond the supervisor's own start-up timeout. */
const DETACHED_START_MARGIN_MS = 5000;
/** `up --detach`: how often the parent reads the state file while the supervisor starts. */
const STATE_POLL_MS = 100;
/** How often the supervisor checks its starting arrays (and `down` the stopping processes). */
const PROCESS_POLL_MS = 50;
/** `down`: how long the lab's processes get to stop (--timeout) before SIGKILL. */
const DOWN_TIMEOUT_MS = 30_000;

function timeoutMs(t: string | undefined, def: number): number {
  if (t === undefined) return def;
  if (!/^\d+(\.\d+)?$/.test(t) || Number(t) <= 0) throw usage(`--timeout must be a number of seconds, not ${JSON.stringify(t)}`);
  return Number(t) * 1000;
}

/** The summary printed once a lab is up: endpoints and ready-to-paste client commands. */
export function labSummary(state: LabState, lab: Lab): string {
  const lines = [`lab ${state.lab} is up (supervisor pid ${state.supervisorPid})`];
  for (const a of state.arrays) {
    lines.push(`  array ${a.name}  pid ${a.pid}  dir ${a.dir}`);
    const exportsText = lab.arrays.find((x) => x.name === a.name)?.luns.map((l) => l.name).join(', ') || '-';
    const scheme = a.nbd.tls ? 'nbds' : 'nbd';
    const tlsNote = a.nbd.tls ? ` (TLS ${a.nbd.tls === 'require' ? 'required' : 'optional'})` : '';
    if (a.sps) for (const sp of a.sps) lines.push(`    SP ${sp.name} NBD  ${scheme}://${hostPort(sp.host, sp.port)}${tlsNote}  exports: ${exportsText}`);
    else lines.push(`    NBD  ${scheme}://${hostPort(a.nbd.host, a.nbd.port)}${tlsNote}  exports: ${exportsText}`);
    lines.push(`    API  ${a.api.url}`);
  }
  for (const l of state.links ?? []) {
    lines.push(`  link ${l.name}  ${l.a} <-> ${l.b}  API ${l.api.url}`);
    for (const r of l.routes) lines.push(`    ${r.name}: ${r.listen.host}:${r.listen.port} -> ${r.target.host}:${r.target.port} (${r.forward})`);
  }
  for (const a of lab.arrays) if (a.host) lines.push(`  array ${a.name} runs on ${a.host} (not started here)`);
  for (const s of lab.sites) if (s.declared) lines.push(`  site ${s.name}: ${s.arrays.join(', ')}`);
  if (lab.restart.mode === 'on-failure') lines.push(`  restart: on-failure (after ${lab.restart.backoffMs} ms, at most ${lab.restart.limit} times per array)`);
  if (state.heartbeat) lines.push(`  heartbeat hosts ${state.heartbeat.hosts.map((h) => `${h.name}@${h.site} pid ${h.pid}`).join(', ')}${state.heartbeat.witness ? `  witness ${state.heartbeat.witness.url}` : ''}  (sanbox hb status)`);
  if (state.automation) lines.push(`  automation controllers ${state.automation.controllers.map((c) => `${c.site} ${c.url} pid ${c.pid}`).join(', ')}  (sanbox rg status)`);
  if (state.monitor) lines.push(`  monitor pid ${state.monitor.pid}  ${state.monitor.resources} resources  socket ${state.monitor.socket}${state.monitor.http ? `  events ${state.monitor.http}/v1/events` : ''}  (chkmon -show)`);
  for (const m of state.mirrors ?? []) {
    const what = { created: 'created', exists: 'exists', skipped: 'not created here', failed: 'NOT CREATED' }[m.status];
    lines.push(`  mirror ${m.name}  ${m.primary} -> ${m.secondaries.join(', ')}  ${what}${m.detail ? `: ${m.detail}` : ''}`);
    for (const p of m.progress ?? []) lines.push(`    ${p}`);
    for (const w of m.warnings) lines.push(`    warning: ${w}`);
  }
  for (const g of state.groups ?? []) {
    const what = { created: 'created', exists: 'exists', skipped: 'not created here', failed: 'NOT CREATED' }[g.status];
    lines.push(`  group ${g.name}  ${g.primary}: ${g.members.join(', ')} -> ${g.secondaries.join(', ')}  ${g.mode}  ${what}${g.detail ? `: ${g.detail}` : ''}`);
    for (const w of g.warnings) lines.push(`    warning: ${w}`);
  }
  if (state.dashboard) lines.push(`  dashboard  ${state.dashboard.url}${state.dashboard.token ? '  (open it with ?token=TOKEN, the lab file\'s dashboard.token)' : ''}`);
  const a0 = state.arrays[0];
  if (a0) {
    const lun = lab.arrays.find((x) => x.name === a0.name)?.luns[0]?.name;
    lines.push('', 'connect a client, e.g.:');
    lines.push(`  nbdinfo --list ${a0.nbd.tls ? 'nbds' : 'nbd'}://${hostPort(a0.nbd.host, a0.nbd.port)}${a0.nbd.tls ? '    # add the TLS credentials: docs/nbd.md, TLS' : ''}`);
    if (lun && !a0.nbd.tls) {
      const uri = nbdUri(a0.nbd.host, a0.nbd.port, lun);
      lines.push(`  qemu-io -f raw -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M' ${uri}`);
      lines.push(`  nbd-client ${a0.nbd.host} ${a0.nbd.port} /dev/nbd0 -N ${lun}    # where the kernel has nbd (see README otherwise)`);
    }
    lines.push(`  sanbox status${state.lab !== 'default' ? ` --lab ${state.lab}` : ''}`);
    lines.push(`  sanbox fault array-crash ${a0.name}${state.lab !== 'default' ? ` --lab ${state.lab}` : ''}    # the lab keeps running; then: sanbox fault array-restart ${a0.name}`);
    if (state.mirrors?.length) lines.push(`  sanbox mirror status --watch${state.lab !== 'default' ? ` --lab ${state.lab}` : ''}`);
    if (state.groups?.length) lines.push(`  sanbox group info ${state.groups[0]!.name}${state.lab !== 'default' ? ` --lab ${state.lab}` : ''}`);
  }
  if (state.log) lines.push(`log: ${state.log}`, `stop: sanbox down ${state.lab}`);
  else lines.push('Ctrl-C stops the lab.');
  return lines.join('\n');
}

export async function upCommand(file: string, f: UpFlags): Promise<number> {
  const lab = loadLab(file); // validation errors exit 2
  const existing = await readState(lab.name);
  if (existing && labAlive(existing)) {
    throw new CliError(EXIT.ERROR, 'already-running', `lab ${lab.name} is already running (supervisor pid ${existing.supervisorPid}); stop it with "sanbox down ${lab.name}"`);
  }
  if (f.detach) return upDetached(lab, f);
  return upForeground(lab, f);
}

async function upDetached(lab: Lab, f: UpFlags): Promise<number> {
  await mkdir(labsDir(), { recursive: true });
  const log = join(labsDir(), `${lab.name}.log`);
  const fd = openSync(log, 'a');
  const args = [BIN, 'up', lab.file, ...(f.timeout ? ['--timeout', f.timeout] : [])];
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, SANBOX_LAB_LOG: log },
  });
  closeSync(fd);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  child.unref();
  const deadline = Date.now() + timeoutMs(f.timeout, UP_TIMEOUT_MS) + DETACHED_START_MARGIN_MS;
  while (Date.now() < deadline) {
    const s = await readState(lab.name);
    if (s && s.supervisorPid === child.pid && s.state === 'running') {
      if (f.json) printJson(s);
      else process.stdout.write(labSummary(s, lab) + '\n');
      return EXIT.OK;
    }
    if (exited !== undefined) break;
    await sleep(STATE_POLL_MS);
  }
  if (exited === undefined && child.pid) process.kill(child.pid, 'SIGTERM');
  const tail = readFileSync(log, 'utf8').split('\n').slice(-20).join('\n');
  throw new CliError(exited === EXIT.USAGE ? EXIT.USAGE : EXIT.ERROR, 'start-failed', `lab ${lab.name} did not come up (see ${log}):\n${tail}`);
}

async function upForeground(lab: Lab, f: UpFlags): Promise<number> {
  const log = (t: string) => process.stderr.write(`sanbox up: ${t}\n`);
  const cfgDir = join(labsDir(), lab.name);
  await mkdir(cfgDir, { recursive: true });
  const state: LabState = {
    lab: lab.name,
    file: lab.file,
    supervisorPid: process.pid,
    startedAt: new Date().toISOString(),
    state: 'starting',
    ...(process.env.SANBOX_LAB_LOG ? { log: process.env.SANBOX_LAB_LOG } : {}),
    events: eventsPath(lab.name),
    arrays: [],
  };
  await writeState(state);
  const events = new SupervisorEvents(lab.name, eventsPath(lab.name), log);
  const readyTimeoutMs = timeoutMs(f.timeout, UP_TIMEOUT_MS);

  let sup: LabSupervisor | undefined;
  let control: ControlServer | undefined;
  let dashboard: DashboardServer | undefined;
  let links: RunningLink[] = [];
  let heartbeat: LabHeartbeatRunner | undefined;
  let automation: LabAutomationRunner | undefined;
  let stopping = false;
  let resolveStop: (why: string) => void = () => undefined;
  const stopRequested = new Promise<string>((r) => (resolveStop = r));
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      log(`${sig} again: killing the arrays`);
      sup?.killAll();
      return;
    }
    sup?.beginStop();
    resolveStop(sig);
  };
  const sigs = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of sigs) process.on(s, onSignal);

  const stopAll = async (why: string): Promise<void> => {
    stopping = true;
    state.state = 'stopping';
    events.publish('lab.stopping', { reason: why });
    // Only informative (status shows "stopping"): the stop goes on, the log says why it is not shown.
    await (sup ? sup.flush() : writeState(state)).catch((e: unknown) => log(`cannot record the stopping state: ${(e as Error).message}`));
    // No more fault requests once stopping; then every array, crashed or not, then the links.
    await ignoreOnClose(control?.close() ?? Promise.resolve(), 'closing the control API');
    await ignoreOnClose(dashboard?.close() ?? Promise.resolve(), 'closing the dashboard');
    if (state.monitor) await stopLabMonitor(state.monitor).catch((e: unknown) => log(`stopping the monitor: ${(e as Error).message}`));
    // the agents before the arrays: a host losing its arrays at shutdown is no site failure
    await ignoreOnClose(automation?.stop() ?? Promise.resolve(), 'stopping the automation controllers');
    await ignoreOnClose(heartbeat?.stop() ?? Promise.resolve(), 'stopping the heartbeat agents');
    await sup?.stopAll();
    await stopLabLinks(links);
    links = [];
    events.publish('lab.stopped', { reason: why });
  };

  const finish = async (code: number, why: string): Promise<number> => {
    await stopAll(why);
    await removeState(lab.name, process.pid);
    for (const s of sigs) process.off(s, onSignal);
    return code;
  };

  try {
    // Link emulators run in this process; a port in use fails the start before any array.
    links = await startLabLinks(lab, log);
    state.links = links.map((l) => l.state);
    // The dashboard reads the live state at each request, so it may start before the arrays (a
    // port in use fails the start before any array, as the links' ports do).
    if (lab.dashboard !== false) {
      const d = lab.dashboard ?? { bind: '127.0.0.1', port: 0 };
      dashboard = new DashboardServer({ lab: () => state, host: d.bind, port: d.port, ...(d.token ? { token: d.token } : {}) });
      const listening = await dashboard.listen().catch((e: unknown) => {
        throw new CliError(EXIT.ERROR, 'start-failed', `the dashboard cannot listen on ${d.bind}:${d.port}: ${(e as Error).message} (lab file: dashboard: { port: N }, or dashboard: off)`);
      });
      state.dashboard = { ...listening, ...(d.token ? { token: d.token } : {}) };
    }
    // The arrays dial their peers through the emulators' listeners (actual ports: the lab's may be 0).
    const listeners: LinkListeners = new Map();
    for (const l of links) {
      const route = (forward: string) => l.state.routes.find((r) => r.forward === forward)?.listen ?? { host: '127.0.0.1', port: 0 };
      listeners.set(l.state.name, { toB: route('a-to-b'), toA: route('b-to-a') });
    }
    sup = new LabSupervisor(lab, state, events, links, log, readyTimeoutMs);
    await sup.spawnAll(cfgDir, listeners);

    // Wait for every array to be ready (or one to fail, or a signal): a failed start-up fails `up`.
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      const failed = sup.startFailure();
      if (failed) {
        const { code } = await failed.exit;
        log(`array ${failed.name} failed to start (exit ${code})`);
        await finish(EXIT.ERROR, 'start-failed');
        throw new CliError(code === EXIT.USAGE ? EXIT.USAGE : EXIT.ERROR, 'start-failed', `array ${failed.name} failed to start:\n${failed.stderrTail.slice(-10).join('\n')}`);
      }
      if (sup.allReady()) break;
      if (Date.now() > deadline) {
        await finish(EXIT.ERROR, 'start-timeout');
        throw new CliError(EXIT.ERROR, 'start-timeout', `lab ${lab.name}: arrays not ready after ${Math.round(readyTimeoutMs / 1000)} s`);
      }
      const sig = await Promise.race([stopRequested, sleep(PROCESS_POLL_MS).then(() => undefined)]);
      if (sig) {
        log(`${sig} during start-up: stopping`);
        return finish(EXIT.OK, sig);
      }
    }
    sup.recordStarted();
    // The lab file's mirrors: created on their primary arrays when absent, else compared.
    if (lab.mirrors.length) state.mirrors = await setupLabMirrors(lab, state, { log });
    // Then the consistency groups of those mirrors (created at once: they start in bypass until
    // the initial copies are done).
    if (lab.groups.length) state.groups = await setupLabGroups(lab, state, { log });
    // The monitor last: its first polls find the mirrors and groups in place.
    if (lab.monitor) {
      await sup.flush(); // the monitor resolves LAB:ARRAY from the state file
      state.monitor = await startLabMonitor(lab, log);
    }
    // The heartbeat agents after the mirrors they write to (docs/heartbeat.md).
    if (lab.heartbeat) {
      await sup.flush();
      heartbeat = new LabHeartbeatRunner(lab, lab.heartbeat, log);
      sup.siteHooks = { fail: (site) => heartbeat!.siteFail(site), restore: (site) => heartbeat!.siteRestore(site) };
      state.heartbeat = await heartbeat.start(state);
      state.links = [...(state.links ?? []), ...heartbeat.links.map((l) => l.state)];
    }
    // The automation controllers last: they read the arrays, mirrors and groups from the state file.
    if (lab.automation) {
      await sup.flush();
      automation = new LabAutomationRunner(lab, lab.automation, log);
      sup.siteHooks = chainSiteHooks(sup.siteHooks, { fail: (site) => automation!.siteFail(site), restore: (site) => automation!.siteRestore(site) });
      state.automation = await automation.start();
    }
    control = new ControlServer(sup, events);
    state.control = await control.listen();
    state.state = 'running';
    await sup.flush();
    events.publish('lab.started', { arrays: sup.names(), sites: state.sites, restart: state.restart, control: state.control.url });
    if (f.json) printJson(state);
    else process.stdout.write(labSummary(state, lab) + '\n');

    // Run until a signal: an array dying is an event (array.crashed), not the end of the lab.
    const sig = await stopRequested;
    log(`${sig}: stopping lab ${lab.name}`);
    return finish(EXIT.OK, sig);
  } catch (e) {
    if (!stopping) await finish(EXIT.ERROR, 'error');
    throw e;
  }
}

export interface DownFlags {
  json?: boolean;
  timeout?: string;
}

/** On Linux, checks that a pid still runs sanbox (not a recycled pid). */
function isSanbox(pid: number): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('sanbox');
  } catch {
    return pidAlive(pid); // no /proc (not Linux) or the pid is gone: kill(0) decides
  }
}

export async function downCommand(ref: string | undefined, f: DownFlags): Promise<number> {
  let name: string;
  if (ref) name = labNameOf(ref);
  else {
    const labs = await runningLabs();
    if (labs.length === 0) {
      if (f.json) printJson({ lab: null, wasRunning: false, stopped: false });
      else process.stdout.write('no lab is running\n');
      return EXIT.OK;
    }
    if (labs.length > 1) throw usage(`several labs are running (${labs.map((l) => l.lab).join(', ')}): say which one, e.g. sanbox down ${labs[0]!.lab}`);
    name = labs[0]!.lab;
  }
  const state = await readState(name);
  if (!state || !labAlive(state)) {
    if (state) await removeState(name);
    if (f.json) printJson({ lab: name, wasRunning: false, stopped: false });
    else process.stdout.write(`lab ${name} is not running\n`);
    return EXIT.OK;
  }
  const pids = [state.supervisorPid, ...state.arrays.map((a) => a.pid), ...(state.monitor ? [state.monitor.pid] : [])].filter((p) => pidAlive(p) && isSanbox(p));
  // The supervisor stops its arrays; signal the arrays directly only when it is gone.
  if (pidAlive(state.supervisorPid) && isSanbox(state.supervisorPid)) process.kill(state.supervisorPid, 'SIGTERM');
  else for (const p of pids) process.kill(p, 'SIGTERM');
  const deadline = Date.now() + timeoutMs(f.timeout, DOWN_TIMEOUT_MS);
  while (Date.now() < deadline && pids.some(pidAlive)) await sleep(PROCESS_POLL_MS);
  const killed: number[] = [];
  for (const p of pids) {
    if (pidAlive(p)) {
      process.kill(p, 'SIGKILL');
      killed.push(p);
    }
  }
  await removeState(name);
  if (f.json) printJson({ lab: name, wasRunning: true, stopped: true, killed });
  else process.stdout.write(`lab ${name} stopped${killed.length ? ` (had to SIGKILL ${killed.join(', ')})` : ''}\n`);
  return EXIT.OK;
}
