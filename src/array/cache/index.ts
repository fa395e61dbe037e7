/**
 * Write cache of an SP (issue 4): one `WriteCache` per LUN, a BlockDevice layer over the LUN's
 * backing store, all LUNs of one SP sharing one `CacheBudget`; the peer SP keeps its copy in a
 * `PeerMirrorStore`, reached through a `CacheMirror` (in the SP processes: over CMI).
 *
 * Files: ./write-cache.ts (the device, mode switching, cache management), ./core.ts (state,
 * page index, budget accounting, invariants), ./read-path.ts, ./write-path.ts (write-back,
 * write-through, trim/zeroes), ./destage.ts (when and how pages go below), ./budget.ts,
 * ./mirror.ts, ./locks.ts.
 *
 * ## Protection rule (what FUA and FLUSH mean)
 * An acknowledged write is protected when it is either on disk, or in both SPs' caches with a
 * healthy battery.
 * - write-back (mode 'write-back' and a mirror attached): a write is copied into cache pages and
 *   then `await mirror.mirror(lun, pages)`; it resolves (host ack) only after the peer holds the
 *   pages. If the mirror rejects, the write fails with EIO (it is not acknowledged; its bytes
 *   may or may not appear later, as for any failed write). FUA adds nothing (the battery-backed
 *   mirrored cache is the non-volatile medium); `flush()` resolves at once, except that it
 *   flushes below trims/zeroes that went there without FUA.
 * - write-through: the write goes below with FUA before it resolves; `flush()` writes every page
 *   dirty at call time and flushes below. Trim/zeroes go below with FUA.
 * - Write-back without a mirror is refused (such writes go through) unless the cache was built
 *   with `requireMirror: false` (benchmarks). The cache only obeys `setMode()`; which mode is
 *   right is `cacheModePolicy` in ../sp.
 * - A write needing more new pages than the whole budget goes through (event
 *   'write-through-fallback').
 *
 * ## Pages and ordering
 * - Page size: max(4096, block size). Only dirty pages are cached (reads of other pages go
 *   below), so no page can be both clean and dirty. A partial write to an uncached page reads the
 *   rest of the page from below first. Reads overlay dirty pages on the lower device's data.
 * - Every write/trim/zero takes the next generation of the cache; every page it changes carries
 *   that generation; generations of a page only increase (asserted).
 * - At most one operation touching the lower device is in flight per page (per-page FIFO locks:
 *   fill, write-through, trim/zeroes, destage), so older data can never land after newer data.
 *   A write-back write to a page being destaged updates the cached page (the destage writes a
 *   snapshot); after the destage the page stays dirty because its generation moved on.
 * - Write-through over cached pages merges into them and writes the cached edge pages whole, so
 *   they become clean; the peer is told to release every page it may still hold in the range
 *   (a failed release fails the write with EIO: the peer could otherwise replay an older copy).
 * - Trim/zeroes: cached pages in the range are zeroed (fully covered ones are dropped once the
 *   lower op succeeded), the peer is told (`discard`) when it may hold pages there, then the op
 *   goes below.
 *
 * ## Destaging
 * Oldest dirty page first (first-dirty order), in batches of adjacent-coalesced writes with
 * bounded concurrency, then a flush below (`durableDestage`), then `release` on the peer (a
 * failed release is retried with the next batch; the cache remembers what the peer may hold).
 * Triggers: budget above the high watermark until the low one, a writer blocked on the budget
 * (back-pressure: writes wait, the cache never exceeds the budget), the idle timer, mode
 * write-through or no mirror (drain), `flush`/`destageAll`. A failed batch emits
 * 'destage-error' and retries after `retryMs`; `destageAll` rejects.
 *
 * ## SP assembly
 * - Build each LUN's stack as `new WriteCache({ lun, lower: store, budget, mode, onEvent })`.
 * - When the peer is up: `await cache.attachMirror(cmiMirror)` (resets the peer's copy and
 *   sends the dirty set), then `setMode(policy.mode)`. When the peer dies or CMI breaks:
 *   `detachMirror()` and `setMode('write-through')`. A peer that comes back must have dropped
 *   its stale `PeerMirrorStore` (`clear()`) before attachMirror.
 * - On the peer: apply CMI messages to a `PeerMirrorStore`. Takeover of a dead SP's LUN:
 *   `new WriteCache({ ..., initialGeneration })` then `await cache.loadDirty(store.take(lun))`
 *   before serving I/O; then `destageAll()` (no peer: write-through drains anyway).
 * - Before trespass/shutdown: quiesce host I/O, `await cache.destageAll()`.
 * - Vault: `dirtyPages()` of every own cache plus `PeerMirrorStore.pages(lun)` of every peer
 *   LUN; restore with `loadDirty(pages)` then `destageAll()`. A rebooted SP: `dropAll()`.
 */
export { CacheBudget, type BudgetMember, type CacheBudgetOptions } from './budget.js';
export { WriteCache, type CacheMode, type CacheEvent, type WriteCacheOptions } from './write-cache.js';
export { PeerMirrorStore, LocalCacheMirror, type CacheMirror, type MirrorPage, type PageRef } from './mirror.js';
export { PageLocks } from './locks.js';
