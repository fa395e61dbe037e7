/**
 * The heartbeat agent of one host (`sanbox hb serve`): every interval it takes part in its site's
 * master election, and the master sends heartbeats on every enabled path, reads the other site's,
 * keeps the status table, asks the witness, and decides: the standby's master fails over when
 * every path says the production is dead (and the witness agrees), the production's master
 * fences its volumes when it has lost every path and the witness. Every state change is an
 * `hb.*` event. The HTTP routes are in ./api.ts.
 */
import { mkdirSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ServiceEvents, ServiceHttp } from '../../service-kit/index.js';
import { failoverDecision, fenceDecision } from '../decision.js';
import { electMaster } from '../master.js';
import type { FailureNotice } from '../notice.js';
import { emptyTable, type TableChange } from '../status-table.js';
import { parseTable, serializeTable } from '../status-table-codec.js';
import { TABLE_BLOCK_BYTES, TABLE_OFFSET, decodeTableBlock, encodeTableBlock } from '../table-block.js';
import { runFailover, runNoticeAction, setFence } from './actions.js';
import { agentRoutes } from './api.js';
import type { SiteRole } from '../message.js';
import { roleOf, timeoutMsOf, type AgentConfig } from './config.js';
import { postJson } from './peers.js';
import { Receiver } from './receiver.js';
import { Sender, type SendModes } from './sender.js';
import { HeartbeatVolume } from './volume.js';
import { arrayFailures, FailureWatch, type Failure } from './watch.js';
import { readFileSync } from 'node:fs';

/** Notices kept for `sanbox hb notices`. */
const KEEP_NOTICES = 200;

export type WitnessView = { state: 'not-configured' } | { state: 'reachable'; sites: Record<string, { ageMs: number | null }> } | { state: 'unreachable'; error: string };

export interface ReceivedNotice extends FailureNotice {
  via: string[];
  receivedAt: string;
}

export class HeartbeatAgent {
  readonly events: ServiceEvents;
  readonly role: SiteRole;
  readonly timeoutMs: number;
  /**
   * A silent master is replaced after this much local silence: well inside the other site's
   * timeout, so the new master's heartbeats arrive there before it could call this site dead.
   */
  readonly localTimeoutMs: number;
  /**
   * Reads (and decisions) run twice per interval: a heartbeat is seen at most half an interval
   * after it was written, and a silence judged at most half an interval after the timeout, so a
   * lost site is detected within the timeout and one interval of its last heartbeat.
   */
  readonly readEveryMs: number;
  private lastSendMono = -Infinity;
  readonly receiver: Receiver;
  readonly sender: Sender;
  readonly outVolumes = new Map<string, HeartbeatVolume>();
  readonly inVolumes = new Map<string, HeartbeatVolume>();
  readonly modes: SendModes = { network: true, mirrors: true, disabled: new Set() };
  master: string | null = null;
  failedOver: { atMs: number; detectionMs: number | null; promoteMs: number; promoted: string[]; failed: { name: string; error: string }[] } | null = null;
  fenced = false;
  /** the other site told us (network) that it failed over */
  peerFailedOver = false;
  witness: WitnessView = { state: 'not-configured' };
  readonly notices: ReceivedNotice[] = [];
  readonly watch = new FailureWatch();
  cycles = 0;
  private readonly siblingSeen = new Map<string, number>();
  private siblingHeard = false;
  private readonly startedMono = performance.now();
  private http: ServiceHttp | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private lastDecision = '';
  private readonly tablePath: string;
  private tableLoaded = false;

  constructor(
    readonly cfg: AgentConfig,
    log?: (line: string) => void,
  ) {
    this.role = roleOf(cfg);
    this.timeoutMs = timeoutMsOf(cfg);
    this.localTimeoutMs = Math.max(2 * cfg.intervalMs, Math.floor(this.timeoutMs / 2));
    this.readEveryMs = Math.max(5, Math.floor(cfg.intervalMs / 2));
    this.events = new ServiceEvents(log);
    mkdirSync(cfg.stateDir, { recursive: true });
    this.tablePath = join(cfg.stateDir, `${cfg.host}.table.json`);
    const peerHosts = cfg.peers.map((p) => p.name);
    this.receiver = new Receiver(this.loadTable(), { knownSenders: peerHosts, instance: cfg.instance, timeoutMs: this.timeoutMs }, cfg.recoverAfter);
    this.sender = new Sender(cfg, this.role);
    const deadline = Math.max(cfg.intervalMs, 200);
    for (const v of cfg.send) this.outVolumes.set(v.mirror, new HeartbeatVolume(v, deadline));
    for (const v of cfg.receive) {
      this.inVolumes.set(v.mirror, new HeartbeatVolume(v, deadline));
      const r = this.receiver.install(v);
      if (!r.ok && r.reason !== 'duplicate-mirror') throw new Error(`cannot install heartbeat mirror ${v.mirror}: ${r.detail}`);
    }
  }

  /** The persisted table of an earlier run (its devices, modes), or an empty one. */
  private loadTable() {
    try {
      const t = parseTable(readFileSync(this.tablePath, 'utf8'));
      this.tableLoaded = true;
      return t;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.events.emit('hb.table-discarded', { host: this.cfg.host, from: 'file', error: (e as Error).message });
      return emptyTable();
    }
  }

  /** No local copy: the table this site's master last wrote to its heartbeat volumes, if any. */
  private async tableFromVolumes(): Promise<void> {
    for (const v of this.outVolumes.values()) {
      let r;
      try {
        r = decodeTableBlock(await v.read(TABLE_OFFSET, TABLE_BLOCK_BYTES));
      } catch (e) {
        this.events.emit('hb.table-discarded', { host: this.cfg.host, from: `volume ${v.endpoint.mirror}`, error: (e as Error).message });
        continue;
      }
      if (!r.ok) {
        if (r.reason !== 'blank') this.events.emit('hb.table-discarded', { host: this.cfg.host, from: `volume ${v.endpoint.mirror}`, error: `${r.reason}: ${r.detail}` });
        continue;
      }
      this.receiver.replaceTable({ table: r.table, changes: [] });
      for (const rv of this.cfg.receive) this.receiver.install(rv); // the configured ones stay installed
      this.events.emit('hb.table-restored', { host: this.cfg.host, from: `volume ${v.endpoint.mirror}`, devices: r.table.devices.filter((d) => d.status !== 'NULL').map((d) => d.mirror) });
      return;
    }
  }

  async start(): Promise<number> {
    if (!this.tableLoaded) await this.tableFromVolumes();
    this.http = new ServiceHttp({ service: 'heartbeat agent', host: this.cfg.listen.host, port: this.cfg.listen.port, events: this.events, ...agentRoutes(this) });
    const port = await this.http.start();
    this.running = true;
    this.events.emit('hb.started', { host: this.cfg.host, site: this.cfg.site, role: this.role, port, intervalMs: this.cfg.intervalMs, timeoutMs: this.timeoutMs, send: [...this.outVolumes.keys()], receive: [...this.inVolumes.keys()], witness: this.cfg.witness !== undefined });
    this.loop = this.run();
    return port;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    // the background jobs and the last table save end before the volumes close and the files are left
    await Promise.all(this.busy.values());
    await this.saving;
    for (const v of [...this.outVolumes.values(), ...this.inVolumes.values()]) await v.close();
    this.events.emit('hb.stopped', { host: this.cfg.host });
    await this.http?.close();
  }

  get amMaster(): boolean {
    return this.master === this.cfg.host;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const t0 = performance.now();
      try {
        await this.cycle();
      } catch (e) {
        this.events.emit('hb.cycle-failed', { host: this.cfg.host, error: (e as Error).stack ?? String(e) });
      }
      const wait = Math.max(0, this.readEveryMs - (performance.now() - t0));
      await new Promise<void>((r) => {
        const t = setTimeout(r, wait);
        this.wake = () => (clearTimeout(t), r());
      });
    }
  }

  /**
   * One cycle: read the other site's heartbeats, then decide. Sending, the witness, the local
   * heartbeats and the watch of this site's arrays run in the background, one of each kind at a
   * time, so a path that waits out its deadline (a cut network, a mirror write stuck behind a
   * dead secondary) never delays the reading and the decision.
   */
  private async cycle(): Promise<void> {
    this.cycles++;
    const now = performance.now();
    const due = now - this.lastSendMono >= this.cfg.intervalMs - this.readEveryMs / 2;
    if (due) {
      this.lastSendMono = now;
      this.background('local', () => this.sendLocal());
    }
    this.elect();
    const master = this.amMaster;
    if (master && due) {
      this.background('send', () => this.send());
      if (this.tableUnsaved.size) this.background('table', () => this.saveTable());
      if (this.cfg.witness) this.background('witness', () => this.askWitness());
    }
    const rx = await this.receiver.cycle([...this.inVolumes.values()], () => performance.now());
    this.publishChanges(rx.changes);
    for (const n of rx.notices) await this.takeNotice(n, 'volume');
    if (!master) return;
    if (this.role === 'standby') await this.decideFailover();
    else await this.decideFence();
  }

  private async send(): Promise<void> {
    const sent = await this.sender.send([...this.outVolumes.values()], this.modes, { failedOver: this.failedOver !== null, fenced: this.fenced });
    this.noteSends([...sent.network.map((n) => ({ path: `network:${n.peer}`, ok: n.ok, error: n.error })), ...sent.volumes.map((v) => ({ path: `volume:${v.mirror}`, ok: v.ok, error: v.error }))]);
    if (this.role === 'production') this.background('watch', () => this.watchSite(sent.volumes));
  }

  private readonly busy = new Map<string, Promise<void>>();
  /** Runs `job` unless the previous one of that kind is still running; its failure is an event. */
  private background(kind: string, job: () => Promise<void>): void {
    if (this.busy.has(kind)) return;
    const run = job()
      .catch((e: unknown) => void this.events.emit('hb.cycle-failed', { host: this.cfg.host, job: kind, error: (e as Error).stack ?? String(e) }))
      .finally(() => this.busy.delete(kind));
    this.busy.set(kind, run);
  }

  /** Local heartbeats to the site's other hosts (direct, not through the heartbeat network). */
  private async sendLocal(): Promise<void> {
    const others = this.cfg.siblings.filter((s) => s.name !== this.cfg.host);
    await Promise.all(others.map((s) => postJson(`${s.url}/v1/local`, { host: this.cfg.host, master: this.master }, this.cfg.intervalMs)));
  }

  /** The election (the source's master rules) from the local heartbeats heard so far. */
  private elect(): void {
    const others = this.cfg.siblings.filter((s) => s.name !== this.cfg.host);
    const now = performance.now();
    // At start a sibling not heard yet is not dead: wait for one message, or three intervals
    // (the other site starts its clocks at the same time: a long wait here is a false alarm there).
    if (others.length && !this.siblingHeard && now - this.startedMono < Math.min(this.timeoutMs, 3 * this.cfg.intervalMs)) return;
    const liveness = Object.fromEntries(others.map((s) => [s.name, { valid: now - (this.siblingSeen.get(s.name) ?? this.startedMono) <= this.localTimeoutMs, reason: 'local heartbeat' }]));
    const d = electMaster(this.cfg.siblings.map((s) => s.name), liveness, this.cfg.host, this.master);
    if (d.master === this.master) return;
    this.events.emit('hb.master', { host: this.cfg.host, site: this.cfg.site, master: d.master, previous: this.master, reason: d.reason, detail: d.detail });
    this.master = d.master;
    if (this.amMaster) void this.saveTable(); // the new master's table goes to the volumes at once
  }

  /** A sibling's local heartbeat (POST /v1/local): alive, and whom it takes for master. */
  sibling(host: string, master: string | null): void {
    if (!this.cfg.siblings.some((s) => s.name === host) || host === this.cfg.host) throw new Error(`${host} is not a host of site ${this.cfg.site}`);
    this.siblingSeen.set(host, performance.now());
    this.siblingHeard = true;
    // a restarted host adopts the master the others follow instead of electing itself
    if (this.master === null && master !== null && this.cfg.siblings.some((s) => s.name === master)) this.master = master;
  }

  private async askWitness(): Promise<void> {
    if (!this.cfg.witness) return;
    const r = await postJson(`${this.cfg.witness.url}/v1/beat`, { cluster: this.cfg.cluster, site: this.cfg.site, host: this.cfg.host }, this.cfg.intervalMs);
    const prev = this.witness.state;
    this.witness = r.ok ? { state: 'reachable', sites: (r.body as { sites: Record<string, { ageMs: number | null }> }).sites } : { state: 'unreachable', error: r.error };
    if (prev !== this.witness.state) this.events.emit('hb.witness', { host: this.cfg.host, state: this.witness.state, ...(r.ok ? {} : { error: r.error }) });
  }

  /** The witness's word on the production site, as failoverDecision takes it. */
  private witnessOnPeer(): 'not-configured' | 'peer-dead' | 'peer-alive' | 'unreachable' {
    const w = this.witness;
    if (!this.cfg.witness) return 'not-configured';
    if (w.state !== 'reachable') return 'unreachable';
    const age = w.sites[this.cfg.production]?.ageMs ?? null;
    return age === null || age > this.timeoutMs ? 'peer-dead' : 'peer-alive';
  }

  private async decideFailover(): Promise<void> {
    const lastValid = this.receiver.lastValidMonoMs;
    const d = failoverDecision({
      table: this.receiver.table,
      witness: this.witnessOnPeer(),
      failedOver: this.failedOver !== null,
      ...(lastValid === null ? { unheardSinceMs: performance.now() - this.startedMono, timeoutMs: this.timeoutMs } : {}),
    });
    this.noteDecision('failover', d);
    if (d.action !== 'failover') return;
    const detectionMs = lastValid === null ? null : Math.round(performance.now() - lastValid);
    if (!this.cfg.failover.automatic) {
      if (this.lastDecision !== 'failover-held') this.events.emit('hb.failover-held', { host: this.cfg.host, reason: 'manual-policy', detail: 'every path says the production site is dead; failover is manual (sanbox mirror promote / group promote)', detectionMs });
      this.lastDecision = 'failover-held';
      return;
    }
    this.events.emit('hb.failover-started', { host: this.cfg.host, reason: d.reason, detail: d.detail, detectionMs, mirrors: this.cfg.failover.mirrors.map((m) => m.name), groups: this.cfg.failover.groups.map((g) => g.name) });
    const r = await runFailover(this.cfg);
    this.failedOver = { atMs: Date.now(), detectionMs, ...r };
    this.events.emit('hb.failover', { host: this.cfg.host, site: this.cfg.site, detectionMs, promoteMs: r.promoteMs, promoted: r.promoted, failed: r.failed, timeoutMs: this.timeoutMs, intervalMs: this.cfg.intervalMs });
  }

  private async decideFence(): Promise<void> {
    if (!this.cfg.fence.enabled) return;
    const lastValid = this.receiver.lastValidMonoMs ?? this.startedMono;
    const witness = !this.cfg.witness ? 'not-configured' : this.witness.state === 'reachable' ? 'reachable' : 'unreachable';
    const d = fenceDecision({ lastPeerContactAgeMs: performance.now() - lastValid, witness, fenceAfterMs: Math.floor(this.timeoutMs / 2), fenced: this.fenced });
    this.noteDecision('fence', d);
    if (d.action === 'none') return;
    if (d.action === 'unfence' && this.peerFailedOver) {
      if (this.lastDecision !== 'unfence-refused') this.events.emit('hb.unfence-refused', { host: this.cfg.host, reason: 'peer-failed-over', detail: 'the standby failed over while this site was fenced: its data is the production now; unfence by hand after a failback' });
      this.lastDecision = 'unfence-refused';
      return;
    }
    const fenced = d.action === 'fence';
    const r = await setFence(this.cfg, fenced, d.detail);
    this.fenced = fenced ? r.done.length > 0 || this.cfg.fence.luns.length === 0 : r.failed.length > 0;
    this.events.emit(fenced ? 'hb.fenced' : 'hb.unfenced', { host: this.cfg.host, reason: d.reason, detail: d.detail, luns: r.done, failed: r.failed });
  }

  private readonly sendOk = new Map<string, boolean>();
  /** A send path that starts or stops working is an event (not every heartbeat). */
  private noteSends(results: { path: string; ok: boolean; error?: string | undefined }[]): void {
    for (const r of results) {
      if (this.sendOk.get(r.path) === r.ok) continue;
      const first = !this.sendOk.has(r.path);
      this.sendOk.set(r.path, r.ok);
      if (first && r.ok) continue;
      this.events.emit(r.ok ? 'hb.send-recovered' : 'hb.send-failed', { host: this.cfg.host, path: r.path, ...(r.error ? { error: r.error } : {}) });
    }
  }

  private noteDecision(kind: string, d: { action: string; reason: string; detail: string }): void {
    const key = `${kind}:${d.action}:${d.reason}`;
    if (key === this.lastDecision) return;
    this.lastDecision = key;
    this.events.emit('hb.decision', { host: this.cfg.host, kind, action: d.action, reason: d.reason, detail: d.detail });
  }

  /** Production master: failures at its own site become notices (Fig. 10). */
  private async watchSite(volumes: { mirror: string; ok: boolean; error?: string }[]): Promise<void> {
    const seen: Failure[] = [];
    for (const a of this.cfg.arrays) seen.push(...(await arrayFailures(a, this.cfg.intervalMs)));
    const okCount = volumes.filter((v) => v.ok).length;
    for (const v of volumes) {
      if (!v.ok) seen.push({ componentId: `heartbeat-volume:${v.mirror}`, componentKind: 'heartbeat-volume', address: this.outVolumes.get(v.mirror)?.endpoint.address ?? v.mirror, details: `cannot write heartbeats: ${v.error ?? ''}`, redundant: okCount > 0 });
    }
    for (const f of this.watch.update(seen)) await this.notify({ componentId: f.componentId, componentKind: f.componentKind, details: f.details, address: f.address, level: f.level, detectedAtMs: Date.now() });
  }

  /** Sends a failure notice over every path (also `sanbox hb notify`). */
  async notify(n: Omit<FailureNotice, 'seq' | 'senderId'>): Promise<{ notice: FailureNotice; delivered: string[]; failed: string[] }> {
    const writable = [...this.outVolumes.values()].filter((v) => this.modes.mirrors && !this.modes.disabled.has(v.endpoint.mirror));
    const r = await this.sender.notify(n, writable);
    this.events.emit('hb.notice-sent', { host: this.cfg.host, noticeSeq: r.notice.seq, level: r.notice.level, componentId: r.notice.componentId, details: r.notice.details, delivered: r.delivered, failed: r.failed });
    return r;
  }

  /** A notice from the other site, by volume or network; each one is handled once. */
  async takeNotice(n: FailureNotice, via: string): Promise<void> {
    const known = this.notices.find((x) => x.senderId === n.senderId && x.seq === n.seq);
    if (known) {
      if (!known.via.includes(via)) known.via.push(via);
      return;
    }
    this.receiver.seen(n.seq);
    this.notices.push({ ...n, via: [via], receivedAt: new Date().toISOString() });
    if (this.notices.length > KEEP_NOTICES) this.notices.shift();
    this.events.emit('hb.notice', { host: this.cfg.host, via, noticeSeq: n.seq, level: n.level, componentId: n.componentId, componentKind: n.componentKind, address: n.address, details: n.details, detectedAtMs: n.detectedAtMs, sender: n.senderId });
    const command = this.cfg.actions[n.level];
    if (!command || !this.amMaster) return;
    const r = await runNoticeAction(command, n);
    this.events.emit('hb.action', { host: this.cfg.host, level: n.level, noticeSeq: n.seq, command, code: r.code, signal: r.signal, output: r.output });
  }

  publishChanges(changes: readonly TableChange[]): void {
    if (!changes.length) return;
    for (const c of changes) this.events.emit('hb.table', { host: this.cfg.host, ...c });
    void this.saveTable();
  }

  private saving = Promise.resolve();
  /** heartbeat volumes whose last table save failed: the master writes them again each interval until one succeeds (the table may not change again for hours) */
  private readonly tableUnsaved = new Set<string>();
  /** The table in a local file and, from the master, on every heartbeat volume its site writes; serialized: the newest is the last written. */
  private saveTable(): Promise<void> {
    this.saving = this.saving.then(async () => {
      const table = this.receiver.table;
      try {
        const tmp = `${this.tablePath}.tmp`;
        await writeFile(tmp, serializeTable(table));
        await rename(tmp, this.tablePath);
      } catch (e) {
        this.events.emit('hb.table-save-failed', { host: this.cfg.host, where: 'file', error: (e as Error).message });
      }
      if (!this.amMaster) return;
      const block = encodeTableBlock(table);
      for (const m of this.tableUnsaved) if (!this.outVolumes.has(m)) this.tableUnsaved.delete(m); // uninstalled meanwhile
      await Promise.all(
        [...this.outVolumes.values()].map((v) =>
          v.write(TABLE_OFFSET, block).then(
            () => {
              if (this.tableUnsaved.delete(v.endpoint.mirror)) this.events.emit('hb.table-saved', { host: this.cfg.host, where: `volume ${v.endpoint.mirror}` });
            },
            (e: unknown) => {
              if (!this.tableUnsaved.has(v.endpoint.mirror)) this.events.emit('hb.table-save-failed', { host: this.cfg.host, where: `volume ${v.endpoint.mirror}`, error: (e as Error).message });
              this.tableUnsaved.add(v.endpoint.mirror);
            },
          ),
        ),
      );
    });
    return this.saving;
  }

  status(): Record<string, unknown> {
    const lastValid = this.receiver.lastValidMonoMs;
    return {
      lab: this.cfg.lab,
      cluster: this.cfg.cluster,
      instance: this.cfg.instance,
      host: this.cfg.host,
      site: this.cfg.site,
      role: this.role,
      production: this.cfg.production,
      standby: this.cfg.standby,
      master: this.master,
      isMaster: this.amMaster,
      intervalMs: this.cfg.intervalMs,
      timeoutMs: this.timeoutMs,
      cycles: this.cycles,
      serial: this.sender.serial,
      table: this.receiver.table,
      observations: this.receiver.observations(),
      lastPeerContactAgoMs: lastValid === null ? null : Math.round(performance.now() - lastValid),
      send: { network: this.modes.network, mirrors: this.modes.mirrors, disabled: [...this.modes.disabled], volumes: [...this.outVolumes.values()].map((v) => ({ mirror: v.endpoint.mirror, address: v.endpoint.address, lastError: v.lastError })) },
      receive: [...this.inVolumes.values()].map((v) => ({ mirror: v.endpoint.mirror, address: v.endpoint.address, lastError: v.lastError })),
      witness: this.witness,
      failedOver: this.failedOver,
      peerFailedOver: this.peerFailedOver,
      fenced: this.fenced,
      openFailures: this.watch.list(),
      notices: this.notices.length,
    };
  }
}
