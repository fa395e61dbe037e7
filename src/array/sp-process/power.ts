/**
 * An SP through a power failure: hold host I/O, refuse peer traffic (the lifecycle state says
 * so: ../sp/state.ts `inPowerFailure`), dump its dirty cache and the peer's mirror to the
 * vault within the battery's hold-up; or, when power returns mid-dump, abandon the dump and
 * serve again.
 */
import type { VaultCacheSection } from '../vault/index.js';
import type { SpCore } from './core.js';
import type { RouteState } from './router.js';

/** Before dumping, wait at most this long (or half the hold-up) for host I/O in flight. */
const QUIESCE_MAX_MS = 1000;

/**
 * Power lost: stop host I/O (requests wait; the process ends before answering them), refuse
 * peer traffic so nothing new is acknowledged, dump own dirty cache and the peer mirror to the
 * vault within the hold-up budget. Power restored mid-dump (`powerRestore`): abandon the (torn)
 * dump, mark it consumed and go on serving.
 */
export async function powerFail(core: SpCore, holdUpMs: number, bytesPerSec: number): Promise<unknown> {
  const t0 = Date.now();
  const before = new Map<number, RouteState>();
  for (const l of core.luns.values()) {
    before.set(l.spec.id, l.router.state);
    if (l.router.state !== 'cache-dirty') l.router.setState('held');
  }
  const state = core.life.state;
  if (holdUpMs <= 0 || state !== 'up') {
    if (state !== 'off' && state !== 'dumping') core.life.apply('power-cut');
    return { dumped: false, reason: holdUpMs <= 0 ? 'no battery hold-up' : `SP was ${core.life.state}`, exit: true };
  }
  core.life.apply('power-fail');
  await Promise.race([Promise.all([...core.luns.values()].map((l) => l.router.idle())), new Promise((r) => setTimeout(r, Math.min(QUIESCE_MAX_MS, holdUpMs / 2)))]);
  const caches = vaultSections(core);
  const dumpStart = Date.now();
  const res = await core.vault.dump(
    { caches, logs: [] },
    {
      deadlineMs: Math.max(0, holdUpMs - (dumpStart - t0)),
      // Power back: the deadline has passed at once, the dump stops where it is.
      clock: () => (core.life.state === 'resuming' ? Number.POSITIVE_INFINITY : Date.now()),
      throttle:
        bytesPerSec > 0
          ? async (written) => {
              const due = dumpStart + (written / bytesPerSec) * 1000;
              const wait = due - Date.now();
              if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            }
          : undefined,
    },
  );
  const dumpMs = Date.now() - dumpStart;
  const pages = caches.reduce((n, c) => n + c.pages.length, 0);
  if (core.life.state === 'resuming') {
    // Power came back before the dump finished: memory was never lost; the torn copy is
    // superseded by the live cache.
    await core.vault.markConsumed(res.generation).catch((e: unknown) => core.event('sp.error', { problem: `marking the abandoned vault dump (generation ${res.generation}) consumed: ${(e as Error).message}` }));
    core.life.apply('dump-abandoned');
    for (const l of core.luns.values()) l.router.setState(before.get(l.spec.id) ?? 'forward');
    return { dumped: false, aborted: true, ms: dumpMs, bytes: res.bytesWritten, totalBytes: res.totalBytes, pages, generation: res.generation, exit: false };
  }
  core.life.apply(res.complete ? 'dump-done' : 'hold-up-expired');
  return { dumped: res.complete, ms: dumpMs, bytes: res.bytesWritten, totalBytes: res.totalBytes, pages, generation: res.generation, exit: true };
}

/** Power is back: a dump in progress is abandoned (a power-restore at any other time changes nothing). */
export function powerRestore(core: SpCore): unknown {
  if (core.life.state === 'dumping') core.life.apply('power-back');
  return {};
}

/** What goes into the vault: every own dirty cache page and the peer's mirror copy. */
function vaultSections(core: SpCore): VaultCacheSection[] {
  const caches: VaultCacheSection[] = [];
  for (const l of core.luns.values()) {
    const pages = l.cache?.dirtyPages() ?? [];
    if (pages.length) caches.push({ lun: l.spec.id, role: 'own', pageSize: l.cache!.pageSize, pages });
  }
  for (const lun of core.peerStore.lunIds()) {
    const pages = core.peerStore.pages(lun);
    if (pages.length) caches.push({ lun, role: 'peer', pageSize: pages[0]!.data.length, pages });
  }
  return caches;
}
