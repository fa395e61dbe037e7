/**
 * Point-in-time copies of LUNs: copy-on-write snapshots with shared saved regions
 * (./set.ts, ./slots.ts), the layer every change of a LUN crosses (./layer.ts), a snapshot as
 * a read-only block device (./view.ts), and the array's snapshot verbs (./manager.ts).
 */
export { SnapshotManager } from './manager.js';
export { SnapshotLayer } from './layer.js';
export { SnapshotSet } from './set.js';
export { SnapshotDevice } from './view.js';
export { WriteGate } from './gate.js';
export { SlotStore, encodeSlotRecord, decodeSlotRecord, SLOT_RECORD_BYTES, type SavedRegion } from './slots.js';
export * from './types.js';
