/** The replication layer. So far: the mirror/image state machines and the mirror database record. */
export * from './state/index.js';
