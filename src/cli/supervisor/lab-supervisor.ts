/**
 * The running lab: its arrays' processes under supervision (supervision.ts), its link emulators,
 * its sites, its state file and its event stream. An array dying is an event (`array.crashed`),
 * never the end of the lab; the operator (control API: `sanbox fault array-crash|array-restart|
 * site-fail|site-restore`) or the lab's restart policy brings it back.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CliError, EXIT } from '../common.js';
import { arrayConfig, writeState, type Lab, type LabState, type LabStateArray, type LinkListeners } from '../lab.js';
import type { RunningLink } from '../link-verbs.js';
import { killArray, reapOrphanSps, spawnArray, type ArrayRun, type ExitStatus } from './array-process.js';
import type { SupervisorEvents } from './events.js';
import { initialSupervision, supervise, type Supervision, type SupervisionAction, type SupervisionInput } from './supervision.js';

/** An array gets this long to stop after SIGTERM before it is killed. */
const ARRAY_STOP_GRACE_MS = 15_000;

interface Supervised {
  name: string;
  site: string;
  cfgPath: string;
  sup: Supervision;
  run?: ArrayRun;
  /** When the current (re)start began. */
  startedAt: number;
  restartTimer?: NodeJS.Timeout;
  entry: LabStateArray;
}

export interface CrashResult {
  array: string;
  killed: number[];
  exit: ExitStatus;
}
export interface RestartResult {
  array: string;
  pid: number;
  ms: number;
}

/** What fails and returns with a site besides its arrays and links (the heartbeat's hosts). */
export interface SiteHooks {
  fail(site: string): Promise<Record<string, unknown>>;
  restore(site: string): Promise<Record<string, unknown>>;
}

/** Two sets of hooks as one: both fail and restore together, their details merged. */
export function chainSiteHooks(a: SiteHooks | undefined, b: SiteHooks): SiteHooks {
  if (!a) return b;
  return {
    fail: async (site) => ({ ...(await a.fail(site)), ...(await b.fail(site)) }),
    restore: async (site) => ({ ...(await a.restore(site)), ...(await b.restore(site)) }),
  };
}

export class LabSupervisor {
  /** Set by `up` when the lab has more than arrays at its sites. */
  siteHooks: SiteHooks | undefined;
  private readonly arrays = new Map<string, Supervised>();
  private readonly failedSites = new Set<string>();
  private stopping = false;

  constructor(
    readonly lab: Lab,
    readonly state: LabState,
    readonly events: SupervisorEvents,
    readonly links: RunningLink[],
    private readonly log: (t: string) => void,
    /** How long a (re)started array may take to be ready. */
    readonly readyTimeoutMs: number,
  ) {
    state.sites = lab.sites.map((s) => ({ name: s.name, arrays: s.arrays.filter((a) => !this.remote(a)) }));
    state.restart = { ...lab.restart };
  }

  private remote(name: string): boolean {
    return this.lab.arrays.find((a) => a.name === name)?.host !== undefined;
  }

  /** Writes every array's config and spawns it (the start of `up`). */
  async spawnAll(cfgDir: string, listeners: LinkListeners): Promise<void> {
    for (const a of this.lab.arrays) {
      if (a.host) continue; // on another host: started there
      const cfgPath = join(cfgDir, `${a.name}.config.json`);
      await writeFile(cfgPath, JSON.stringify(arrayConfig(a, this.lab, listeners), null, 2) + '\n', { mode: 0o600 });
      const site = this.lab.sites.find((s) => s.arrays.includes(a.name))?.name ?? a.name;
      const token = a.api.token;
      const entry: LabStateArray = { name: a.name, pid: 0, dir: a.dir, nbd: { host: a.nbd.bind, port: a.nbd.port }, api: { url: '', ...(token ? { token } : {}) }, state: 'starting', site };
      const s: Supervised = { name: a.name, site, cfgPath, sup: initialSupervision(), startedAt: Date.now(), entry };
      this.arrays.set(a.name, s);
      this.spawn(s);
    }
  }

  /** The first array that died while the lab was starting (`up` then fails). */
  startFailure(): ArrayRun | undefined {
    for (const s of this.arrays.values()) if (s.run?.exited) return s.run;
    return undefined;
  }

  allReady(): boolean {
    return [...this.arrays.values()].every((s) => s.run?.ready);
  }

  /** Start-up is over: the state file gets every array; from now on a death is an event. */
  recordStarted(): void {
    this.state.arrays = [...this.arrays.values()].map((s) => s.entry);
    for (const s of this.arrays.values()) this.onReady(s, false);
    this.recording = true;
  }

  names(): string[] {
    return [...this.arrays.keys()];
  }

  supervision(name: string): Supervision | undefined {
    return this.arrays.get(name)?.sup;
  }

  private spawn(s: Supervised): void {
    const run = spawnArray(s.name, s.cfgPath, this.lab.name, (line) => this.log(line));
    s.run = run;
    s.startedAt = Date.now();
    run.proc.on('message', (m: unknown) => {
      if ((m as { type?: string })?.type === 'ready' && s.run === run && this.recording) this.onReady(s, true);
    });
    void run.exit.then((st) => {
      if (s.run === run) this.onExit(s, run, st);
    });
  }

  /** False during start-up (up waits for every array itself, then calls recordStarted). */
  private recording = false;

  private onReady(s: Supervised, publish: boolean): void {
    const r = s.run!.ready!;
    const wasRestart = s.sup.state === 'restarting';
    this.apply(s, { type: 'ready' });
    Object.assign(s.entry, { pid: r.pid, dir: r.dir, nbd: r.nbd, api: { ...s.entry.api, url: r.api?.url ?? '' }, ...(r.sps ? { sps: r.sps } : {}) });
    if (publish && wasRestart) this.events.publish('array.restarted', { array: s.name, pid: r.pid, ms: Date.now() - s.startedAt, autoRestarts: s.sup.autoRestarts });
    if (publish) this.save();
  }

  private onExit(s: Supervised, run: ArrayRun, st: ExitStatus): void {
    const from = s.sup.state;
    const orphans = reapOrphanSps(run);
    let actions: SupervisionAction[];
    try {
      actions = this.apply(s, { type: 'exited' });
    } catch (e) {
      // not expected in this state (stopped already): nothing to do but say so
      this.log((e as Error).message);
      return;
    }
    if (s.sup.state === 'crashed' && this.stopping) {
      // Ctrl-C in a terminal reaches the arrays too: an exit once the lab stops is no crash.
      this.log(`array ${s.name} exited while the lab stops (code ${st.code}, signal ${st.signal})`);
      return;
    }
    if (s.sup.state === 'crashed') {
      s.entry.lastExit = { code: st.code, signal: st.signal, at: new Date().toISOString() };
      if (from === 'restarting' && !s.sup.held) this.events.publish('array.restart-failed', { array: s.name, code: st.code, signal: st.signal, output: run.stderrTail.slice(-5) });
      else this.events.publish('array.crashed', { array: s.name, pid: run.pid, code: st.code, signal: st.signal, injected: s.sup.held, site: s.site, ...(orphans.length ? { orphanSpsKilled: orphans } : {}) });
    }
    for (const a of actions) {
      if (a.do === 'schedule-restart') {
        this.events.publish('array.restart-scheduled', { array: s.name, inMs: a.delayMs, attempt: a.attempt });
        s.restartTimer = setTimeout(() => {
          s.restartTimer = undefined;
          this.restart(s.name, 'policy').catch((e: unknown) => this.log(`automatic restart of ${s.name}: ${(e as Error).message}`));
        }, a.delayMs);
      } else if (a.do === 'give-up') {
        this.events.publish('array.restart-limit', { array: s.name, limit: a.limit });
      }
    }
    this.save();
  }

  /** Runs the transition; returns its actions, or throws (exit 1) when it is refused. */
  private apply(s: Supervised, input: SupervisionInput): SupervisionAction[] {
    const t = supervise(s.sup, input, this.lab.restart);
    if (!t.ok) throw new CliError(EXIT.ERROR, 'conflict', `array ${s.name}: cannot ${input.type}: ${t.reason}`);
    s.sup = t.next;
    s.entry.state = t.next.state;
    s.entry.held = t.next.held;
    s.entry.autoRestarts = t.next.autoRestarts;
    return t.actions;
  }

  private saving: Promise<void> = Promise.resolve();

  /** Writes the state file after the writes already queued (one at a time: they share a temporary file). */
  flush(): Promise<void> {
    this.saving = this.saving.then(() => writeState(this.state)).catch((e: unknown) => this.log(`cannot write the lab state file: ${(e as Error).message}`));
    return this.saving;
  }

  private save(): void {
    if (!this.recording || this.stopping) return;
    void this.flush();
  }

  /** Before an operation answers: its changes are in the state file (not once stopping: down removes it). */
  private async settle(): Promise<void> {
    if (this.recording && !this.stopping) await this.flush();
  }

  private get(name: string): Supervised {
    const s = this.arrays.get(name);
    if (!s) {
      const remote = this.remote(name);
      throw new CliError(EXIT.ERROR, remote ? 'remote-array' : 'not-found', remote ? `array ${name} runs on another host: not supervised here` : `lab ${this.lab.name} has no array ${JSON.stringify(name)} (arrays: ${this.names().join(', ')})`);
    }
    return s;
  }

  private refuseWhileStopping(): void {
    if (this.stopping) throw new CliError(EXIT.ERROR, 'stopping', `lab ${this.lab.name} is stopping`);
  }

  /** `fault array-crash`: SIGKILL of every process of the array; it stays down until restarted. */
  async crash(name: string): Promise<CrashResult> {
    this.refuseWhileStopping();
    const s = this.get(name);
    if (s.restartTimer) clearTimeout(s.restartTimer);
    s.restartTimer = undefined;
    this.apply(s, { type: 'crash' });
    const run = s.run!;
    const killed = await killArray(run);
    const exit = await run.exit;
    await this.settle();
    return { array: name, killed, exit };
  }

  /** `fault array-restart` (or the policy): starts the array again from its directory; resolves once it is ready. */
  async restart(name: string, by: 'operator' | 'policy' = 'operator'): Promise<RestartResult> {
    this.refuseWhileStopping();
    const s = this.get(name);
    if (s.restartTimer && by === 'operator') clearTimeout(s.restartTimer);
    this.apply(s, { type: 'restart', by });
    this.events.publish('array.restarting', { array: name, by, ...(by === 'policy' ? { attempt: s.sup.autoRestarts } : {}) });
    this.spawn(s);
    this.save();
    const run = s.run!;
    let timer: NodeJS.Timeout | undefined;
    const ready = new Promise<'ready'>((r) => run.proc.on('message', (m: unknown) => (m as { type?: string })?.type === 'ready' && r('ready')));
    const outcome = await Promise.race([ready, run.exit.then(() => 'exit' as const), new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), this.readyTimeoutMs)))]);
    clearTimeout(timer);
    if (outcome === 'ready') {
      await this.settle();
      return { array: name, pid: run.pid, ms: Date.now() - s.startedAt };
    }
    if (outcome === 'timeout') {
      await killArray(run);
      throw new CliError(EXIT.ERROR, 'start-timeout', `array ${name} was not ready ${this.readyTimeoutMs / 1000} s after its restart (killed)`);
    }
    const st = await run.exit;
    throw new CliError(EXIT.ERROR, 'start-failed', `array ${name} did not start again (code ${st.code}, signal ${st.signal}):\n${run.stderrTail.slice(-10).join('\n')}`);
  }

  private site(name: string): { name: string; arrays: string[] } {
    const site = this.state.sites?.find((x) => x.name === name);
    if (!site) throw new CliError(EXIT.ERROR, 'not-found', `lab ${this.lab.name} has no site ${JSON.stringify(name)} (sites: ${(this.state.sites ?? []).map((x) => x.name).join(', ')})`);
    return site;
  }

  private linksOf(site: { arrays: string[] }): RunningLink[] {
    return this.links.filter((l) => site.arrays.includes(l.state.a) || site.arrays.includes(l.state.b));
  }

  private siteOfArray(a: string): string {
    return this.state.sites?.find((x) => x.arrays.includes(a))?.name ?? a;
  }

  /** `fault site-fail`: crash every array of the site (those down already stay down), cut every link touching it. */
  async siteFail(name: string): Promise<{ site: string; crashed: CrashResult[]; alreadyDown: string[]; linksCut: string[] }> {
    this.refuseWhileStopping();
    const site = this.site(name);
    if (this.failedSites.has(name)) throw new CliError(EXIT.ERROR, 'conflict', `site ${name} has failed already (sanbox fault site-restore ${name})`);
    const linksCut: string[] = [];
    // Links first: nothing crosses between the cut and the crash (the site loses everything at once).
    for (const l of this.linksOf(site)) {
      l.emulator.cutLink('both');
      linksCut.push(l.state.name);
    }
    const crashed: CrashResult[] = [];
    const alreadyDown: string[] = [];
    const ours = site.arrays.map((a) => this.arrays.get(a)).filter((s): s is Supervised => s !== undefined);
    for (const s of ours) {
      if (s.sup.state === 'crashed') {
        this.apply(s, { type: 'hold' });
        if (s.restartTimer) clearTimeout(s.restartTimer);
        alreadyDown.push(s.name);
      }
    }
    const [hooked] = await Promise.all([this.siteHooks?.fail(name) ?? {}, (async () => crashed.push(...(await Promise.all(ours.filter((s) => !alreadyDown.includes(s.name)).map((s) => this.crash(s.name))))))()]);
    this.failedSites.add(name);
    this.setSiteFailed(name, true);
    this.events.publish('site.failed', { site: name, crashed: crashed.map((c) => c.array), alreadyDown, linksCut, ...hooked });
    await this.settle();
    return { site: name, crashed, alreadyDown, linksCut, ...hooked };
  }

  /** `fault site-restore`: restart the site's crashed arrays, restore its links (those whose other end is not in a failed site). */
  async siteRestore(name: string): Promise<{ site: string; restarted: RestartResult[]; linksRestored: string[]; linksStillCut: string[] }> {
    this.refuseWhileStopping();
    const site = this.site(name);
    const down = site.arrays.map((a) => this.arrays.get(a)).filter((s): s is Supervised => s !== undefined && s.sup.state === 'crashed');
    if (!this.failedSites.has(name) && down.length === 0) throw new CliError(EXIT.ERROR, 'conflict', `site ${name} has not failed and none of its arrays is down`);
    const restarted = await Promise.all(down.map((s) => this.restart(s.name)));
    this.failedSites.delete(name);
    this.setSiteFailed(name, false);
    const linksRestored: string[] = [];
    const linksStillCut: string[] = [];
    for (const l of this.linksOf(site)) {
      const other = site.arrays.includes(l.state.a) ? l.state.b : l.state.a;
      if (this.failedSites.has(this.siteOfArray(other))) linksStillCut.push(l.state.name);
      else {
        l.emulator.restore();
        linksRestored.push(l.state.name);
      }
    }
    const hooked = (await this.siteHooks?.restore(name)) ?? {};
    this.events.publish('site.restored', { site: name, restarted: restarted.map((r) => r.array), linksRestored, linksStillCut, ...hooked });
    await this.settle();
    return { site: name, restarted, linksRestored, linksStillCut, ...hooked };
  }

  private setSiteFailed(name: string, failed: boolean): void {
    const e = this.state.sites?.find((x) => x.name === name);
    if (!e) return;
    if (failed) e.failed = true;
    else delete e.failed;
  }

  /** A stop was asked for (signal): from now on no restart, and an array exiting is no crash. */
  beginStop(): void {
    this.stopping = true;
    for (const s of this.arrays.values()) {
      if (s.restartTimer) clearTimeout(s.restartTimer);
      s.restartTimer = undefined;
    }
  }

  /** `down`, a signal, or a failed start-up: every array stopped (SIGTERM, then SIGKILL after the grace), crashed or not. */
  async stopAll(): Promise<void> {
    this.beginStop();
    const runs: { s: Supervised; run: ArrayRun }[] = [];
    for (const s of this.arrays.values()) {
      if (s.restartTimer) clearTimeout(s.restartTimer);
      s.restartTimer = undefined;
      const t = supervise(s.sup, { type: 'stop' }, this.lab.restart);
      if (t.ok) {
        s.sup = t.next;
        s.entry.state = t.next.state;
      }
      if (s.run && !s.run.exited) {
        s.run.proc.kill('SIGTERM');
        runs.push({ s, run: s.run });
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ARRAY_STOP_GRACE_MS)));
    for (const { s, run } of runs) {
      if ((await Promise.race([run.exit.then(() => 'exit' as const), grace])) === 'timeout') {
        this.log(`array ${s.name} did not stop in ${ARRAY_STOP_GRACE_MS / 1000} s: SIGKILL`);
        await killArray(run);
      }
      reapOrphanSps(run);
    }
    clearTimeout(timer);
  }

  /** Second signal while stopping: SIGKILL of everything still running. */
  killAll(): void {
    for (const s of this.arrays.values()) if (s.run && !s.run.exited) void killArray(s.run);
  }
}
