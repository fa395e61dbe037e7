/**
 * The mirror driver (issue 5): synchronous remote mirroring of a LUN to LUNs of other arrays.
 *
 * - MirrorNode (./node.ts): one per array. Opens and closes everything below (start, clean close,
 *   power loss, reopen) and wires the parts; implements MirrorControl (./types.ts: what the
 *   management API and `sanbox mirror` call) and GroupHost (what the consistency groups use).
 *   - ./primary-lifecycle.ts: opening and closing a mirror's primary side (logs, recovery, timers);
 *   - ./records.ts: the mirror database record of every mirror with an image here
 *     (src/replication/state: every change through `applyOp`, invariants asserted, saved twice,
 *     pushed to the members), one change at a time per mirror;
 *   - ./data-path.ts: the primary's host writes and flushes (write-intent log, local ∥ remote,
 *     fracture logs), behind the narrow MirrorDataPath (./data-path-api.ts);
 *   - ./peer-link.ts: one link per secondary on the primary side, record pushes;
 *   - ./resync.ts: resynchronization from the fracture logs;
 *   - ./secondary.ts: the remote-link listener and what a pushed record does here;
 *   - ./admin.ts: the verbs, views, verify and split-brain resolution (./step-down.ts: a plain
 *     promote's first step, the old primary stepping down);
 *   - ./peer-phase.ts: the one pure decision of what a secondary is doing;
 *   - ./protection.ts: resync protection of this array's secondary images (a snapshot of the last
 *     consistent point cut before any resync write lands; promote --from-snapshot), its state
 *     table in ./protection-state.ts.
 * - MirrorLayer (./layer.ts): the replication layer of a LUN's stack (composed by src/stack over `node.hostDataPath`).
 * - BitmapFile (./bitmap-file.ts): write-intent and fracture logs on disk, two slots, group commit.
 *
 * Files under `<array dir>/mirrors/<mirror id>/`: `db.A`/`db.B` (the record), `wil.bitmap` (primary),
 * `fracture-<image>.bitmap` (primary, one per secondary), `divergence.bitmap` + `.json` (a demoted
 * former primary: the regions the new primary must take from it), `protection.A`/`.B` (this
 * array's image: its resync-protection state and snapshot).
 */
export { MirrorNode } from './node.js';
export { MirrorLayer } from './layer.js';
export type { HostModify, LunRole, MirrorDataPath } from './data-path-api.js';
export { BitmapFile } from './bitmap-file.js';
export { RateLimiter } from './throttle.js';
export { MAX_MAP_BUCKETS } from './regions.js';
export { peerPhase, PEER_PHASES, type PeerPhase, type PeerFacts, type PeerImageFacts } from './peer-phase.js';
export * from './types.js';
export { PROTECTION_STATES, PROTECTION_EVENTS, PROTECTION_TRANSITIONS, protectionTransition, type ProtectionState, type ProtectionEvent, type ProtectionView } from './protection-state.js';
