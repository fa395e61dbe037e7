/**
 * The vault at boot: replaying both SPs' vault images to the image files, committing the
 * restore (images consumed, markers cleared), and a rejoining SP's superseded vault.
 */
import { promises as fsp } from 'node:fs';
import type { MirrorPage } from '../cache/index.js';
import { Vault, type VaultImage } from '../vault/index.js';
import type { SpCore, SpLun } from './core.js';
import { readMarkers } from './markers.js';
import { markerPath, vaultDir } from './protocol.js';

/**
 * Boot after power-up (or when both SPs were down): loads both SPs' vaults (read-only),
 * replays to the image files every cached page of the LUNs in `replay` (per page the newest
 * generation from either vault), and works out which of them lost dirty cache: a LUN marked
 * "may hold dirty cache" by an SP, when neither vault holds a fresh image.
 */
export async function restore(core: SpCore, replay: number[]): Promise<unknown> {
  const t0 = Date.now();
  const reports: Record<string, unknown> = {};
  const fresh: Record<string, VaultImage | null> = {};
  for (const who of ['A', 'B'] as const) {
    const v = new Vault(vaultDir(core.init.dir, who), who);
    try {
      const r = await v.load();
      reports[who] = r.summary;
      fresh[who] = r.image && !r.newerCopyLost ? r.image : null;
      if (r.image && r.newerCopyLost) reports[who] += ' (a newer dump was lost)';
    } catch (e) {
      reports[who] = `unreadable: ${(e as Error).message}`;
      fresh[who] = null;
    }
  }
  const images = [fresh.A ?? null, fresh.B ?? null];
  const anyImage = images.some((img) => img !== null);
  if (anyImage) core.life.apply('vault-found');
  const marks = new Set<number>([...(await readMarkers(markerPath(core.init.dir, 'A'))), ...(await readMarkers(markerPath(core.init.dir, 'B')))]);
  const replayed: Record<string, number> = {};
  const lost: number[] = [];
  for (const lun of replay) {
    const l = core.luns.get(lun);
    if (!l) continue;
    replayed[lun] = await replayLun(l, images);
    if (marks.has(lun) && !anyImage) lost.push(lun);
  }
  return { replayed, lost, vaults: reports, ms: Date.now() - t0, found: anyImage };
}

/** Writes the newest copy of every page of the LUN found in the images; returns how many. */
async function replayLun(l: SpLun, images: (VaultImage | null)[]): Promise<number> {
  const lun = l.spec.id;
  const best = new Map<number, MirrorPage>();
  for (const img of images) {
    for (const sec of img?.caches ?? []) {
      if (sec.lun !== lun) continue;
      for (const p of sec.pages) {
        const cur = best.get(p.index);
        if (!cur || cur.generation < p.generation) best.set(p.index, p);
      }
    }
  }
  for (const p of [...best.values()].sort((x, y) => x.index - y.index)) {
    const off = p.index * p.data.length;
    if (off >= l.spec.size) continue;
    await l.store.write(off, p.data.subarray(0, Math.min(p.data.length, l.spec.size - off)));
  }
  if (best.size) await l.store.flush();
  return best.size;
}

/** After every SP replayed: mark this SP's vault images consumed and clear its markers. */
export async function commitRestore(core: SpCore): Promise<unknown> {
  const gen = await consumeVault(core);
  core.markers.clear();
  await core.markers.persist();
  if (core.life.state === 'restoring') core.life.apply('restore-done');
  return { consumed: gen };
}

/** Rejoining while the peer serves: its cache and vault were superseded by the peer's takeover. */
export async function rejoin(core: SpCore): Promise<unknown> {
  const gen = await consumeVault(core);
  core.markers.clear();
  await core.markers.persist();
  core.peerStore.clear();
  return { consumed: gen };
}

async function consumeVault(core: SpCore): Promise<number> {
  const r = await core.vault.load();
  let gen = r.consumedGeneration;
  for (const c of r.copies) if (c.generation !== undefined && c.generation > gen) gen = c.generation;
  await core.vault.markConsumed(gen);
  // A copy whose header is unreadable has no generation to consume: move it aside.
  for (const c of r.copies) {
    if ((c.status === 'torn' || c.status === 'corrupt') && c.generation === undefined) {
      await fsp.rename(c.path, `${c.path}.bad`).catch((e: unknown) => core.event('sp.error', { problem: `moving the unreadable vault copy ${c.path} aside: ${(e as Error).message}` }));
    }
  }
  return gen;
}
