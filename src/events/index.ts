/**
 * The event catalog: every event type an array's or a link emulator's event stream carries, as
 * typed unions (documented in docs/events.md), and the reader of those streams (./sse.ts).
 * Depends on nothing.
 */
export * from './catalog.js';
export { readSse, type SseMessage } from './sse.js';
