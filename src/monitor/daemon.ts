/**
 * The pair resync monitor daemon ([0026]-[0034]): takes the state directory's lock, loads the
 * resource database, serves the socket (and optionally TCP and HTTP), polls every resource at
 * its interval, follows the arrays' event streams, and resynchronizes suspended pairs. Its
 * address goes to `<state>/monitor.json`; its log (one line per event) to `<state>/monitor.log`.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { rm, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { takeDaemonLock } from './lock.js';
import { ResourceDatabase } from './db.js';
import { MonitorEvents } from './events.js';
import { SocketServer } from './server.js';
import { ServiceHttp } from '../service-kit/index.js';
import { MonitorCounters, monitorMetrics } from './metrics.js';
import { Scheduler } from './scheduler.js';
import { EventFollower } from './follower.js';
import { checkResource, DEFAULT_CHECKER_OPTIONS, type CheckerOptions } from './checker.js';
import { handle, viewOf, type HandlerContext } from './handlers.js';
import { accessOfUrl, isUrlInstance, redactInstance, type InstanceResolver } from './access.js';
import { keyOf, type PairState, type ResourceEntry } from './types.js';

export interface DaemonOptions {
  stateDir: string;
  /** resolves instance names that are not URLs (the CLI: lab array names) */
  resolveName?: InstanceResolver;
  listen?: { host: string; port: number };
  token?: string;
  http?: { host: string; port: number };
  checker?: Partial<CheckerOptions>;
  /** follow the arrays' event streams (default true; false: polling only, for comparison) */
  followEvents?: boolean;
  /** fsync the database (default true) */
  sync?: boolean;
  /** also write the log lines here (the foreground `monitor serve`) */
  log?: (line: string) => void;
}

export interface DaemonInfo {
  pid: number;
  stateDir: string;
  socket: string;
  tcp?: string;
  http?: string;
  startedAt: string;
}

export class MonitorAlreadyRunning extends Error {
  constructor(readonly stateDir: string) {
    super(`a monitor daemon already runs for ${stateDir}`);
    this.name = 'MonitorAlreadyRunning';
  }
}

export const socketPathOf = (stateDir: string): string => join(stateDir, 'prm.sock');
export const infoPathOf = (stateDir: string): string => join(stateDir, 'monitor.json');
export const logPathOf = (stateDir: string): string => join(stateDir, 'monitor.log');

/** A stream event from an array re-checks its resources after this quiet time (events come in bursts). */
const EVENT_DEBOUNCE_MS = 100;

export class MonitorDaemon {
  readonly events: MonitorEvents;
  private readonly scheduler: Scheduler;
  private readonly follower: EventFollower;
  private server: SocketServer | undefined;
  private http: ServiceHttp | undefined;
  private release: (() => Promise<void>) | undefined;
  private readonly debounce = new Map<string, NodeJS.Timeout>();
  private readonly streamStates = new Map<string, string>();
  /** aborted by stop(): a check waiting for a resync to finish stops waiting */
  private readonly stopChecks = new AbortController();
  /** What GET /metrics counts: checks run, events by type. */
  private readonly counters = new MonitorCounters();
  private stopping: Promise<void> | undefined;
  info: DaemonInfo | undefined;
  /** resolves when the daemon has stopped (REMOVEALL, SHUTDOWN, stop()) */
  readonly stopped: Promise<void>;
  private markStopped!: () => void;

  private constructor(
    private readonly opts: DaemonOptions,
    private readonly db: ResourceDatabase,
  ) {
    const logFile = logPathOf(opts.stateDir);
    this.events = new MonitorEvents((line) => {
      appendFileSync(logFile, line + '\n');
      opts.log?.(line);
    });
    this.counters.follow(this.events);
    const resolve = this.resolve;
    const checker = { ...DEFAULT_CHECKER_OPTIONS, ...opts.checker };
    this.scheduler = new Scheduler({
      check: (k) => {
        this.counters.checks++;
        return checkResource({ db, events: this.events, resolve, opts: checker, signal: this.stopChecks.signal }, k);
      },
      entry: (a, g) => db.showOne(a, g),
      started: (a, g, at) => void db.update(a, g, (e) => (e.startTime = at.toISOString())),
      failed: (a, g, err) => this.events.emit('resource.check-failed', { appName: a, deviceGroup: g, error: err.message }),
    });
    this.follower = new EventFollower({
      resolve,
      onEvent: (instance) => this.instanceEvent(instance),
      onStream: (instance, state, why) => this.streamState(instance, state, why),
    });
    this.stopped = new Promise((r) => (this.markStopped = r));
  }

  /** Starts a daemon for `opts.stateDir`; throws MonitorAlreadyRunning when another holds the lock. */
  static async start(opts: DaemonOptions): Promise<MonitorDaemon> {
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    const lock = await takeDaemonLock(opts.stateDir);
    if (!lock) throw new MonitorAlreadyRunning(opts.stateDir);
    try {
      const db = await ResourceDatabase.open(opts.stateDir, { noSync: opts.sync === false });
      const d = new MonitorDaemon(opts, db);
      d.release = lock.release;
      await d.listen();
      for (const p of db.loadProblems) d.events.emit('monitor.db-problem', { problem: p });
      return d;
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  private resolve: InstanceResolver = async (instance) => {
    if (isUrlInstance(instance)) return accessOfUrl(instance);
    if (!this.opts.resolveName) throw new Error(`instance ${instance} is not a URL and this monitor resolves no names`);
    return this.opts.resolveName(instance);
  };

  private async listen(): Promise<void> {
    const socket = socketPathOf(this.opts.stateDir);
    this.server = new SocketServer({ socketPath: socket, listen: this.opts.listen, token: this.opts.token, events: this.events, handle: (r) => handle(this.handlerContext(), r) });
    const { tcpPort } = await this.server.start();
    let httpPort: number | undefined;
    if (this.opts.http) {
      this.http = new ServiceHttp({
        service: 'monitor',
        ...this.opts.http,
        token: this.opts.token,
        events: this.events,
        get: { '/v1/status': () => this.status(), '/v1/resources': () => ({ resources: this.db.showAll().map((e) => viewOf(this.handlerContext(), e)) }) },
        readOnlyHint: 'use prmd/chkmon or sanbox monitor',
        metrics: () => monitorMetrics(this.db.showAll(), this.counters) });
      httpPort = await this.http.start();
    }
    this.info = {
      pid: process.pid,
      stateDir: this.opts.stateDir,
      socket,
      ...(tcpPort !== undefined ? { tcp: `${this.opts.listen!.host}:${tcpPort}` } : {}),
      ...(httpPort !== undefined ? { http: `http://${this.opts.http!.host}:${httpPort}` } : {}),
      startedAt: new Date().toISOString(),
    };
    const tmp = infoPathOf(this.opts.stateDir) + '.tmp';
    await writeFile(tmp, JSON.stringify(this.info, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, infoPathOf(this.opts.stateDir));
    this.events.emit('monitor.started', { resources: this.db.showAll().length, ...this.info });
    for (const e of this.db.showAll()) this.scheduler.watch(e.appName, e.deviceGroup);
    this.refollow();
  }

  status(): Record<string, unknown> {
    const all = this.db.showAll();
    const count = (p: PairState) => all.filter((e) => e.pair === p).length;
    return { ...this.info, timeMark: this.db.getTimeMark(), resources: all.length, connected: count('connected'), suspended: count('suspended'), errorSuspended: count('error-suspended'), lastEventSeq: this.events.lastSeq };
  }

  private handlerContext(): HandlerContext {
    return {
      db: this.db,
      events: this.events,
      watch: (e) => {
        this.scheduler.watch(e.appName, e.deviceGroup);
        this.refollow();
      },
      unwatch: (e) => {
        this.scheduler.unwatch(e.appName, e.deviceGroup);
        this.refollow();
      },
      timeRemaining: (e) => this.scheduler.timeRemaining(e.appName, e.deviceGroup),
      stopSoon: (why) => setImmediate(() => void this.stop(why)),
      waitFor: (a, g, states, ms) => this.waitFor(a, g, states, ms),
    };
  }

  private refollow(): void {
    if (this.opts.followEvents === false) return;
    this.follower.follow(new Set(this.db.showAll().map((e) => e.instance)));
  }

  /** A stream's state changes are events; its retries while the array stays away are not. */
  private streamState(instance: string, state: 'open' | 'closed', why?: string): void {
    const text = `${state} ${why ?? ''}`;
    if (this.streamStates.get(instance) === text) return;
    this.streamStates.set(instance, text);
    this.events.emit(state === 'open' ? 'monitor.stream-open' : 'monitor.stream-closed', { instance: redactInstance(instance), ...(why ? { why } : {}) });
    // Events missed while the stream was down: check now.
    if (state === 'open') for (const k of this.scheduler.keysOf(instance)) this.scheduler.trigger(k.appName, k.deviceGroup);
  }

  private instanceEvent(instance: string): void {
    if (this.debounce.has(instance)) return;
    this.debounce.set(
      instance,
      setTimeout(() => {
        this.debounce.delete(instance);
        for (const k of this.scheduler.keysOf(instance)) this.scheduler.trigger(k.appName, k.deviceGroup);
      }, EVENT_DEBOUNCE_MS),
    );
  }

  /** Resolves true once the resource's pair state is one of `states`, false after `timeoutMs`. */
  private waitFor(appName: string, deviceGroup: string, states: PairState[], timeoutMs: number): Promise<boolean> {
    const reached = (e: ResourceEntry | undefined) => e !== undefined && states.includes(e.pair);
    if (reached(this.db.showOne(appName, deviceGroup))) return Promise.resolve(true);
    return new Promise((resolve) => {
      const key = keyOf(appName, deviceGroup);
      const done = (v: boolean) => {
        clearTimeout(timer);
        unsubscribe();
        resolve(v);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const unsubscribe = this.events.subscribe((ev) => {
        if (ev.type === 'monitor.stopping') return done(false);
        if (ev.appName === undefined || keyOf(ev.appName, ev.deviceGroup!) !== key) return;
        if (reached(this.db.showOne(appName, deviceGroup))) done(true);
      });
    });
  }

  /** Stops serving and polling; the database stays as saved. */
  stop(why = 'stop'): Promise<void> {
    this.stopping ??= (async () => {
      this.events.emit('monitor.stopping', { why });
      for (const t of this.debounce.values()) clearTimeout(t);
      this.follower.stop();
      this.stopChecks.abort();
      await this.server?.close();
      await this.http?.close();
      await this.scheduler.stop();
      await rm(infoPathOf(this.opts.stateDir), { force: true });
      await this.release?.();
      this.markStopped();
    })();
    return this.stopping;
  }
}
