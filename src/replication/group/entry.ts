/**
 * One group as the manager holds it (GroupEntry), and what the manager's parts (./bypass.ts,
 * ./primary-side.ts, ./role.ts, ./copy.ts, ./receive.ts, ./admin.ts) use of it (GroupContext).
 */
import { MetadataStore } from '../../metadata/index.js';
import type { GroupView } from './control.js';
import type { GroupHost } from './host.js';
import { assertGroup } from './invariants.js';
import type { PerfRecorder } from './perf.js';
import type { MetricsWindow, PrimaryGroup } from './primary-group.js';
import type { PromotionReport } from './promotion.js';
import type { GroupReceiver } from './receiver.js';
import { SerialQueue } from '../../serial/index.js';
import { initialGroupState, type GroupEvent, type GroupOp, type GroupState } from './state.js';
import type { ThrottleEngine, ThrottleState } from './throttle.js';
import type { GroupMetrics, GroupRecord } from './types.js';

/** A refresh in progress (copy phase `refresh`): the loop stops when `stop` is set. */
export interface RefreshJob {
  stop: boolean;
  done: Promise<void>;
  /** the chunk being read: a host write overlapping it makes the loop read it again */
  window: { index: number; offset: number; length: number; touched: boolean } | null;
}

export interface GroupEntry {
  record: GroupRecord;
  /** the phases (./state.ts): changed only through GroupContext.apply */
  state: GroupState;
  dir: string;
  store: MetadataStore<GroupRecord>;
  primary: PrimaryGroup | null;
  receiver: GroupReceiver | null;
  /** record changes and role changes, one at a time */
  serial: SerialQueue;
  // Handles of the work in progress, present exactly while the phase that names them lasts.
  /** modeChange `switching`: new host writes wait for it */
  switched: Promise<void> | null;
  /** bypass `entering` or `resyncing`: whoever enters bypass meanwhile waits for this one */
  bypassEntry: Promise<void> | null;
  /** copy `refresh` */
  refreshJob: RefreshJob | null;
  timers: NodeJS.Timeout[];
  lastMetrics: GroupMetrics | null;
  /** primary side: throttles, performance records */
  throttle: { engine: ThrottleEngine; state: ThrottleState; win: MetricsWindow } | null;
  perf: { recorder: PerfRecorder; win: MetricsWindow } | null;
  /** what the last promote on this array said of the copy; in memory only (a restart forgets it) */
  promotion: PromotionReport | null;
}

/** A new entry for a record read from disk or received; its state is what the record says. */
export function newEntry(record: GroupRecord, dir: string, store: MetadataStore<GroupRecord>): GroupEntry {
  const state = initialGroupState(record);
  assertGroup(record, state);
  return { record, state, dir, store, primary: null, receiver: null, serial: new SerialQueue(), switched: null, bypassEntry: null, refreshJob: null, timers: [], lastMetrics: null, throttle: null, perf: null, promotion: null };
}

export function openStore(dir: string, host: Pick<GroupHost, 'sync'>): MetadataStore<GroupRecord> {
  return new MetadataStore<GroupRecord>(dir, { basename: 'db', noSync: !host.sync });
}

/** What the parts of the group manager use of it (GroupManager implements it). */
export interface GroupContext {
  readonly host: GroupHost;
  readonly groups: Map<string, GroupEntry>;
  /** `<array dir>/groups` */
  readonly dirRoot: string;
  /** Publishes `group.<type>` with the details. */
  event(type: string, details: Record<string, unknown>): void;
  /** Publishes what applyGroupOp returned, the group id first. */
  publish(g: GroupEntry, events: GroupEvent[]): void;
  /** Applies the ops (./state.ts) to the entry's state, asserts the invariants; returns the events to publish. */
  apply(g: GroupEntry, ...ops: GroupOp[]): GroupEvent[];
  /** Runs `fn` in the group's one-at-a-time section. */
  exclusive<T>(g: GroupEntry, fn: () => Promise<T>): Promise<T>;
  /** Saves a changed record (generation and epoch set), pushes it, applies `op` when saved; returns its events. */
  save(g: GroupEntry, change: (r: GroupRecord) => void, op?: GroupOp): Promise<GroupEvent[]>;
  /** Sends the record to every secondary array (each sender's link). */
  push(g: GroupEntry): Promise<void>;
  epochOf(r: GroupRecord): number;
  find(ref: string): GroupEntry;
  groupOf(mirrorId: string): GroupEntry | undefined;
  needPrimary(g: GroupEntry, what: string): PrimaryGroup;
  view(g: GroupEntry): GroupView;
}
