/**
 * The remote-link protocol: framed, versioned, authenticated messages between arrays over plain
 * TCP (in labs through the link emulator, src/link/emulator).
 *
 * Wire format (./frame.ts): 28-byte header (magic "SRLK", version, kind, flags, request id, JSON
 * and binary lengths, body CRC32C, header CRC32C), then a JSON object and a binary payload, and
 * after the handshake a 16-byte MAC (HMAC-SHA256 under a per-direction session key over a
 * per-direction sequence number, the header and the body; it replaces the body CRC). Limits:
 * 64 KiB JSON and no payload until the peer is authenticated, then LINK_MAX_JSON (1 MiB) and
 * LINK_MAX_BINARY (16 MiB) by default (each side tells the other its receive limits in the
 * handshake; a sender refuses locally with 'frame-too-large' to send more). A malformed or
 * oversized frame ends the connection after an ERROR frame {code: 'protocol'|'frame-too-large'}.
 *
 * Handshake (./handshake.ts): mutual HMAC-SHA256 challenge-response over both nonces, both
 * array names, the version and the offered mirrors, the client proving first (the server sends
 * nothing derived from the secret to an unauthenticated client); session keys from HKDF-SHA256;
 * a frame failing its MAC closes the connection ('bad-mac') unapplied; then the receiving side checks the expected
 * peer names (both ways), each offered mirror id, and that its secondary is at least as large as
 * the primary. Refusals ('auth-failed', 'wrong-peer', 'wrong-mirror', 'size-mismatch',
 * 'version-mismatch', 'protocol', 'timeout') reach the other side as an ERROR frame before the
 * close, so both sides reject with a RemoteLinkError of the same code; no handler runs before the
 * handshake completes.
 *
 * Use:
 *   const server = new RemoteLinkServer({ array: 'bravo', peers: [{ array: 'alpha', secret }],
 *     mirrorFor: (id) => ({ secondarySize }), handlers: { write: async (args, data, ctx) =>
 *     ({ result: { mirrorId, imageId, offset, length: data.length } }) , 'read-regions': ..., 'mirror-db': ... } });
 *   await server.listen(port, host);
 *   const client = new RemoteLinkClient({ array: 'alpha', peer: 'bravo', secret, host, port,
 *     mirrors: [{ mirrorId, primarySize }], reconnect: { initialMs: 100, maxMs: 5000 } });
 *   await client.connect();
 *   await client.write({ mirrorId, imageId, offset, flags: { fua: true } }, data); // -> ack
 *
 * Semantics the mirror driver can rely on:
 * - Requests on one connection reach the handler in send order (handlers are called
 *   synchronously in arrival order; replies may complete in any order, matched by id).
 * - A request gets its reply, or rejects with RemoteLinkError: 'timeout' (per request, default 10 s;
 *   the connection stays up), 'closed' / 'peer-dead' (connection lost: every pending request
 *   rejects), 'not-connected' (client has no connection), or the handler's own code
 *   (a thrown `{code, message}` crosses the wire; 'wrong-mirror' for a mirror not negotiated,
 *   'bad-request' for invalid args, 'no-handler').
 * - Keepalive: PING frames every `timers.keepaliveMs` (1 s); a peer silent for
 *   `timers.deadAfterMs` (5 s) is declared dead ('peer-dead') on either side.
 * - `connect()` is one attempt; `start()` keeps trying in the background (backoff). The client
 *   does not reconnect after a refusal (TERMINAL_CODES), only after a loss or a failed attempt, with
 *   exponential backoff when `reconnect` is set; it emits 'connected' / 'disconnected' /
 *   'reconnecting' / 'refused'. The server emits 'session' / 'session-closed' / 'refused'.
 * - Requests may flow both ways (`handlers` on the client too): e.g. a secondary may push its
 *   mirror-db view back.
 */
export { RemoteLinkError, type RemoteLinkErrorCode } from './errors.js';
export {
  encodeFrame,
  FrameWriter,
  FrameDecoder,
  LinkFrameError,
  KIND,
  LINK_MAGIC,
  LINK_VERSION,
  LINK_HEADER_SIZE,
  LINK_MAX_JSON,
  LINK_MAX_BINARY,
  HANDSHAKE_MAX_JSON,
  HANDSHAKE_MAX_BINARY,
  FLAG_MAC,
  LINK_MAC_BYTES,
  frameMac,
  type MacState,
  type Frame,
  type FrameKind,
  type FrameLimits,
} from './frame.js';
export { proof, verifyProof, newNonce, deriveSessionKeys, NONCE_BYTES, type Transcript, type SessionKeys } from './handshake.js';
export {
  LinkConnection,
  DEFAULT_TIMERS,
  type ConnectionTimers,
  type SessionInfo,
  type OfferedMirror,
  type AcceptedMirror,
  type LinkHandler,
  type LinkHandlers,
  type HandlerResult,
  type RequestContext,
} from './connection.js';
export {
  encodeApplyBatch,
  nextRecord,
  recordSeq,
  recordIndex,
  recordOffset,
  recordFlags,
  recordDataBytes,
  recordLength,
  APPLY_RECORD_HEADER,
  type ApplyRecordIn,
} from './apply-batch.js';
export { RemoteLinkServer, type RemoteLinkServerOptions } from './server.js';
export { RemoteLinkClient, TERMINAL_CODES, type RemoteLinkClientOptions, type ReconnectPolicy } from './client.js';
export {
  LINK_OPS,
  validateArgs,
  APPLY_FLAG_ZERO,
  APPLY_FLAG_TRIM,
  RANGE_HASHES,
  RANGE_HASH_MAX_BYTES,
  WRITE_EXTENTS_MAX,
  type LinkOp,
  type LinkOps,
  type WriteArgs,
  type WriteFlags,
  type AckResult,
  type ReadRegionsArgs,
  type RegionChecksumsResult,
  type MirrorDbArgs,
  type MirrorDbResult,
  type PingArgs,
  type PingResult,
  type ZeroArgs,
  type FlushArgs,
  type BitmapArgs,
  type BitmapResult,
  type LunInfoArgs,
  type LunInfoResult,
  type GroupDbArgs,
  type GroupDbResult,
  type GroupHelloArgs,
  type GroupHelloResult,
  type ApplyArgs,
  type ApplyResult,
  type ReadArgs,
} from './messages.js';
