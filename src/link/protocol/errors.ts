/**
 * Stable error codes of the remote link. A refusal during the handshake is sent to the other
 * side (an ERROR frame with code and message) before the connection closes, so both sides report
 * the same code.
 */
export type RemoteLinkErrorCode =
  | 'auth-failed' // the peer could not prove it knows the shared secret (or we could not)
  | 'wrong-peer' // the peer array is not the one configured for this link
  | 'wrong-mirror' // a mirror id the receiving array does not know (or a request for a mirror not negotiated)
  | 'size-mismatch' // the secondary image is smaller than the primary
  | 'version-mismatch' // the peer speaks another protocol version
  | 'protocol' // malformed frame or message, unexpected frame kind
  | 'frame-too-large' // a frame over the size limits
  | 'bad-mac' // a frame after the handshake failed its MAC check (altered, injected, replayed, reordered or dropped on the path)
  | 'timeout' // a request got no reply in time; or the handshake did not complete in time
  | 'peer-dead' // keepalive: nothing heard from the peer for too long
  | 'closed' // the connection closed (cleanly or not) before the reply
  | 'not-connected' // the client has no open connection right now
  | 'bad-request' // the request's arguments are invalid
  | 'no-handler' // the receiving array has no handler for this operation
  | 'io' // the handler failed (its message says why)
  | (string & {}); // handlers may use their own codes (e.g. 'eperm', 'stale-epoch')

export class RemoteLinkError extends Error {
  constructor(
    readonly code: RemoteLinkErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RemoteLinkError';
  }
}
