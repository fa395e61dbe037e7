import type { MirrorImage } from '../state/index.js';

/**
 * What a secondary is doing, seen from the primary side: one pure decision over the link (events
 * of the remote-link client), the secondary's runtime flags and its record image. The driver asks
 * it instead of combining `link`, `failed`, `resync`, `fractured` and `state` at each site; the
 * predicates below are the questions the sites ask, each one a set of phases.
 *
 * Checked in this order (the first that applies wins):
 * - `unreachable`: the link is not up (connecting, down, refused). A peer whose link is down is
 *   always `failed` too (connectPeer and peerLost set both); the link decides first.
 * - `failed`: the link is up but a remote write, flush or resync request failed; only the
 *   reconnect path (record push, bitmap exchange) brings it back. Until then writes only mark
 *   its fracture log.
 * - `removed`: the record no longer lists the image (remove-secondary, between the record change
 *   and the end of the link).
 * - `fractured`: the record says fractured (administrator, link, promote).
 * - `unsynchronized`: the record says UNSYNCHRONIZED and no resync runs: no known relation to the
 *   primary's data; host writes only mark the fracture log until a synchronize.
 * - `resync-ending`: UNSYNCHRONIZED while a resync still runs (the record failed the sync: the run
 *   stops at its next chunk). Like `unsynchronized` for writes, but no new resync starts.
 * - `resync-starting`: a resync runs but the secondary has not yet answered the record that
 *   announces it (it cuts its resync protection first, ./protection.ts): like `unsynchronized`
 *   for writes (they only mark the fracture log, the resync copies them), so nothing reaches the
 *   image before its protection.
 * - `resyncing`: a resync runs (or has copied everything and is recording its end: until the
 *   record has its sync-done, no second run starts).
 * - `resync-pending`: the record says SYNCHRONIZING and no resync runs yet: one is started.
 * - `dirty`: CONSISTENT or SYNCHRONIZED, no resync, but the fracture log holds regions (a
 *   failed local write, a group's bypass): it needs a resync.
 * - `in-sync`: CONSISTENT or SYNCHRONIZED, no resync, an empty fracture log.
 */
export type PeerPhase = 'unreachable' | 'failed' | 'removed' | 'fractured' | 'unsynchronized' | 'resync-ending' | 'resync-starting' | 'resyncing' | 'resync-pending' | 'dirty' | 'in-sync';

export const PEER_PHASES: readonly PeerPhase[] = ['unreachable', 'failed', 'removed', 'fractured', 'unsynchronized', 'resync-ending', 'resync-starting', 'resyncing', 'resync-pending', 'dirty', 'in-sync'];

/** The link states of SecondaryPeer (./primary.ts). */
export type PeerLinkState = 'connecting' | 'connected' | 'down' | 'refused';

/** The runtime facts of a secondary the phase needs (SecondaryPeer supplies them). */
export interface PeerFacts {
  link: PeerLinkState;
  failed: boolean;
  /** A resync runs, or has copied everything and is recording its end (SecondaryPeer.resyncFinishing). */
  resyncRunning: boolean;
  /** The running resync waits for the secondary to answer the record that announces it. */
  resyncStarting?: boolean;
  /**
   * Whether the fracture log holds regions. Asked last and only when nothing else decides: it
   * scans the bitmap, and the write path asks for the phase on every host write.
   */
  dirty: () => boolean;
}

/** The record facts of the secondary's image (undefined: the record does not list it). */
export type PeerImageFacts = Pick<MirrorImage, 'fractured' | 'state'> | undefined;

/** Everything but `dirty` / `in-sync`: null when only the fracture log tells them apart. */
function phaseBeforeLog(img: PeerImageFacts, peer: PeerFacts): PeerPhase | null {
  if (peer.link !== 'connected') return 'unreachable';
  if (peer.failed) return 'failed';
  if (!img) return 'removed';
  if (img.fractured) return 'fractured';
  if (img.state === 'UNSYNCHRONIZED') return peer.resyncRunning ? 'resync-ending' : 'unsynchronized';
  if (peer.resyncRunning) return peer.resyncStarting ? 'resync-starting' : 'resyncing';
  if (img.state === 'SYNCHRONIZING') return 'resync-pending';
  return null;
}

export function peerPhase(img: PeerImageFacts, peer: PeerFacts): PeerPhase {
  return phaseBeforeLog(img, peer) ?? (peer.dirty() ? 'dirty' : 'in-sync');
}

const HOST_WRITES = new Set<PeerPhase>(['resyncing', 'resync-pending', 'dirty', 'in-sync']);
const LINK_DOWN = new Set<PeerPhase>(['unreachable', 'failed']);

/**
 * Host writes go to this secondary (outside the regions its fracture log marks; the caller tests
 * the range, and that the socket is still open: the link state follows the client's events, the
 * socket may close before its event). Other phases only mark the fracture log.
 */
export function takesHostWrites(phase: PeerPhase): boolean {
  return HOST_WRITES.has(phase);
}

/** takesHostWrites(peerPhase(img, peer)) without reading the fracture log (the per-write question). */
export function takesHostWritesNow(img: PeerImageFacts, peer: PeerFacts): boolean {
  const phase = phaseBeforeLog(img, peer);
  return phase === null || HOST_WRITES.has(phase);
}

/**
 * The link carries requests: host flushes go to it, and a resync check may run for it. True for a
 * fractured or unsynchronized image too (a flush reaches every connected secondary).
 */
export function linkUsable(phase: PeerPhase): boolean {
  return !LINK_DOWN.has(phase);
}

/** The record asks for a resync and none runs: start one (after every record change). */
export function startsResync(phase: PeerPhase): boolean {
  return phase === 'resync-pending';
}

/**
 * The periodic check: a connected, unfractured secondary with fracture-log regions and no
 * resync (nor one pending) is moved to SYNCHRONIZING (resyncIfDirty). The caller still checks
 * that the log holds regions (an unsynchronized image may have none).
 */
export function awaitsResync(phase: PeerPhase): boolean {
  return phase === 'dirty' || phase === 'unsynchronized';
}

/** Identical with the primary now but for writes in flight (a group's `inSync`, the quiesce check). */
export function inSync(phase: PeerPhase): boolean {
  return phase === 'in-sync';
}
