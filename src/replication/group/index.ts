/**
 * Consistency groups (issue 6): the asynchronous and near-synchronous modes.
 *
 * - types.ts: GroupRecord (mode, near-synchronous bounds, writelog, throttles, performance
 *   records), GroupMetrics.
 * - record.ts: validation, defaults, GroupError.
 * - primary-group.ts: PrimaryGroup (the writelog of a group on its primary array: journal ∥ local
 *   write, stable watermark, near-synchronous admission, replay after a crash) and GroupSender
 *   (one per secondary array: hello, ordered batches, batched acks, reconnect).
 * - receiver.ts: GroupReceiver (one per group on a secondary array: in-order, exactly-once apply
 *   with a durable next expected sequence).
 * - seq-file.ts: the receiver's durable sequence number.
 * The mirror driver (src/replication/mirror) owns the groups: it routes member writes here and
 * handles bypass, mode changes and promote.
 */
export * from './types.js';
export * from './record.js';
export { PrimaryGroup, GroupSender, GroupOverflow, newWindow, type MetricsWindow, type PrimaryMember, type SenderRoute } from './primary-group.js';
export * from './throttle.js';
export * from './perf.js';
export { GroupReceiver, type ReceiverMember } from './receiver.js';
export { SeqFile } from './seq-file.js';
