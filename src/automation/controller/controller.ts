/**
 * A site's automation controller (seed 001's automation layer between the cluster and the
 * replication manager): takes operations on resource groups (online, offline, move, recover),
 * runs each as a persisted step log (./executor.ts) while holding the group's lease, hands
 * leases to its peer on request, watches the other site (declares it lost, ../rg/site-loss.ts),
 * cleans up what it ran when it learns it lost a lease (join cleanup), and fails back by policy.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ServiceEvents } from '../../service-kit/index.js';
import { HostResources } from '../resources/index.js';
import { emptyLease, grant, granted, merge, promise, takeForced, type Lease } from '../rg/lease.js';
import { newOperation, planSteps, type OpKind, type Operation } from '../rg/operation.js';
import type { ResourceGroupSpec } from '../rg/types.js';
import type { ControllerConfig } from './config.js';
import { goalOf, runOperation, type ExecutorHost } from './executor.js';
import { PeerClient } from './peer.js';
import { resourceEnv } from './resource-env.js';
import { ControllerStore } from './store.js';
import { preflight, StepFailure } from './storage.js';
import { ResourceWatch } from './resource-watch.js';
import { SiteWatch } from './watch.js';

/** What `--plan` shows: the steps, and what each set's storage step would do if it ran now. */
export interface PlanView {
  steps: ReturnType<typeof planSteps>;
  storage: { set: string; state: string; action: string; reason: string; detail: string }[];
}

/** A request the controller refuses: an HTTP status and a stable code. */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class AutomationController {
  readonly events: ServiceEvents;
  readonly peer: PeerClient;
  readonly store: ControllerStore;
  private readonly busy = new Map<string, Promise<unknown>>();
  /** false until the persisted leases were compared with the peer's (./watch.ts) */
  private confirmed = false;
  private readonly watch: SiteWatch;
  private readonly resourceWatch: ResourceWatch;
  private seq = 0;

  constructor(
    readonly cfg: ControllerConfig,
    log: (line: string) => void,
  ) {
    mkdirSync(cfg.stateDir, { recursive: true, mode: 0o700 });
    this.events = new ServiceEvents(log);
    this.peer = new PeerClient(cfg.peer.site, cfg.peer.url, cfg.secret);
    this.store = new ControllerStore(join(cfg.stateDir, 'controller.json'), cfg.site, cfg.resourceGroups.map((g) => g.name));
    this.watch = new SiteWatch(this);
    this.resourceWatch = new ResourceWatch({
      site: this.site,
      cfg: cfg,
      isBusy: (rg) => this.isBusy(rg),
      onlineHere: (rg) => this.onlineHere(rg),
      resources: (rg) => this.resources(rg),
      emit: (t, d) => this.events.emit(t, d),
    });
  }

  /** This site holds the group's lease and its last operation on the group here brought it up. */
  onlineHere(rg: string): boolean {
    if (!this.confirmed || this.store.lease(rg).holder !== this.site) return false;
    const last = [...this.store.operations()].reverse().find((o) => o.rg === rg);
    return last !== undefined && last.status === 'succeeded' && last.kind !== 'offline' && last.site === this.site;
  }

  get site(): string {
    return this.cfg.site;
  }

  group(name: unknown): ResourceGroupSpec {
    const rg = this.cfg.resourceGroups.find((g) => g.name === name);
    if (!rg) throw new Refusal(404, 'not-found', `no resource group ${JSON.stringify(name)} (resource groups: ${this.cfg.resourceGroups.map((g) => g.name).join(', ') || 'none'})`);
    return rg;
  }

  isBusy(rg: string): boolean {
    return this.busy.has(rg);
  }

  /**
   * Watches the other site. Nothing acts on a persisted lease before it is confirmed (compared with
   * the peer's leases, or the peer declared lost): while this controller was down the other site
   * may have taken its groups. Then the operations a previous run left running resume.
   */
  start(): void {
    this.events.emit('automation.controller-started', { site: this.site, peer: this.peer.site, resumed: this.store.running().map((o) => o.id) });
    this.watch.start();
    this.resourceWatch.start();
  }

  leasesConfirmed(how: 'peer' | 'peer-lost'): void {
    if (this.confirmed) return;
    this.confirmed = true;
    this.events.emit('automation.leases-confirmed', { how, leases: this.store.leases().map((l) => ({ rg: l.rg, holder: l.holder, epoch: l.epoch })) });
    for (const op of this.store.running()) if (!this.busy.has(op.rg)) this.launch(this.group(op.rg), op, true);
  }

  async stop(): Promise<void> {
    this.watch.stop();
    this.resourceWatch.stop();
  }

  // ---- requests ----

  /**
   * Validates and starts an operation (or, with `plan`, only shows its steps and what each set's
   * storage step would do now). Refused whole, before anything changes, when a set's decision is
   * a refusal: a group is never half moved.
   */
  async request(kind: OpKind, rgName: unknown, siteArg: unknown, plan: boolean): Promise<{ operation?: Operation; plan?: PlanView }> {
    const rg = this.group(rgName);
    if (!this.confirmed) throw new Refusal(503, 'starting', `the controller of site ${this.site} has not yet compared its leases with site ${this.peer.site}'s controller (or declared that site lost); try again in a few seconds`);
    const site = siteArg === undefined ? (kind === 'online' ? rg.preferredSite : this.site) : siteArg;
    if (site !== this.site) throw new Refusal(409, 'wrong-controller', `this is the controller of site ${this.site}; ${kind} ${rg.name} at site ${String(site)} is asked of that site's controller`);
    const lease = this.store.lease(rg.name);
    if (kind === 'offline' && lease.holder !== null && lease.holder !== this.site) throw new Refusal(409, 'not-online-here', `resource group ${rg.name} is held by site ${lease.holder} (epoch ${lease.epoch}), not ${this.site}: nothing to stop here`);
    if (kind === 'recover' && lease.holder === this.site) throw new Refusal(409, 'already-here', `resource group ${rg.name} is held by this site already; rg online brings it up here`);
    if (!plan && this.busy.has(rg.name)) throw new Refusal(409, 'busy', `resource group ${rg.name} has an operation running; wait for it (rg status)`);
    const storage = kind === 'offline' ? [] : await preflight(this.cfg.lab, rg.volumeSets, goalOf(kind, this.site, rg));
    if (plan) return { plan: { steps: planSteps(kind, rg), storage } };
    const refused = storage.filter((d) => d.action === 'refuse');
    if (refused.length) throw new Refusal(409, refused[0]!.reason, `${kind} ${rg.name} refused, nothing changed: ${refused.map((d) => d.detail).join('; ')}`);
    if (this.busy.has(rg.name)) throw new Refusal(409, 'busy', `resource group ${rg.name} has an operation running; wait for it (rg status)`);
    const op = newOperation(`${this.site}-${Date.now().toString(36)}-${++this.seq}`, kind, rg, this.site, new Date());
    this.store.putOperation(op);
    this.events.emit('automation.operation-requested', { operation: op.id, kind, rg: rg.name, site: this.site, steps: op.steps.map((s) => `${s.kind}:${s.target}`) });
    this.launch(rg, op, false);
    return { operation: op };
  }

  /** `site recover LOST`: every group the lost site holds (or those of `only`: the automatic ones), recovered here. */
  async recoverSite(lost: unknown, plan: boolean, why: string, only?: string[]): Promise<{ operations: Operation[]; plans: { rg: string; plan: PlanView }[]; refused: { rg: string; code: string; message: string }[] }> {
    if (lost !== this.peer.site) throw new Refusal(409, 'wrong-controller', `this controller (site ${this.site}) recovers site ${this.peer.site} only, not ${JSON.stringify(lost)}`);
    const held = this.cfg.resourceGroups.filter((g) => this.store.lease(g.name).holder === lost && (!only || only.includes(g.name)));
    if (!plan) this.events.emit('automation.site-recover', { site: lost, by: why, groups: held.map((g) => g.name) });
    const out = { operations: [] as Operation[], plans: [] as { rg: string; plan: PlanView }[], refused: [] as { rg: string; code: string; message: string }[] };
    for (const g of held) {
      try {
        const r = await this.request('recover', g.name, this.site, plan);
        if (r.plan) out.plans.push({ rg: g.name, plan: r.plan });
        if (r.operation) out.operations.push(r.operation);
      } catch (e) {
        if (!(e instanceof Refusal)) throw e;
        out.refused.push({ rg: g.name, code: e.code, message: e.message });
        this.events.emit('automation.recover-refused', { rg: g.name, code: e.code, message: e.message });
      }
    }
    return out;
  }

  private launch(rg: ResourceGroupSpec, op: Operation, resumed: boolean): void {
    const run = runOperation(this.executorHost(), rg, op).then(
      (done) => this.events.emit(done.status === 'succeeded' ? 'automation.operation-succeeded' : 'automation.operation-failed', { operation: done.id, kind: done.kind, rg: done.rg, site: done.site, resumed, ...(done.error ? { code: done.error.code, message: done.error.message } : {}), durationMs: Date.parse(done.endedAt ?? '') - Date.parse(done.requestedAt) }),
      (e: unknown) => this.events.emit('automation.operation-failed', { operation: op.id, kind: op.kind, rg: op.rg, code: 'internal', message: (e as Error).message }),
    );
    this.busy.set(rg.name, run);
    void run.finally(() => this.busy.delete(rg.name));
  }

  private executorHost(): ExecutorHost {
    return {
      site: this.site,
      lab: this.cfg.lab,
      emit: (t, d) => this.events.emit(t, d),
      save: (op) => this.store.putOperation(op),
      holdsLease: (rg) => this.confirmed && this.store.lease(rg).holder === this.site,
      acquireLease: (rg) => this.acquireLease(rg),
      takeLeaseForced: (rg) => {
        const l = takeForced(this.store.lease(rg), this.site);
        this.store.setLease(l);
        this.events.emit('automation.lease-forced', { rg, epoch: l.epoch, from: this.peer.site });
      },
      resources: (rg) => ({ start: async (n) => (await this.resources(rg)).start(n), stop: async (n) => (await this.resources(rg)).stop(n) }),
    };
  }

  async resources(rg: ResourceGroupSpec): Promise<HostResources> {
    const env = await resourceEnv(this.cfg, rg);
    return new HostResources({ resources: rg.resources, env, dir: join(this.cfg.stateDir, 'resources', rg.name), emit: (t, d) => this.events.emit(t, { rg: rg.name, ...d }) });
  }

  private async acquireLease(rg: string): Promise<void> {
    const p = promise(this.store.lease(rg), this.site);
    this.store.setLease(p.lease);
    const a = await this.peer.transfer(rg, this.site, p.epoch);
    if (!a.ok) {
      const lost = a.code === 'unreachable' ? `; if site ${this.peer.site} is lost, "sanbox site recover ${this.peer.site}" takes it without that controller` : '';
      throw new StepFailure(a.code === 'unreachable' ? 'peer-unreachable' : a.code, `the controller of site ${this.peer.site} did not hand over the lease of ${rg}: ${a.message}${lost}`);
    }
    const l = granted(this.store.lease(rg), this.site, p.epoch);
    this.store.setLease(l);
    this.events.emit('automation.lease-acquired', { rg, epoch: l.epoch, from: this.peer.site });
  }

  // ---- the peer's requests ----

  /** The peer asks for a group's lease: this site stops the group's host resources first, then grants. */
  async handOver(rgName: unknown, to: unknown, epoch: unknown): Promise<Lease> {
    const rg = this.group(rgName);
    if (to !== this.peer.site || !Number.isInteger(epoch)) throw new Refusal(400, 'invalid-argument', `a lease goes to the peer site ${this.peer.site} at an integer epoch`);
    if (this.busy.has(rg.name)) throw new Refusal(409, 'busy', `site ${this.site} has an operation running on ${rg.name}`);
    const lease = this.store.lease(rg.name);
    grant(lease, this.peer.site, epoch as number); // a stale or conflicting request is refused before anything stops
    const release = (async () => {
      if (lease.holder === this.site) await (await this.resources(rg)).stopAll();
      const next = grant(this.store.lease(rg.name), this.peer.site, epoch as number);
      this.store.setLease(next);
      this.events.emit('automation.lease-released', { rg: rg.name, to: this.peer.site, epoch: next.epoch, stoppedResources: lease.holder === this.site });
      return next;
    })();
    this.busy.set(rg.name, release);
    try {
      return await release;
    } finally {
      this.busy.delete(rg.name);
    }
  }

  /** The peer's leases, learned on (re)connection: a lease this site held and lost means join cleanup. */
  async learnLeases(remote: Lease[]): Promise<void> {
    for (const r of remote) {
      if (!this.cfg.resourceGroups.some((g) => g.name === r.rg) || this.busy.has(r.rg)) continue;
      const before = this.store.lease(r.rg) ?? emptyLease(r.rg);
      const after = merge(before, r);
      if (after === before) continue;
      this.store.setLease(after);
      this.events.emit('automation.lease-learned', { rg: r.rg, holder: after.holder, epoch: after.epoch, forced: after.forced, previousHolder: before.holder });
      if (before.holder === this.site && after.holder !== this.site) await this.joinCleanup(this.group(r.rg), after);
    }
  }

  private async joinCleanup(rg: ResourceGroupSpec, lease: Lease): Promise<void> {
    this.events.emit('automation.join-cleanup', { rg: rg.name, holder: lease.holder, epoch: lease.epoch, detail: `site ${lease.holder} took ${rg.name} while this site was away: its host resources here are stopped` });
    const cleanup = (async () => (await this.resources(rg)).stopAll())();
    this.busy.set(rg.name, cleanup);
    try {
      await cleanup;
    } catch (e) {
      this.events.emit('automation.join-cleanup-failed', { rg: rg.name, message: (e as Error).message });
    } finally {
      this.busy.delete(rg.name);
    }
  }

  status(): Record<string, unknown> {
    const ops = this.store.operations();
    return {
      site: this.site,
      leasesConfirmed: this.confirmed,
      peer: { site: this.peer.site, url: this.peer.url, ...this.watch.view() },
      groups: this.cfg.resourceGroups.map((g) => {
        const last = [...ops].reverse().find((o) => o.rg === g.name);
        return { name: g.name, preferredSite: g.preferredSite, failover: g.failover, failback: g.failback, volumeSets: g.volumeSets, resources: g.resources.map((r) => r.name), lease: this.store.lease(g.name), busy: this.busy.has(g.name), online: this.onlineHere(g.name), health: this.resourceWatch.view(g.name), lastOperation: last ?? null };
      }),
    };
  }
}
