/**
 * The pair resync monitor's vocabulary (seed 000): resources, their pair states, and the resource
 * database's entries. A resource is a mirror or a consistency group of one array ("instance"),
 * named by an application name and a device group (the mirror's or group's name).
 */

/**
 * The seed's five reportable pair states ([0007]); `unknown` until the first poll answers.
 * HORCM's names: connected PAIR, resync COPY, suspended PSUS, error-suspended PSUE, deleted SMPL.
 */
export type PairState = 'connected' | 'resync' | 'suspended' | 'error-suspended' | 'deleted' | 'unknown';
export const PAIR_STATES: readonly PairState[] = ['connected', 'resync', 'suspended', 'error-suspended', 'deleted', 'unknown'];
export const SOURCE_NAMES: Readonly<Record<PairState, string>> = {
  connected: 'PAIR',
  resync: 'COPY',
  suspended: 'PSUS',
  'error-suspended': 'PSUE',
  deleted: 'SMPL',
  unknown: '-',
};

/** What one poll of the array saw (./pair-state.ts classifies a mirror's or group's view into this). */
export interface PairReading {
  kind: 'mirror' | 'group';
  pair: PairState;
  /** a stable reason, e.g. 'in-sync', 'fractured-link', 'split-brain', 'paused' */
  reason: string;
  /** one line for a person: sanbox's own state */
  detail: string;
  /** this array's role for the mirror or group (null: deleted) */
  role: 'primary' | 'secondary' | null;
  /** the mirror's epoch (a group: the highest of its members'); changes on promote */
  epoch: number | null;
  /** the primary image's array */
  primaryArray: string | null;
  /** primary volume status (the seed's iPVol_) and secondary volume status (iSVol_), as text */
  pvol: string;
  svol: string;
  /** every secondary of a suspended pair can be reached over the remote link again */
  linkUp: boolean;
  /** the suspension was the operator's (fracture, pause, bypass on, deactivate) */
  byOperator: boolean;
}

/** The monitor's own lifecycle of a resource's automatic recovery (./recovery-state.ts). */
export type RecoveryPhase = 'watching' | 'resyncing' | 'backoff' | 'held';

export interface HistoryItem {
  time: string;
  /** what happened: 'pair-state', 'resync', 'resync-failed', 'held', 'added', 'changed', ... */
  what: string;
  text: string;
}

/** What `prmd`/`monitor add` give to register a resource. */
export interface ResourceSpec {
  appName: string;
  deviceGroup: string;
  /** a lab array name, or the array API's URL (a token as its password: http://:TOKEN@host:port) */
  instance: string;
  intervalSeconds: number;
  autorecover: boolean;
  /** resynchronize after an operator's fracture or pause too (default false) */
  resyncAdminFractures?: boolean;
}

/** One entry of the resource database (the seed's ObjectItem plus status and history). */
export interface ResourceEntry extends Required<ResourceSpec> {
  /** when the current interval began (tStartTime_), ISO time */
  startTime: string;
  /** added to the database, ISO time */
  addedAt: string;
  pair: PairState;
  reason: string;
  detail: string;
  /** primary and secondary volume status (iPVol_, iSVol_) */
  pvol: string;
  svol: string;
  kind: 'mirror' | 'group' | null;
  phase: RecoveryPhase;
  /** the direction last seen connected: autorecover only resynchronizes this way */
  direction: { primaryArray: string; epoch: number } | null;
  lastPoll: string | null;
  lastError: string | null;
  lastAutoResync: { time: string; seconds: number } | null;
  /** automatic resync failures still inside the failure window, ISO times */
  failures: string[];
  /** earliest time of the next automatic attempt while in backoff */
  retryAt: string | null;
  history: HistoryItem[];
}

/** What `show` answers for an entry: the entry and the seconds left until its next poll (iTimeRemain_). */
export type ResourceView = ResourceEntry & { timeRemaining: number; sourceState: string };

export const HISTORY_LENGTH = 20;
export const MAX_NAME_LENGTH = 64;
export const MAX_INSTANCE_LENGTH = 512;
export const MIN_INTERVAL_SECONDS = 1;
export const MAX_INTERVAL_SECONDS = 86_400;

export const keyOf = (appName: string, deviceGroup: string): string => `${appName}\u0000${deviceGroup}`;
