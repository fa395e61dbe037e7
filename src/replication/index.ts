/**
 * The replication layer: the mirror/image state machines and database record (./state), the
 * consistency groups (./group: records, state table, writelog, senders, receiver, GroupManager),
 * the mirror driver (./mirror, which hosts the groups).
 */
export * from './state/index.js';
export * from './group/index.js';
export * from './mirror/index.js';
