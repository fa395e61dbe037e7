/**
 * The remote-link handshake as each side drives it: the steps of ./handshake.ts (hello,
 * challenge, auth, ok) in order, what each side checks at each one, and the refusal it sends when
 * a check fails. It runs once per connection, before any request, so it lives apart from
 * ./connection.ts (frames and requests of the open link) and reaches the connection only through
 * HandshakeIo.
 */
import { RemoteLinkError } from './errors.js';
import { KIND, LINK_MAX_BINARY, LINK_MAX_JSON, type Frame, type FrameLimits } from './frame.js';
import { deriveSessionKeys, isNonce, newNonce, proof, verifyProof, type Transcript } from './handshake.js';
import { parseAccepted, parseOffered, type AcceptedMirror, type OfferedMirror } from './offer.js';

/** What both ends know about each other once the handshake succeeded. */
export interface SessionInfo {
  localArray: string;
  peerArray: string;
  role: 'client' | 'server';
  version: number;
  mirrors: AcceptedMirror[];
  remoteAddress: string;
}

/** What the initiating side brings to the handshake. */
export interface ClientHandshake {
  secret: string | Buffer;
  expectPeer: string;
  mirrors: OfferedMirror[];
}

/**
 * What the receiving side brings: `secretFor(array)` gives the shared secret of the link with that
 * array (undefined: not a configured peer); `mirrorFor(id)` the local secondary image of that mirror.
 */
export interface ServerHandshake {
  secretFor: (array: string) => string | Buffer | undefined;
  mirrorFor: (mirrorId: string, peerArray: string) => { secondarySize: number } | undefined;
}

/** What the handshake needs of its connection (LinkConnection builds it; see there). */
export interface HandshakeIo {
  /** the protocol version this side speaks */
  readonly version: number;
  readonly localArray: string;
  /** this side's receive limits, told to the peer */
  readonly limits: FrameLimits;
  /** the handshake must complete within this (ms) */
  readonly timeoutMs: number;
  /** the time is up: refuses with 'timeout' unless the handshake has ended meanwhile */
  timedOut(message: string): void;
  /** sends a HANDSHAKE frame */
  send(json: Record<string, unknown>): void;
  nextFrame(): Promise<Frame>;
  /** the peer sent ERROR: the link ends with `e`, without an answer */
  peerRefused(e: RemoteLinkError): void;
  /** sends ERROR {code, message} to the peer, closes, and throws the same error here */
  refuse(code: string, message: string): never;
  /** frames received from now on must carry a MAC under this key */
  setReceiveKey(key: Buffer): void;
  /** frames sent from now on carry a MAC under this key */
  setSendKey(key: Buffer): void;
  /** the peer's receive limits, which bound what this side sends once the link is open */
  setPeerLimits(limits: FrameLimits): void;
  /** the handshake succeeded: the link opens */
  open(session: SessionInfo): SessionInfo;
  remoteAddress(): string;
}

/** Initiating side. Resolves when authenticated and accepted; rejects with the RemoteLinkError both sides saw. */
export async function clientHandshake(io: HandshakeIo, p: ClientHandshake): Promise<SessionInfo> {
  const deadline = handshakeDeadline(io);
  try {
    const clientNonce = newNonce();
    const limits = io.limits;
    const hello = { step: 'hello', version: io.version, array: io.localArray, expectPeer: p.expectPeer, nonce: clientNonce, mirrors: p.mirrors, limits };
    io.send(hello);
    const ch = await nextHandshake(io, 'challenge');
    if (ch.version !== io.version) io.refuse('version-mismatch', `peer speaks remote-link protocol version ${ch.version}, ${io.localArray} speaks ${io.version}`);
    const j = ch.json;
    if (typeof j.array !== 'string') io.refuse('protocol', 'challenge without an array name');
    if (j.array !== p.expectPeer) io.refuse('wrong-peer', `connected to array ${JSON.stringify(j.array)}, but this link's peer is ${JSON.stringify(p.expectPeer)}`);
    if (!isNonce(j.nonce)) io.refuse('protocol', 'challenge without a valid nonce');
    const t: Transcript = { version: io.version, clientArray: io.localArray, serverArray: p.expectPeer, clientNonce, serverNonce: j.nonce as string, mirrors: p.mirrors, clientLimits: limits };
    // The client proves first (./handshake.ts); everything the server sends from now on but a
    // refusal of this proof carries a MAC under the server-to-client key.
    const keys = deriveSessionKeys(p.secret, t);
    io.setReceiveKey(keys.serverToClient);
    io.send({ step: 'auth', proof: proof('client', p.secret, t) });
    io.setSendKey(keys.clientToServer);
    const ok = await nextHandshake(io, 'ok');
    // an 'ok' without a MAC, or with a wrong proof, is not from a holder of the secret
    if (!ok.authenticated || !verifyProof('server', p.secret, t, ok.json.proof))
      io.refuse('auth-failed', `authentication failed: array ${p.expectPeer} could not prove it knows the shared secret of the link with ${io.localArray}`);
    const accepted = parseAccepted(ok.json.mirrors);
    if (!accepted) io.refuse('protocol', 'ok without a valid mirror list');
    for (const m of p.mirrors) {
      const a = accepted!.find((x) => x.mirrorId === m.mirrorId);
      if (!a) io.refuse('wrong-mirror', `array ${p.expectPeer} did not accept mirror ${JSON.stringify(m.mirrorId)}`);
      if (a!.secondarySize < m.primarySize)
        io.refuse('size-mismatch', `mirror ${m.mirrorId}: the secondary image on ${p.expectPeer} (${a!.secondarySize} bytes) is smaller than the primary (${m.primarySize} bytes)`);
    }
    io.setPeerLimits(parseLimits(ok.json.limits));
    return io.open({ localArray: io.localArray, peerArray: p.expectPeer, role: 'client', version: io.version, mirrors: accepted!, remoteAddress: io.remoteAddress() });
  } finally {
    clearTimeout(deadline);
  }
}

/** Receiving side. Resolves when the peer is authenticated and its mirrors accepted; rejects like clientHandshake. */
export async function serverHandshake(io: HandshakeIo, p: ServerHandshake): Promise<SessionInfo> {
  const deadline = handshakeDeadline(io);
  try {
    const hello = await nextHandshake(io, 'hello');
    const j = hello.json;
    const theirVersion = hello.version;
    if (theirVersion !== io.version || j.version !== io.version)
      io.refuse('version-mismatch', `peer speaks remote-link protocol version ${String(j.version ?? theirVersion)}, ${io.localArray} speaks ${io.version}`);
    if (typeof j.array !== 'string' || typeof j.expectPeer !== 'string' || !isNonce(j.nonce)) io.refuse('protocol', 'malformed hello (array, expectPeer, nonce)');
    const mirrors = parseOffered(j.mirrors);
    if (!mirrors) io.refuse('protocol', 'malformed hello (mirrors)');
    const peer = j.array as string;
    if (j.expectPeer !== io.localArray) io.refuse('wrong-peer', `array ${peer} expected to reach ${JSON.stringify(j.expectPeer)}, but this is ${io.localArray}`);
    const secret = p.secretFor(peer);
    if (secret === undefined) io.refuse('wrong-peer', `array ${JSON.stringify(peer)} is not a configured remote-link peer of ${io.localArray}`);
    const serverNonce = newNonce();
    const t: Transcript = { version: io.version, clientArray: peer, serverArray: io.localArray, clientNonce: j.nonce as string, serverNonce, mirrors: j.mirrors, clientLimits: j.limits };
    // nothing derived from the secret goes out before the client has proved it knows it
    io.send({ step: 'challenge', version: io.version, array: io.localArray, nonce: serverNonce });
    const auth = await nextHandshake(io, 'auth');
    if (!verifyProof('client', secret!, t, auth.json.proof))
      io.refuse('auth-failed', `authentication failed: array ${peer} could not prove it knows the shared secret of the link with ${io.localArray}`);
    const keys = deriveSessionKeys(secret!, t);
    io.setReceiveKey(keys.clientToServer);
    io.setSendKey(keys.serverToClient);
    const accepted: AcceptedMirror[] = [];
    for (const m of mirrors!) {
      const local = p.mirrorFor(m.mirrorId, peer);
      if (!local) io.refuse('wrong-mirror', `mirror ${JSON.stringify(m.mirrorId)} has no secondary image on ${io.localArray}`);
      if (local!.secondarySize < m.primarySize)
        io.refuse('size-mismatch', `mirror ${m.mirrorId}: the secondary image on ${io.localArray} (${local!.secondarySize} bytes) is smaller than the primary on ${peer} (${m.primarySize} bytes)`);
      accepted.push({ mirrorId: m.mirrorId, secondarySize: local!.secondarySize });
    }
    io.setPeerLimits(parseLimits(j.limits));
    io.send({ step: 'ok', proof: proof('server', secret!, t), mirrors: accepted, limits: io.limits });
    return io.open({ localArray: io.localArray, peerArray: peer, role: 'server', version: io.version, mirrors: accepted, remoteAddress: io.remoteAddress() });
  } finally {
    clearTimeout(deadline);
  }
}

/** The handshake must complete in time; past it the connection refuses it with 'timeout'. */
function handshakeDeadline(io: HandshakeIo): NodeJS.Timeout {
  const ms = io.timeoutMs;
  const t = setTimeout(() => io.timedOut(`remote-link handshake did not complete within ${ms} ms`), ms);
  t.unref();
  return t;
}

/** The next frame, which must be the HANDSHAKE frame of `step`; an ERROR from the peer ends the link. */
async function nextHandshake(io: HandshakeIo, step: string): Promise<Frame> {
  const f = await io.nextFrame();
  if (f.kind === KIND.ERROR) {
    const e = new RemoteLinkError(String(f.json.code ?? 'protocol'), `refused by the peer: ${String(f.json.message ?? 'no reason given')}`);
    io.peerRefused(e);
    throw e;
  }
  if (f.kind !== KIND.HANDSHAKE || f.json.step !== step) {
    // a peer of another version may say anything: report the version first
    if (f.version !== io.version) io.refuse('version-mismatch', `peer speaks remote-link protocol version ${f.version}, ${io.localArray} speaks ${io.version}`);
    io.refuse('protocol', `expected handshake step ${step}, got frame kind ${f.kind}${f.kind === KIND.HANDSHAKE ? ` step ${String(f.json.step)}` : ''}`);
  }
  return f;
}

/** The receive limits the peer announced; a missing or invalid figure means the default. */
function parseLimits(v: unknown): FrameLimits {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const n = (x: unknown, d: number) => (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : d);
  return { maxJson: n(o.maxJson, LINK_MAX_JSON), maxBinary: n(o.maxBinary, LINK_MAX_BINARY) };
}
