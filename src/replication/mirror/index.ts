/**
 * The mirror driver (issue 5): synchronous remote mirroring of a LUN to LUNs of other arrays.
 *
 * - MirrorNode (./node.ts): one per array. Keeps the mirror database record of every mirror with
 *   an image on the array (src/replication/state: every change through `applyOp`, saved twice,
 *   pushed to the members), listens on the array's remote-link port for secondary traffic, and
 *   dials one link per secondary on the primary side. Implements MirrorControl (./types.ts): what
 *   the management API and `sanbox mirror` call.
 * - MirrorLayer (./layer.ts): the replication layer of a LUN's stack (`node.layer(lunId, device)`).
 * - BitmapFile (./bitmap-file.ts): write-intent and fracture logs on disk, two slots, group commit.
 *
 * Files under `<array dir>/mirrors/<mirror id>/`: `db.A`/`db.B` (the record), `wil.bitmap` (primary),
 * `fracture-<image>.bitmap` (primary, one per secondary), `divergence.bitmap` + `.json` (a demoted
 * former primary: the regions the new primary must take from it).
 */
export { MirrorNode } from './node.js';
export { MirrorLayer } from './layer.js';
export { BitmapFile } from './bitmap-file.js';
export { RateLimiter } from './throttle.js';
export * from './types.js';
