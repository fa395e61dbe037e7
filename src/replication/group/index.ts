/**
 * Consistency groups (issue 6): the asynchronous and near-synchronous modes.
 *
 * - types.ts: GroupRecord (mode, near-synchronous bounds, writelog, throttles, performance
 *   records), GroupMetrics.
 * - record.ts: validation, defaults, GroupError.
 * - primary-group.ts: PrimaryGroup (the writelog of a group on its primary array: journal ∥ local
 *   write, stable watermark, near-synchronous admission, replay after a crash).
 * - sender.ts: GroupSender (one per secondary array: hello, ordered batches, batched acks,
 *   reconnect).
 * - receiver.ts: GroupReceiver (one per group on a secondary array: in-order, exactly-once apply
 *   with a durable next expected sequence).
 * - seq-file.ts: the receiver's durable sequence number.
 * - promotion.ts: what a promote reports of the copy's age (the receiver's observations).
 * - pit.ts: point-in-time copies: a snapshot of every member at one write boundary (between two
 *   batches of the receiver on a secondary), and what the members' resync protection needs.
 * - manager.ts: GroupManager, the groups of one array inside the mirror driver (records, state,
 *   routing of member writes), with its parts: admin.ts (verbs), copy.ts (refresh, backfresh),
 *   bypass.ts, primary-side.ts (open/close, timers, throttles), role.ts (primary side or
 *   receiver), receive.ts (the link handlers of a secondary), view.ts (view, qdsinfo).
 * - state.ts: the group state table and the pure `applyGroupOp`; invariants.ts: the checks
 *   after every apply, save and load.
 * - host.ts: GroupHost, what the groups need of the mirror driver (MirrorNode implements it);
 *   control.ts: GroupControl and GroupView, what the API calls.
 * The mirror driver (src/replication/mirror) hosts the GroupManager and routes member writes
 * to it; this module never imports the driver.
 */
export * from './types.js';
export * from './record.js';
export { PrimaryGroup, GroupOverflow, newWindow, type MetricsWindow, type PrimaryMember } from './primary-group.js';
export { GroupSender, type SenderGroup, type SenderRoute } from './sender.js';
export * from './throttle.js';
export * from './perf.js';
export { GroupReceiver, type ReceiverMember, type ReceiverObservations } from './receiver.js';
export { promotionReport, type PromotionFacts, type PromotionReport } from './promotion.js';
export { SeqFile } from './seq-file.js';
export { GroupManager } from './manager.js';
export { refreshWaits } from './view.js';
export type { MemberGroup } from './pit.js';
export type { GroupHost, MemberInfo, GroupReconnectTimers, SnapshotPort, MemberProtection, GroupFallback, Range } from './host.js';
export type { GroupControl, GroupView, SettableGroupAttributes, GroupSnapshotResult, GroupPerfRecords } from './control.js';
export * from './state.js';
export { assertGroup, assertGroupRecord, assertGroupState, GroupInvariantError } from './invariants.js';
