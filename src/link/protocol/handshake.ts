import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Mutual challenge-response with a shared secret (never sent, in clear or otherwise). The
 * client proves first, and the server sends nothing derived from the secret before it has
 * checked that proof:
 *
 *   client -> server  HANDSHAKE {step:'hello', version, array, expectPeer, nonce: Nc, mirrors, limits}
 *   server -> client  HANDSHAKE {step:'challenge', version, array, nonce: Ns}
 *   client -> server  HANDSHAKE {step:'auth', proof: Pc}
 *   server -> client  HANDSHAKE {step:'ok', proof: Ps, mirrors: [{mirrorId, secondarySize}], limits}   (with a MAC)
 *
 * Pc = HMAC-SHA256(secret, "sanbox-link/client\n" + T), Ps = HMAC-SHA256(secret,
 * "sanbox-link/server\n" + T), T = JSON [version, client array, server array, Nc, Ns, mirrors,
 * client limits]. Both nonces are 32 random bytes, so a captured handshake does not verify in
 * any other session (replay), the role label keeps one side's proof from being reflected as the
 * other's, and the transcript binds names, version, the offered mirrors and the client's limits
 * (a MITM cannot alter them).
 *
 * Why the client first: the listening side is the one anybody can reach. Were the server to
 * prove first (version 1 did), any TCP client could collect (Nc, Ns, Ps) for a nonce of its
 * choice and guess the secret offline. Now an unauthenticated client gets only Ns and, at the
 * auth step, a refusal. The client only proves itself to the address it is configured with.
 *
 * Session keys: HKDF-SHA256(secret, salt = Nc || Ns, info = "sanbox-link/v2 session keys\n" +
 * hex(SHA-256(T))) gives 64 bytes: the client-to-server MAC key, then the server-to-client one. From
 * the 'ok' frame on (server) and the first frame after 'auth' (client), every frame carries a
 * MAC under its direction's key with a per-direction sequence number (./frame.ts), so an altered,
 * injected, replayed, reordered or dropped frame fails its check and ends the connection
 * ('bad-mac'). Proofs and MACs are compared in constant time. Any refusal is an ERROR frame
 * {code, message} before close (with a MAC once the sender has its key).
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
  /** the limits of the client's hello, as sent */
  clientLimits: unknown;
}

function transcript(t: Transcript): string {
  return JSON.stringify([t.version, t.clientArray, t.serverArray, t.clientNonce, t.serverNonce, t.mirrors, t.clientLimits ?? null]);
}

export interface SessionKeys {
  /** MAC key of the frames the client sends */
  clientToServer: Buffer;
  /** MAC key of the frames the server sends */
  serverToClient: Buffer;
}

/** The per-direction MAC keys of a session (both sides derive the same ones). */
export function deriveSessionKeys(secret: string | Buffer, t: Transcript): SessionKeys {
  const salt = Buffer.from(t.clientNonce + t.serverNonce, 'hex');
  const info = `sanbox-link/v2 session keys\n${createHash('sha256').update(transcript(t)).digest('hex')}`;
  const okm = Buffer.from(hkdfSync('sha256', secret, salt, info, 64));
  return { clientToServer: okm.subarray(0, 32), serverToClient: okm.subarray(32, 64) };
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
