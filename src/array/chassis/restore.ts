/**
 * Bringing booted SPs into service: their vault-restore results (LUNs whose dirty cache was
 * lost become cache dirty), the commit of the restore, `serve`, and connecting the peers.
 */
import { peerOf } from '../sp/index.js';
import type { ChassisCore, SpHandle } from './core.js';
import { cmd } from './sp-supervisor.js';

/** What an SP's `restore` command answers. */
export interface SpRestoreResult {
  replayed: Record<string, number>;
  lost: number[];
  vaults: Record<string, string>;
  ms: number;
  found: boolean;
}

/** Finishes the restore of `hs` (both SPs, or one that restores alone) and serves. */
export async function finishRestore(core: ChassisCore, hs: SpHandle[], results: SpRestoreResult[]): Promise<unknown> {
  const summary: Record<string, unknown> = {};
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i]!;
    const r = results[i]!;
    if (r.found && h.life.state === 'booting') h.life.apply('vault-found');
    summary[h.name] = { replayedPages: r.replayed, ms: r.ms, vaults: r.vaults };
    core.publish('sp.restore', { sp: h.name, replayedPages: r.replayed, lost: r.lost, ms: r.ms, vaults: r.vaults });
    markLost(core, r);
  }
  await core.saveState();
  await Promise.all(hs.map((h) => cmd(h, 'commit-restore')));
  const dirty = Object.fromEntries(core.cacheDirty);
  const served = await Promise.all(hs.map((h) => cmd<{ port: number }>(h, 'serve', { owned: core.ownership.lunsOwnedBy(h.name), cacheDirty: dirty })));
  hs.forEach((h, i) => {
    core.rememberPort(h, served[i]!.port);
    h.life.apply(h.life.state === 'restoring' ? 'restore-done' : 'booted');
  });
  if (hs.length === 2) await Promise.all(hs.map((h) => cmd(h, 'peer', { up: true })));
  else {
    const peer = core.sp[peerOf(hs[0]!.name)];
    if (peer.life.state === 'up') await Promise.all([cmd(hs[0]!, 'peer', { up: true }), cmd(peer, 'peer', { up: true })]);
  }
  return summary;
}

/** LUNs that lost dirty cache (no vault image holds it) become cache dirty. */
function markLost(core: ChassisCore, r: SpRestoreResult): void {
  for (const lun of r.lost) {
    if (core.cacheDirty.has(lun)) continue;
    const why = `dirty write cache lost: no complete vault image holds it (power failed without battery hold-up, or every dump that held it was torn: cut short by the hold-up or by an SP crash) (${Object.entries(r.vaults).map(([k, v]) => `SP ${k} vault: ${v}`).join('; ')})`;
    core.cacheDirty.set(lun, why);
    core.publish('lun.cache-dirty', { lun, reason: why });
  }
}
