/**
 * The controller's view of the other site, once a second: asks the peer controller for its
 * leases (learning any newer one: join cleanup), asks the other site's arrays whether they
 * answer, declares the site lost by ../rg/site-loss.ts (and recovers the groups whose policy is
 * automatic), notices its return, and requests the failback of groups whose policy says so once
 * every set is in sync again.
 */
import { ApiClient } from '../../control/index.js';
import { arrayClient, readVolumeSet } from '../client.js';
import { siteLossDecision } from '../rg/site-loss.js';
import type { Lease } from '../rg/lease.js';
import type { ServiceEvents } from '../../service-kit/index.js';
import type { ControllerConfig } from './config.js';
import type { PeerClient } from './peer.js';
import { labState, resolveForRecoveredSide, volumeSet } from './storage.js';

const TICK_MS = 1000;
const ARRAY_DEADLINE_MS = 1000;
/** After a failback request the peer refused, wait this long before asking again. */
const FAILBACK_RETRY_MS = 5_000;

/** What the watch needs of its controller (./controller.ts). */
export interface WatchedController {
  readonly cfg: ControllerConfig;
  readonly site: string;
  readonly peer: PeerClient;
  readonly events: ServiceEvents;
  readonly store: { lease(rg: string): Lease };
  isBusy(rg: string): boolean;
  recoverSite(lost: string, plan: boolean, why: string, only?: string[]): Promise<{ refused: { rg: string; code: string; message: string }[] }>;
  learnLeases(remote: Lease[]): Promise<void>;
  /** This controller's leases are current: compared with the peer's, or the peer is declared lost. */
  leasesConfirmed(how: 'peer' | 'peer-lost'): void;
}

export class SiteWatch {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private peerSeenAt: number | null = null;
  private arraysSeenAt: number | null = null;
  private declaredLost = false;
  private failbackAskedAt = new Map<string, number>();
  private ticking = false;

  constructor(private readonly c: WatchedController) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), TICK_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  view(): Record<string, unknown> {
    const silent = (t: number | null) => Date.now() - (t ?? this.startedAt);
    return { reachable: this.peerSeenAt !== null && silent(this.peerSeenAt) < 2 * TICK_MS + 1500, peerSilentMs: silent(this.peerSeenAt), arraysSilentMs: silent(this.arraysSeenAt), declaredLost: this.declaredLost };
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.once();
    } catch (e) {
      this.c.events.emit('automation.watch-error', { message: (e as Error).message });
    } finally {
      this.ticking = false;
    }
  }

  private async once(): Promise<void> {
    const [leases, arrays] = await Promise.all([this.c.peer.leases(), this.peerArraysAnswer()]);
    const now = Date.now();
    if (arrays) this.arraysSeenAt = now;
    if (leases.ok) {
      this.peerSeenAt = now;
      if (this.declaredLost) {
        this.declaredLost = false;
        this.c.events.emit('automation.site-rejoined', { site: this.c.peer.site });
      }
      await this.c.learnLeases(leases.body.leases);
      this.c.leasesConfirmed('peer');
      await this.failbacks();
      return;
    }
    const d = siteLossDecision({ peerSilentMs: now - (this.peerSeenAt ?? this.startedAt), arraysSilentMs: now - (this.arraysSeenAt ?? this.startedAt), declareLostAfterMs: this.c.cfg.declareLostAfterMs, alreadyDeclared: this.declaredLost });
    if (!d.declare) return;
    this.declaredLost = true;
    this.c.leasesConfirmed('peer-lost');
    const automatic = this.c.cfg.resourceGroups.filter((g) => g.failover === 'automatic').map((g) => g.name);
    this.c.events.emit('automation.site-declared-lost', { site: this.c.peer.site, reason: d.reason, detail: d.detail, automatic });
    if (automatic.length) await this.c.recoverSite(this.c.peer.site, false, 'site-declared-lost', automatic);
  }

  /** Does any array of the other site answer? */
  private async peerArraysAnswer(): Promise<boolean> {
    const lab = await labState(this.c.cfg.lab);
    const names = lab.sites?.find((s) => s.name === this.c.peer.site)?.arrays ?? [];
    const answers = await Promise.all(
      names.map(async (n) => {
        const cl = arrayClient(lab, n, { deadlineMs: ARRAY_DEADLINE_MS });
        if (!(cl instanceof ApiClient)) return false;
        return cl.status().then(
          () => true,
          () => false,
        );
      }),
    );
    return answers.some(Boolean);
  }

  /**
   * Groups recovered here (the lease taken by force), once the lost site answers again: a set in
   * split brain is resolved for this side (the returning side's divergent writes were never seen
   * by the recovered application), and by the failback policy the group moves back to the
   * preferred site once every set is in sync. A group an operator moved here stays.
   */
  private async failbacks(): Promise<void> {
    for (const g of this.c.cfg.resourceGroups) {
      const lease = this.c.store.lease(g.name);
      if (lease.holder !== this.c.site || !lease.forced || this.c.isBusy(g.name)) continue;
      const lab = await labState(this.c.cfg.lab);
      const readings = await Promise.all(g.volumeSets.map((s) => readVolumeSet(lab, volumeSet(lab, s))));
      for (const r of readings.filter((x) => x.reason === 'split-brain' && x.productionSite === this.c.site)) {
        const resolved = await resolveForRecoveredSide(lab, volumeSet(lab, r.set), this.c.site);
        this.c.events.emit('automation.split-brain-resolved', { rg: g.name, set: r.set, survivor: this.c.site, mirrors: resolved, discardedBytes: resolved.reduce((n, m) => n + m.discardedBytes, 0) });
      }
      if (g.failback !== 'automatic' || g.preferredSite !== this.c.peer.site) continue;
      if (Date.now() - (this.failbackAskedAt.get(g.name) ?? 0) < FAILBACK_RETRY_MS) continue;
      if (!readings.every((r) => r.productionSite === this.c.site && (r.condition === 'duplex' || r.condition === 'journaling'))) continue;
      this.failbackAskedAt.set(g.name, Date.now());
      const a = await this.c.peer.request('move', g.name);
      this.c.events.emit('automation.failback-requested', { rg: g.name, to: this.c.peer.site, accepted: a.ok, ...(a.ok ? { operation: a.body.operation.id } : { code: a.code, message: a.message }) });
    }
  }
}
