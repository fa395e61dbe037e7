/** The mirrors a handshake negotiates: what the primary offers, what the secondary accepts. */

/** A mirror offered by the initiating (primary) side in the handshake. */
export interface OfferedMirror {
  mirrorId: string;
  /** size in bytes of the primary image */
  primarySize: number;
}
/** The receiving side's answer for each offered mirror. */
export interface AcceptedMirror {
  mirrorId: string;
  secondarySize: number;
}

/** The mirrors the initiating side offers; null when malformed (the handshake is refused). */
export function parseOffered(v: unknown): OfferedMirror[] | null {
  if (!Array.isArray(v) || v.length > 1024) return null;
  const out: OfferedMirror[] = [];
  for (const m of v) {
    if (typeof m !== 'object' || m === null) return null;
    const { mirrorId, primarySize } = m as Record<string, unknown>;
    if (typeof mirrorId !== 'string' || !mirrorId || typeof primarySize !== 'number' || !Number.isSafeInteger(primarySize) || primarySize < 0) return null;
    out.push({ mirrorId, primarySize });
  }
  return out;
}

/** The receiving side's answer; null when malformed. */
export function parseAccepted(v: unknown): AcceptedMirror[] | null {
  if (!Array.isArray(v)) return null;
  const out: AcceptedMirror[] = [];
  for (const m of v) {
    if (typeof m !== 'object' || m === null) return null;
    const { mirrorId, secondarySize } = m as Record<string, unknown>;
    if (typeof mirrorId !== 'string' || typeof secondarySize !== 'number' || !Number.isSafeInteger(secondarySize)) return null;
    out.push({ mirrorId, secondarySize });
  }
  return out;
}
