/** What the management API and `sanbox group` call (GroupManager implements it; MirrorNode.groups). */
import type { GroupFallback } from './host.js';
import type { PromotionReport } from './promotion.js';
import type { GroupAttributes, GroupMetrics, GroupMode, GroupRecord, ThrottleSpec } from './types.js';

export interface GroupView {
  record: GroupRecord;
  role: 'primary' | 'secondary';
  members: Array<{ mirrorId: string; name: string; lun: number; secondaries: string[] }>;
  senders: Array<{ array: string; state: string; ackedThrough: number; lastError?: string }>;
  receiver: { nextExpected: number; applied: number; batches: number } | null;
  metrics: GroupMetrics | null;
  /** the secondaries are not a usable point-in-time copy right now, and why */
  incoherent: string | null;
  /**
   * Set by a promote on this array, while its process lives (not persisted): how old the copy
   * was, as the receiver saw it (./promotion.ts); null otherwise.
   */
  promotion?: PromotionReport | null;
  /**
   * Resync protection (a secondary array: the members' fallback while a resync rewrites them).
   * `fallback`: the snapshot holding their last consistent point and how old it is, or null.
   */
  protection?: { enabled: boolean; fallback: GroupFallback | null; resyncBegun: string[] } | null;
  /**
   * The primary's writelog chain now: `capacity` is the main segment plus the extensions chained
   * in (what `metrics.pctwl` is a percentage of). Null on a secondary; absent from an older array.
   */
  writelog?: { capacity: number; extensionsInUse: number; extensionsFree: number } | null;
  /**
   * The primary: the throttle (index in `record.throttles`, and its test) whose action last
   * raised the sender's sleep (`metrics.senderSleepMs`); null when the sleep is 0 or was set
   * before the throttles last changed. Absent from an older array.
   */
  throttledBy?: ({ throttle: number } & Pick<ThrottleSpec, 'measure' | 'op' | 'value'>) | null;
}

/** A snapshot of every member of a group at one write boundary (`snapshot` of GroupControl). */
export interface GroupSnapshotResult {
  group: string;
  /** the snapshots, one per member LUN (SnapshotView of src/snapshot) */
  snapshots: Array<Record<string, unknown> & { name: string; lun: number; seq: number }>;
  /** how long new writes waited (the gates of all members held), in milliseconds */
  pauseMs: number;
  /** a secondary array: the last journal record applied when it was cut (between two batches); null on the primary */
  groupSeq: number | null;
  role: 'primary' | 'secondary';
}

/** A group's performance records (`perf` of GroupControl): both generations of its file, oldest first. */
export interface GroupPerfRecords {
  group: string;
  groupId: string;
  /** the interval between two records, ms (gaps longer than this: no record was written) */
  perfEveryMs: number;
  /** the records kept are at or after this time (ISO), or all of them (null) */
  since: string | null;
  records: GroupMetrics[];
}

/** The attributes `setAttributes` may change (not the mode: setMode; not the writelog size: fixed at create). */
export type SettableGroupAttributes = Partial<Pick<GroupAttributes, 'throttles' | 'throttleEveryMs' | 'perfEveryMs' | 'perfMaxBytes' | 'nearSync' | 'protectResync' | 'freeze'>>;

export interface GroupControl {
  list(): GroupView[];
  /** by group id or name; GroupError 'not-found' */
  get(ref: string): GroupView;
  /** members: mirror names or ids, all primary on this array, replicating to the same arrays */
  create(p: { name: string; members: string[]; attributes?: Partial<GroupAttributes> }): Promise<GroupView>;
  setMode(ref: string, mode: GroupMode, nearSync?: Partial<GroupRecord['nearSync']>): Promise<GroupView>;
  /** throttles, throttleEveryMs, perfEveryMs, perfMaxBytes, nearSync, protectResync, freeze (not mode, not writelog size) */
  setAttributes(ref: string, p: SettableGroupAttributes): Promise<GroupView>;
  /** pause or resume the sender(s) */
  pause(ref: string, paused: boolean): Promise<GroupView>;
  bypass(ref: string, on: boolean): Promise<GroupView>;
  /** copy every allocated region of the primary to the secondaries through the writelog (long: progress in the view and events) */
  refresh(ref: string): Promise<GroupView>;
  /** copy the secondary's image back to the primary (the primary's members are offline meanwhile) */
  backfresh(ref: string, p?: { from?: string }): Promise<GroupView>;
  /**
   * Run on a secondary array. A member that is not a point in time (a resync was under way) is
   * refused unless `force` (promote it as it is) or `fromSnapshot` (roll every member back to
   * the group's resync-protection snapshot first).
   */
  promote(ref: string, p?: { force?: boolean; fromSnapshot?: boolean }): Promise<GroupView>;
  /** Snapshots every member LUN on this array at one write boundary (a secondary: between two applied batches). */
  snapshot(ref: string, name: string): Promise<GroupSnapshotResult>;
  /** the qdsinfo report: text and the view it was made from */
  info(ref: string): { text: string; view: GroupView };
  /**
   * The performance records (primary side: where they are written; GroupError 'not-primary' on a
   * secondary), those at or after `sinceMs` (ms since the epoch) when given.
   */
  perf(ref: string, opts?: { sinceMs?: number }): Promise<GroupPerfRecords>;
  delete(ref: string): Promise<void>;
}
