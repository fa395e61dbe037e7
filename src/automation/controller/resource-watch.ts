/**
 * The host resources of the groups online at this site, watched: every MONITOR_EVERY_MS each
 * resource's monitor command runs, and a resource that stops running by itself (or comes back)
 * is an event and shows in the status. The controller does not restart it: that is the cluster
 * manager's policy, which an operator applies with rg offline / rg online.
 */
import type { ResourceGroupSpec } from '../rg/types.js';

const MONITOR_EVERY_MS = 5000;

export interface ResourceHealth {
  running: boolean;
  since: string;
}

export interface WatchedResources {
  readonly site: string;
  readonly cfg: { resourceGroups: ResourceGroupSpec[] };
  isBusy(rg: string): boolean;
  /** online here: this site holds the lease and its last operation on the group brought it up */
  onlineHere(rg: string): boolean;
  resources(rg: ResourceGroupSpec): Promise<{ statusAll(): Promise<{ name: string; running: boolean }[]> }>;
  emit(type: string, details: Record<string, unknown>): void;
}

export class ResourceWatch {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly health = new Map<string, Map<string, ResourceHealth>>();

  constructor(private readonly c: WatchedResources) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), MONITOR_EVERY_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The last monitor results of a group's resources (empty when not watched). */
  view(rg: string): Record<string, ResourceHealth> {
    return Object.fromEntries(this.health.get(rg) ?? []);
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const g of this.c.cfg.resourceGroups) await this.check(g);
    } catch (e) {
      this.c.emit('automation.watch-error', { message: (e as Error).message });
    } finally {
      this.running = false;
    }
  }

  private async check(g: ResourceGroupSpec): Promise<void> {
    // an operation changes what should run: its own steps judge it meanwhile
    if (!this.c.onlineHere(g.name) || this.c.isBusy(g.name)) {
      this.health.delete(g.name);
      return;
    }
    const now = await (await this.c.resources(g)).statusAll();
    if (!this.c.onlineHere(g.name) || this.c.isBusy(g.name)) return;
    const before = this.health.get(g.name) ?? new Map<string, ResourceHealth>();
    const after = new Map<string, ResourceHealth>();
    for (const r of now) {
      const was = before.get(r.name);
      after.set(r.name, was && was.running === r.running ? was : { running: r.running, since: new Date().toISOString() });
      if (was?.running === r.running || (!was && r.running)) continue;
      this.c.emit(r.running ? 'automation.resource-recovered' : 'automation.resource-failed', { rg: g.name, resource: r.name, site: this.c.site });
    }
    this.health.set(g.name, after);
  }
}
