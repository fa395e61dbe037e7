/** The replication layer: the mirror/image state machines and database record (./state), the mirror driver (./mirror). */
export * from './state/index.js';
export * from './mirror/index.js';
