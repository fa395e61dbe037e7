/**
 * Clones ("flash copies"): a new LUN that is a full, independent copy of a snapshot or of a live
 * LUN, usable at once. The manager and its verbs (./manager.ts), the records (./records.ts,
 * ./types.ts), one clone while it copies (./copy.ts: read routing, copy-before-write), its
 * copied map (./copied-map.ts), the background copy (./copier.ts) and the layer every stack of
 * a LUN has (./layer.ts).
 */
export { CloneManager, type CloneHost, type CloneLun, type CloneDefaults } from './manager.js';
export type { CloneEntry } from './entry.js';
export { CloneLayer, type CloneLookup } from './layer.js';
export { CloneCopy } from './copy.js';
export { CopiedMap } from './copied-map.js';
export { BackgroundCopier, type CopyProgress } from './copier.js';
export { RegionLocks } from './region-locks.js';
export * from './types.js';
