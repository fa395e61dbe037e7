export * from './emulator.js';
export * from './api.js';
export { POLL_MS } from './wakeups.js';
