/**
 * State files of running labs: `<images>/.labs/<lab>.json` (mode 0600), written by the
 * supervisor, read by every client verb to find the lab's arrays and links.
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labsDir, pidAlive } from '../common.js';
import type { LinkDirection } from './types.js';

/** The supervisor's view of an array (see src/cli/supervisor/supervision.ts). */
export type ArrayRunState = 'starting' | 'running' | 'crashed' | 'restarting' | 'stopping' | 'stopped';

export interface LabStateArray {
  name: string;
  /** The array's (chassis's) pid; of its last run once it crashed. */
  pid: number;
  /** Absent in state files of older supervisors: running. */
  state?: ArrayRunState;
  /** Crashed on purpose (fault array-crash / site-fail): no automatic restart. */
  held?: boolean;
  /** How its last run ended, once it crashed. */
  lastExit?: { code: number | null; signal: string | null; at: string };
  /** Automatic restarts since lab start or the last operator restart. */
  autoRestarts?: number;
  /** The site the array belongs to. */
  site?: string;
  dir: string;
  /** `tls`: the NBD ports offer (on) or require TLS: URIs are nbds://. */
  nbd: { host: string; port: number; tls?: 'on' | 'require' };
  api: { url: string; token?: string };
  /** Two-SP arrays: each SP's NBD endpoint. */
  sps?: { name: string; host: string; port: number }[];
}

/** A running link emulator of a lab (in the supervisor process). */
export interface LabStateLink {
  name: string;
  a: string;
  b: string;
  api: { url: string; token?: string };
  routes: { name: string; listen: { host: string; port: number }; target: { host: string; port: number }; forward: LinkDirection }[];
}

/** A mirror of the lab file, as `sanbox up` left it. */
export interface LabStateMirror {
  name: string;
  /** `alpha:disk0` */
  primary: string;
  secondaries: string[];
  /** created now; existed already; not ours to create (primary on another host); could not be created */
  status: 'created' | 'exists' | 'skipped' | 'failed';
  detail?: string;
  /** Differences between the lab file and the mirror, secondaries that could not be added. */
  warnings: string[];
  /** Right after `up`: each secondary's state and synchronization progress. */
  progress?: string[];
}

/** A consistency group of the lab file, as `sanbox up` left it. */
export interface LabStateGroup {
  name: string;
  /** the members' primary array */
  primary: string;
  members: string[];
  secondaries: string[];
  mode: string;
  /** created now; existed already; not ours to create (primary on another host); could not be created */
  status: 'created' | 'exists' | 'skipped' | 'failed';
  detail?: string;
  /** Differences between the lab file and the group on the array. */
  warnings: string[];
}

export interface LabState {
  lab: string;
  file: string;
  supervisorPid: number;
  startedAt: string;
  state: 'starting' | 'running' | 'stopping';
  /** Log file of a detached lab. */
  log?: string;
  /** The supervisor's control API (fault array-crash, array-restart, site-fail, site-restore). */
  control?: { url: string; token: string };
  /** The supervisor's event stream: JSON lines, one event each (`<images>/.labs/<lab>.events.jsonl`). */
  events?: string;
  /** Sites: declared ones and one per array in none. */
  sites?: { name: string; arrays: string[]; failed?: boolean }[];
  /** The restart policy of the lab file. */
  restart?: { mode: 'never' | 'on-failure'; backoffMs: number; limit: number };
  arrays: LabStateArray[];
  /** Link emulators (run by the supervisor). */
  links?: LabStateLink[];
  /** The lab file's mirrors as `sanbox up` found or created them. */
  mirrors?: LabStateMirror[];
  /** The lab file's consistency groups as `sanbox up` found or created them. */
  groups?: LabStateGroup[];
  /** The pair resync monitor `sanbox up` started for the lab's `monitor:` (src/cli/monitor). */
  monitor?: { stateDir: string; pid: number; socket: string; http?: string; resources: number };
  /** The lab's web dashboard (src/dashboard), unless the lab file says `dashboard: off`. */
  dashboard?: { url: string; token?: string };
  /** The heartbeat agents, witness and links `sanbox up` started for the lab's `heartbeat:` (src/cli/heartbeat). */
  heartbeat?: LabStateHeartbeat;
  /** The site automation controllers `sanbox up` started for the lab's `automation:` (src/cli/automation/lab.ts). */
  automation?: LabStateAutomation;
}

export interface LabStateAutomation {
  /** the controllers' configurations, step logs, logs and host resources' files */
  dir: string;
  /** the bearer token of the controllers' APIs (the lab file's automation secret) */
  token: string;
  controllers: { site: string; url: string; pid: number; config: string }[];
}

export interface LabStateHeartbeat {
  /** the agents' configurations, logs and status tables */
  dir: string;
  hosts: { name: string; site: string; pid: number; url: string; config: string }[];
  witness?: { url: string };
  /** link emulators: hb-net and hb-witness-SITE (sanbox link cut hb-net) */
  links: string[];
}

export function statePath(lab: string): string {
  return join(labsDir(), `${lab}.json`);
}

/** The supervisor's event stream of a lab (JSON lines; kept after the lab stops, replaced at the next up). */
export function eventsPath(lab: string): string {
  return join(labsDir(), `${lab}.events.jsonl`);
}

export async function writeState(state: LabState): Promise<void> {
  await mkdir(labsDir(), { recursive: true });
  const path = statePath(state.lab);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, path);
}

export async function readState(lab: string): Promise<LabState | undefined> {
  try {
    return JSON.parse(await readFile(statePath(lab), 'utf8')) as LabState;
  } catch {
    // No state file, or one being replaced: the lab is not running (writeState renames atomically).
    return undefined;
  }
}

export async function removeState(lab: string, onlyIfPid?: number): Promise<void> {
  if (onlyIfPid !== undefined) {
    const s = await readState(lab);
    if (s && s.supervisorPid !== onlyIfPid) return;
  }
  await rm(statePath(lab), { force: true });
}

/** Whether any process of the lab is alive. */
export function labAlive(s: LabState): boolean {
  return pidAlive(s.supervisorPid) || s.arrays.some((a) => pidAlive(a.pid));
}

/** State files of labs with a live process (stale files of dead labs are ignored). */
export async function runningLabs(): Promise<LabState[]> {
  let files: string[] = [];
  try {
    files = (await readdir(labsDir())).filter((f) => f.endsWith('.json'));
  } catch {
    return []; // no labs directory yet: no lab has ever run
  }
  const out: LabState[] = [];
  for (const f of files) {
    const s = await readState(f.slice(0, -5));
    if (s && labAlive(s)) out.push(s);
  }
  return out.sort((a, b) => a.lab.localeCompare(b.lab));
}
