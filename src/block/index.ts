/**
 * The block layer kit: the one I/O interface (./device.ts), the pass-through base every layer
 * extends (./layer.ts), the checked hop between layers (./checked.ts), requests as data and the
 * one adapter between ops and calls (./io-op.ts), the host-admission rules for mirror images and
 * fenced LUNs (./admission.ts, ./fence.ts), and the bottom of every stack, the image file (./file-store.ts).
 */
export * from './device.js';
export { LayerDevice, promised } from './layer.js';
export { checked, assertExtents, type HopOptions } from './checked.js';
export { execIoOp, parseIoOp, modifiesData, readsData, OpDevice, type IoOp, type IoOpKind, type IoResult } from './io-op.js';
export { fenceRefusal, admitHostIo, hostReadOnly, type Admission, type HostRole, type LunFence } from './admission.js';
export { FenceLayer } from './fence.js';
export { FileBackingStore } from './file-store.js';
