/**
 * Disk faults: a LUN's fault as data with its validation and pure decision (./spec.ts), the live
 * state per LUN and process with its seeded draws and counters (./state.ts), the volatile disk of
 * the lose-unflushed mode with its in-memory overlay (./volatile.ts, ./overlay.ts), and the
 * BlockDevice layer that applies it directly over the image (./layer.ts; placed by src/stack).
 */
export * from './spec.js';
export { DiskFaultState, DiskFaultTable, seededRandom, sumCounters, totalOf, type DiskFaultCounters, type DiskFaultView, type OpCounts } from './state.js';
export { VolatileDisk, type UnflushedCounters } from './volatile.js';
export { DiskFaultLayer } from './layer.js';
