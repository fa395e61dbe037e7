/**
 * CMI: the channel between SP-A and SP-B of one array (a Unix socket per SP; each SP connects
 * a client to its peer's server, so each direction is one ordered request/reply stream).
 *
 * Frames are versioned and checksummed (./frame.ts). A connection opens with `hello` (CMI
 * version, array, SP name); a mismatch is refused. Requests carry a JSON object and an optional
 * binary payload; replies echo the id, ok or error (`{code, errno, message}`).
 *
 * Operations used by the SP processes (src/array/sp-process):
 * - cache mirroring, feeding the peer's PeerMirrorStore: `mirror.reset {lun}`,
 *   `mirror.pages {lun, pages: [{index, generation}], pageSize}` + page data,
 *   `mirror.release {lun, pages}`, `mirror.discard {lun, offset, length, generation}`;
 * - forwarded host I/O from the non-owner SP: `io {lun, op, offset, length, fua, noHole,
 *   fastZero}` (+ write data; read data in the reply). The owner answers `not-owner` when it does
 *   not own the LUN (any more): the forwarding SP waits for its own ownership update and retries.
 */
export { encodeFrame, FrameDecoder, CmiProtocolError, CMI_VERSION, CMI_MAGIC, CMI_HEADER_SIZE, CMI_MAX_JSON, CMI_MAX_BINARY, KIND, type Frame, type FrameKind } from './frame.js';
export { CmiServer, CmiClient, CmiError, type CmiHandler, type CmiRequest, type CmiRequestContext, type CmiResult, type HelloInfo } from './channel.js';
export { CmiCacheMirror, decodeMirrorPages, decodePageRefs } from './mirror.js';
