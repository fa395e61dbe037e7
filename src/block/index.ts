export * from './device.js';
export { FileBackingStore } from './file-store.js';
