import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Mutual challenge-response with a shared secret (never sent, in clear or otherwise):
 *
 *   client -> server  HANDSHAKE {step:'hello', version, array, expectPeer, nonce: Nc, mirrors}
 *   server -> client  HANDSHAKE {step:'challenge', version, array, nonce: Ns, proof: Ps}
 *   client -> server  HANDSHAKE {step:'auth', proof: Pc}
 *   server -> client  HANDSHAKE {step:'ok', mirrors: [{mirrorId, secondarySize}]}
 *
 * Ps = HMAC-SHA256(secret, "sanbox-link/server\n" + T), Pc = HMAC-SHA256(secret,
 * "sanbox-link/client\n" + T), T = JSON [version, client array, server array, Nc, Ns, mirrors].
 * Both nonces are 32 random bytes, so a captured handshake does not verify in any other session
 * (replay), the role label keeps one side's proof from being reflected as the other's, and the
 * transcript binds names, version and the offered mirrors (a MITM cannot alter them).
 * Proofs are compared in constant time. Any refusal is an ERROR frame {code, message} before close.
 */
export const NONCE_BYTES = 32;

export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString('hex');
}

export interface Transcript {
  version: number;
  clientArray: string;
  serverArray: string;
  clientNonce: string;
  serverNonce: string;
  mirrors: unknown;
}

function transcript(t: Transcript): string {
  return JSON.stringify([t.version, t.clientArray, t.serverArray, t.clientNonce, t.serverNonce, t.mirrors]);
}

export function proof(role: 'client' | 'server', secret: string | Buffer, t: Transcript): string {
  return createHmac('sha256', secret).update(`sanbox-link/${role}\n`).update(transcript(t)).digest('hex');
}

/** Constant-time check of a received proof (hex) against the expected one. */
export function verifyProof(role: 'client' | 'server', secret: string | Buffer, t: Transcript, received: unknown): boolean {
  const want = Buffer.from(proof(role, secret, t), 'hex');
  if (typeof received !== 'string' || !/^[0-9a-f]{64}$/.test(received)) {
    timingSafeEqual(want, want); // same work either way
    return false;
  }
  return timingSafeEqual(want, Buffer.from(received, 'hex'));
}

export function isNonce(v: unknown): v is string {
  return typeof v === 'string' && v.length === NONCE_BYTES * 2 && /^[0-9a-f]+$/.test(v);
}
