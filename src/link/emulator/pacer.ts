/**
 * When each chunk of one direction of one connection is due at the far end, the way a WAN
 * carries a TCP stream: serialized at the bandwidth cap after the bytes ahead of it, then
 * propagated (latency + a uniform draw of jitter), plus one retransmission timeout when the loss
 * draw says it was lost. A chunk is never due before the one ahead of it: TCP never reorders, so
 * a jittered or lost chunk holds back everything behind it (head-of-line blocking).
 */
import type { Random } from '../../random/index.js';
import type { DirectionSettings } from './types.js';

/** Pieces a capped direction splits a chunk into: about 1 ms of the cap, a segment to 16 KiB. */
const MIN_PIECE_BYTES = 1460;
const MAX_PIECE_BYTES = 16384;

export function pieceBytes(bandwidth: number): number {
  return Math.min(MAX_PIECE_BYTES, Math.max(MIN_PIECE_BYTES, Math.round(bandwidth / 1000)));
}

export class Pacer {
  /** When the link has serialized every byte given so far (performance.now() ms). */
  private linkFreeAt = 0;
  /** The due time of the latest chunk (performance.now() ms); due times never decrease. */
  lastDue = 0;
  /** Whether the latest chunk drew a loss. */
  lost = false;

  /** The due time (performance.now() ms) of `bytes` read at `now`; sets `lost`. */
  next(bytes: number, now: number, s: DirectionSettings, random: Random): number {
    let sent = now;
    if (s.bandwidth > 0) {
      sent = Math.max(now, this.linkFreeAt) + (bytes * 1000) / s.bandwidth;
      this.linkFreeAt = sent;
    }
    const jitter = s.jitterMs > 0 ? random() * s.jitterMs : 0;
    this.lost = s.lossPercent > 0 && random() * 100 < s.lossPercent;
    const due = Math.max(sent + s.latencyMs + jitter + (this.lost ? s.rtoMs : 0), this.lastDue);
    this.lastDue = due;
    return due;
  }
}
