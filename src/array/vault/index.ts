/**
 * The vault of an SP (issue 4): where, on power failure, the SP dumps its dirty write cache
 * (own LUNs and its mirror of the peer's) and opaque named log blobs (write-intent and fracture
 * bitmaps, writelog tail), within the battery's hold-up budget, and from which power-up
 * restores them.
 *
 * ## Files (one directory per SP)
 * - `copy-A.vault`, `copy-B.vault`: two copies, format in ./format.ts (magic, version, SP name,
 *   generation, timestamp, total length, per-section CRC32C, whole-image CRC32C in a trailer).
 * - `consumed`: the highest generation that must never be replayed again (atomic rename).
 *
 * ## Semantics
 * - `dump(image, { deadlineMs })` picks the copy that does not hold the newest good image
 *   (a torn/corrupt one first), truncates it and writes front to back, checking the deadline
 *   between chunks; a finished copy is fsynced with its directory. A dump cut by the deadline
 *   (or by the process dying) leaves a strict prefix, detected as torn; the other copy is never
 *   touched, so the previous good image survives. Generation = max(both headers, consumed) + 1.
 * - `load()` validates both copies and returns the newest valid one whose generation is above
 *   the consumed generation, plus a report per copy: valid, stale (consumed), torn (with where:
 *   header, section k, trailer), corrupt (which checksum), missing. `newerCopyLost` says a newer
 *   dump exists but is unusable (dirty data it held is lost: LUNs go cache-dirty).
 * - `loadOrThrow()` throws a VaultError listing both copies when a dump existed but none is
 *   usable; returns null when there is nothing to replay.
 * - `markConsumed(gen)`: call after a successful replay (restore, `destageAll`, then mark), or
 *   when the peer superseded the image (it took over the LUNs and wrote newer data). A stale
 *   copy is never returned again. A corrupt consumed record is an error, never a guess.
 *
 * ## Restore sequence (for the SP assembly)
 * `const img = await vault.loadOrThrow()`; for each own cache section build/locate the LUN's
 * WriteCache, `loadDirty(section.pages)`, `destageAll()`; peer sections go into the
 * PeerMirrorStore only if the peer is not serving those LUNs (otherwise they are superseded);
 * then `markConsumed(img.generation)`; only then serve I/O.
 */
export {
  encodeVaultImage,
  decodeVaultImage,
  decodeVaultHeader,
  VaultFormatError,
  VAULT_VERSION,
  HEADER_SIZE,
  SECTION_HEADER_SIZE,
  TRAILER_SIZE,
  type VaultImage,
  type VaultCacheSection,
  type VaultLog,
  type VaultHeaderInfo,
  type CacheRole,
} from './format.js';
export { Vault, VaultError, VAULT_SLOTS, type VaultSlot, type CopyStatus, type CopyReport, type VaultLoadResult, type DumpOptions, type DumpResult } from './vault.js';
