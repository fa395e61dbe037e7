/** The parsed lab file: what `sanbox up` starts and creates, in the API's units. */
import type { SnapshotDefaults } from '../../snapshot/index.js';
import type { LunSpec } from '../../control/service.js';
import type { SpsConfig } from '../../array/chassis/index.js';
import type { GroupAttributes } from '../../replication/group/index.js';
import type { NbdTlsConfig } from '../../nbd/index.js';
import type { AutomationSpec } from '../../automation/rg/types.js';
import { CliError, EXIT } from '../common.js';

export interface LabArray {
  name: string;
  dir: string;
  /** `tls`: NBD over TLS (mode and credential files, absolute). */
  /** `memory`: the NBD memory budget in bytes, per NBD server process (each SP has its own). */
  nbd: { bind: string; port: number; ports?: [number, number]; tls?: NbdTlsConfig; memory?: number };
  api: { bind: string; port: number; token?: string };
  readOnly: boolean;
  luns: LunSpec[];
  /** Two SP processes (present when the lab file has an `sps` key). */
  sps?: SpsConfig;
  /** Set when the array runs on another host: `sanbox up` here does not start it. */
  host?: string;
  /** The array's remote-link port (where links deliver) and the address peers use to reach it. */
  remoteLink?: { bind: string; port: number; address: { host: string; port: number } };
  /** Shared remote-link secret of an array on another host, for the direct connection to it (no link in this lab). */
  secret?: string;
  /** Snapshot store defaults of the array's LUNs (`snapshots:`). */
  snapshots?: SnapshotDefaults;
}

export type LinkDirection = 'a-to-b' | 'b-to-a';
export interface LabLinkSettings {
  latencyMs: number;
  jitterMs: number;
  bandwidth: number;
}

/** A remote link between arrays a and b, carried by a link emulator. */
export interface LabLink {
  name: string;
  a: string;
  b: string;
  /** Listeners: array a dials `toB` to reach b, array b dials `toA` to reach a. */
  listen: { bind: string; toB: number; toA: number };
  /** Where the emulator forwards: each array's remote-link address. */
  targets: { a: { host: string; port: number }; b: { host: string; port: number } };
  api: { bind: string; port: number; token?: string };
  settings: Record<LinkDirection, LabLinkSettings>;
  cut: 'none' | 'a-to-b' | 'b-to-a' | 'both';
  queueBytes: number;
  cutResetMs: number;
  /** Poll the clock for the last fraction of each delay (delays to a few µs, up to a core of CPU while busy). */
  precise: boolean;
  /** Shared secret of the remote-link handshake between a and b (required when a mirror uses the link). */
  secret?: string;
}

/** `ARRAY:LUN` in a lab file: the LUN by name, or by id when it is all digits and no LUN has that name. */
export interface LabLunRef {
  array: string;
  lun: string | number;
}

export interface LabSecondary extends LabLunRef {
  /** Declared identical already: no initial copy. */
  synchronized: boolean;
  recoveryPolicy?: 'auto' | 'manual';
  syncRate?: number;
}

/** A mirror `sanbox up` creates on the primary array when it does not exist. */
export interface LabMirror {
  name: string;
  primary: LabLunRef;
  secondaries: LabSecondary[];
  writePolicy: 'synchronous';
  regionSize?: number;
  syncRate?: number;
  activationPolicy?: 'automatic' | 'manual';
  minImagesRequired?: number;
  maxMissingImages?: number;
  allowSecondaryReads?: boolean;
  syncPriority?: 'low' | 'medium' | 'high';
  /** snapshot a secondary's last consistent point before a resync rewrites it (the driver's default: true) */
  protectResync?: boolean;
}

/** A consistency group `sanbox up` creates on its members' primary array when it does not exist. */
export interface LabGroup {
  name: string;
  /** mirror names (of the lab's mirrors:) */
  members: string[];
  /** the members' primary array, and their secondary arrays (sorted) */
  primary: string;
  secondaries: string[];
  /** what the lab file sets, in the API's units (the rest: the driver's defaults) */
  attributes: Partial<GroupAttributes>;
}

/** A site: arrays that fail together (`sanbox fault site-fail`). An array in no `sites:` entry is its own site. */
export interface LabSite {
  name: string;
  arrays: string[];
  /** False for the implicit site of an array in no `sites:` entry. */
  declared: boolean;
}

/** The lab file's `restart:`: never (default: wait for the operator) or on-failure. */
export interface RestartPolicy {
  mode: 'never' | 'on-failure';
  /** Delay before each automatic restart. */
  backoffMs: number;
  /** Automatic restarts allowed per array (since lab start or the last operator restart). */
  limit: number;
}

export interface Lab {
  name: string;
  file: string;
  arrays: LabArray[];
  links: LabLink[];
  mirrors: LabMirror[];
  groups: LabGroup[];
  /** Every site: the declared ones, then one per array in none (named after the array). */
  sites: LabSite[];
  restart: RestartPolicy;
  /** `monitor:`: the pair resync monitor `up` starts (./monitor.ts) */
  monitor?: LabMonitor;
  /** `dashboard:`: where `up` serves the web dashboard (./dashboard.ts); false: `off`. Absent: the default (loopback, any port). */
  dashboard?: LabDashboard | false;
  /** `heartbeat:`: the heartbeat agents `up` starts (./heartbeat.ts, docs/heartbeat.md). */
  heartbeat?: LabHeartbeat;
  /** `automation:`: resource groups and the per-site controllers `up` starts (./automation.ts, docs/automation.md). */
  automation?: AutomationSpec;
}

/** `heartbeat:` of a lab file (./heartbeat.ts). */
export interface LabHeartbeat {
  cluster: string;
  /** the cluster's instance (epoch): a heartbeat of another instance is invalid */
  instance: number;
  /** site names */
  production: string;
  standby: string;
  intervalMs: number;
  /** a path without a valid heartbeat for timeoutIntervals x intervalMs is FAILED */
  timeoutIntervals: number;
  /** consecutive valid heartbeats before a FAILED path is ENABLE again */
  recoverAfter: number;
  /** the agents, in master-preference order per site */
  hosts: { name: string; site: string; bind: string; port: number }[];
  /** the agents' own link emulator between the two sites */
  network: { latencyMs: number; jitterMs: number; api: { bind: string; port: number } };
  /** heartbeat mirrors production -> standby, and standby -> production */
  mirrors: string[];
  reverseMirrors: string[];
  witness?: { bind: string; port: number; latencyMs: number };
  /** promoted at the standby site when the production site is declared dead */
  failover: { mirrors: string[]; groups: string[]; automatic: boolean };
  /** a production master that lost every path and the witness fences the failover volumes */
  fence: boolean;
  /** a shell command per failure-notice level (the source's "phone the system manager") */
  actions: Partial<Record<'SYSTEM DOWN' | 'SERIOUS' | 'MODERATE' | 'TEMPORALLY', string>>;
}

/** `dashboard:` of a lab file (./dashboard.ts). */
export interface LabDashboard {
  bind: string;
  /** 0: any free port */
  port: number;
  /** required off loopback */
  token?: string;
}

/** A resource of `monitor:` (./monitor.ts). */
export interface LabMonitorResource {
  appName: string;
  deviceGroup: string;
  /** the array to ask (a name of this lab) */
  array: string;
  intervalSeconds: number;
  autorecover: boolean;
  resyncAdminFractures: boolean;
}

export interface LabMonitor {
  resources: LabMonitorResource[];
}

export class LabError extends CliError {
  constructor(
    file: string,
    readonly problems: string[],
  ) {
    super(EXIT.USAGE, 'invalid-lab', `invalid lab file ${file}:\n  - ${problems.join('\n  - ')}`);
  }
}

/** A YAML mapping, before it is checked. */
export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** What every section parser shares: the problem list, the unknown-key check, the port registry. */
export interface ParseContext {
  file: string;
  problems: string[];
  known(o: Obj, where: string, keys: string[]): void;
  usePort(port: number, what: string): void;
}
