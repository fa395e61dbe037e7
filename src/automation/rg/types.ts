/**
 * Resource groups and their policies (seed 001): what the lab file's `automation:` describes and
 * what the per-site controllers act on. Pure data; parsed and checked in src/cli/lab/automation.ts.
 */

/** A dependent host resource: a command triple run by the controller of the site where its group is online. */
export interface HostResourceSpec {
  name: string;
  /** shell command; exit 0 = started (it may leave a process running in the background) */
  start: string;
  /** shell command; exit 0 = stopped */
  stop: string;
  /** shell command; exit 0 = running, anything else = not running */
  monitor: string;
  /** resources of the same group that must be running before this one starts (and stop after it) */
  after: string[];
  /** start (or stop) plus the monitor agreeing must finish within this */
  startTimeoutMs: number;
  stopTimeoutMs: number;
}

export type FailoverPolicy = 'automatic' | 'manual';

/** A resource group: volume sets plus the host resources that run on them, and its policy. */
export interface ResourceGroupSpec {
  name: string;
  /** consistency groups or mirrors in no group of the lab (src/automation/client.ts, labVolumeSets) */
  volumeSets: string[];
  /** where `online` without --site brings it, and where an automatic failback returns it */
  preferredSite: string;
  /** automatic: the surviving site's controller recovers the group when the other site is declared lost */
  failover: FailoverPolicy;
  /** automatic: once the lost site is back and the sets are in sync again, the group moves back to the preferred site */
  failback: FailoverPolicy;
  /** may a recovery promote a secondary that is not a point in time from its resync-protection snapshot (--from-snapshot) */
  usePitCopy: boolean;
  /** how long a storage step may wait for its goal (a resync, a drain) before the operation fails */
  storageTimeoutMs: number;
  resources: HostResourceSpec[];
}

/** One controller: the site it acts for and where its API listens. */
export interface ControllerSpec {
  site: string;
  bind: string;
  /** 0: any free port */
  port: number;
}

/** `automation:` of a lab file. */
export interface AutomationSpec {
  /** shared secret: the controllers authenticate each other, and the CLI them, with it (bearer; at least 16 characters) */
  secret: string;
  /** a site whose controller and arrays have all been silent this long is declared lost (automatic failover) */
  declareLostAfterMs: number;
  /** exactly two: one per site */
  controllers: ControllerSpec[];
  resourceGroups: ResourceGroupSpec[];
}
