/**
 * Consistency groups (issue 6, 003_aa2ee289f275629d.txt "logical groups"): LUNs of one array
 * whose writes replicate in one global order. Every member is a mirror (src/replication/mirror)
 * with the same secondary arrays; the group adds the mode, the writelog, one sender per secondary
 * array on the primary and one receiver per group on each secondary.
 */

export type GroupMode = 'synchronous' | 'asynchronous' | 'near-synchronous';

/**
 * The armed freeze of a synchronous group (docs/group.md, "Freeze"): `armed`, the moment one
 * member stops replicating to a secondary array (a remote write, zero, trim or flush failed, or
 * its link dropped), every member stops sending host writes to that array, before the failing
 * write is acknowledged. Accepted in every mode; it acts in synchronous mode only (the journal
 * keeps the asynchronous modes in order).
 */
export type GroupFreeze = 'armed' | 'off';
export const GROUP_FREEZE_VALUES: readonly GroupFreeze[] = ['armed', 'off'];

/** Near-synchronous: host writes wait while the backlog is at the bound, until it is below the low mark. */
export interface NearSyncBounds {
  /** entries (records) in the writelog not yet acknowledged by every secondary; 0: no bound */
  maxEntries: number;
  /** bytes of those records; 0: no bound */
  maxBytes: number;
  /** resume below these (default: half the bounds) */
  lowEntries: number;
  lowBytes: number;
}

export interface WritelogConfig {
  /** bytes of the main writelog segment */
  capacity: number;
  /** extension pool: spare segments chained in before overflow (0..128) */
  extensions: number;
  extensionCapacity: number;
  /** chain an extension in at this usage percent */
  extendAtPercent: number;
}

/** One throttle of the source document: window, test, actions (evaluated every `throttleEveryMs`). */
export interface ThrottleSpec {
  /** 'HH:MM:SS' local time; both or neither */
  from?: string;
  to?: string;
  /** the measurement tested */
  measure: 'netkbps' | 'pctcpu' | 'pctwl';
  /** relational: lt le eq ne ge gt; transitional: the value was crossed since the last evaluation */
  op: 'lt' | 'le' | 'eq' | 'ne' | 'ge' | 'gt' | 'rises-above' | 'falls-below';
  value: number;
  /** up to sixteen */
  actions: ThrottleAction[];
}

export type ThrottleAction =
  | { do: 'sleep-set' | 'sleep-incr' | 'sleep-decr'; ms: number }
  | { do: 'delay-set' | 'delay-incr' | 'delay-decr'; ms: number }
  | { do: 'extension-chain' | 'extension-release' }
  | { do: 'log'; message: string }
  | { do: 'event'; message: string }
  | { do: 'command'; command: string };

export interface GroupAttributes {
  mode: GroupMode;
  nearSync: NearSyncBounds;
  writelog: WritelogConfig;
  throttles: ThrottleSpec[];
  throttleEveryMs: number;
  /** performance record interval and file size limit (one previous generation kept) */
  perfEveryMs: number;
  perfMaxBytes: number;
  /**
   * Before the members' secondaries are resynchronized (bypass, refresh aside), each secondary
   * array keeps their last consistent point in one snapshot of all of them (dropped once the
   * group journals again). Records from before it was added read as true.
   */
  protectResync: boolean;
  /** Records from before it was added read as `off`. */
  freeze: GroupFreeze;
}

export interface GroupRecord extends GroupAttributes {
  format: 'sanbox.group';
  version: 1;
  groupId: string;
  name: string;
  /** member mirror ids; a member's index here is its LUN number in the writelog records */
  members: string[];
  /** the highest epoch of the member mirrors when the record was written: a promoted side's record wins */
  epoch: number;
  generation: number;
  /** the sender is paused by the operator */
  paused: boolean;
  /** bypass: journaling stopped, changes go to the fracture logs (overflow, or the operator) */
  bypass: { on: boolean; reason: 'overflow' | 'operator' | null; since: string | null };
  /** the secondaries are incoherent while a refresh copies every allocated region */
  refresh: { running: boolean; bytesDone: number; bytesTotal: number } | null;
  /** the last record of a deleted group (the secondaries drop theirs) */
  deleted?: boolean;
}

export const GROUP_FORMAT = 'sanbox.group';

export const DEFAULT_GROUP_ATTRIBUTES: GroupAttributes = {
  mode: 'asynchronous',
  nearSync: { maxEntries: 0, maxBytes: 64 * 1024 * 1024, lowEntries: 0, lowBytes: 32 * 1024 * 1024 },
  writelog: { capacity: 256 * 1024 * 1024, extensions: 0, extensionCapacity: 64 * 1024 * 1024, extendAtPercent: 90 },
  throttles: [],
  throttleEveryMs: 10_000,
  perfEveryMs: 10_000,
  perfMaxBytes: 1024 * 1024,
  protectResync: true,
  freeze: 'off',
};

/** The measurements of a group at one moment (qdsinfo, performance records, throttles). */
export interface GroupMetrics {
  time: string;
  /** KB/s sent over the link for the group (records and protocol), over the last interval */
  netkbps: number;
  /** KB/s of record data sent */
  dataKbps: number;
  /** records sent per second */
  entriesPerSec: number;
  /** records in the writelog not yet acknowledged */
  entriesWaiting: number;
  writelogBytes: number;
  /** percent of the writelog (chain) in use */
  pctwl: number;
  /** CPU used by this process over the interval, percent of one core */
  pctcpu: number;
  oldestEntryAgeMs: number;
  /** sequence numbers: next to append, last acknowledged by the secondaries */
  nextSeq: number;
  ackedThrough: number;
  /** near-synchronous: host writes that waited, and for how long in total, since the last record */
  writesDelayed: number;
  delayedMs: number;
  /** throttle-controlled: sender sleep between transmissions, delay before host acks */
  senderSleepMs: number;
  ackDelayMs: number;
}
