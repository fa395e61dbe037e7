/**
 * Cache management of an SP: the CMI link to the peer SP (which write-back mirroring needs)
 * and the cache-mode policy (../sp/policy.ts) applied to every cache whenever one of its
 * inputs changes (peer, battery, vault).
 */
import { CmiCacheMirror, CmiClient } from '../cmi/index.js';
import { cacheModePolicy } from '../sp/index.js';
import type { CacheMode, WriteCache } from '../cache/index.js';
import type { SpCore } from './core.js';
import { cmiSocketPath } from './protocol.js';

/** How long an SP keeps trying to reach its peer's CMI socket. */
export const PEER_CONNECT_DEADLINE_MS = 10_000;
/** Pause between attempts. */
const PEER_CONNECT_RETRY_MS = 50;

export async function connectPeer(core: SpCore): Promise<void> {
  core.peerWanted = true;
  if (core.client && !core.client.closed) return;
  const deadline = Date.now() + PEER_CONNECT_DEADLINE_MS;
  let lastErr: Error | null = null;
  while (Date.now() < deadline && core.peerWanted) {
    try {
      const c = await CmiClient.connect(cmiSocketPath(core.init.dir, core.peer), { array: core.init.array, from: core.sp, bootId: core.bootId });
      core.client = c;
      c.on('close', () => {
        if (core.client !== c) return;
        core.client = null;
        core.event('cmi.down', { peer: core.peer });
        void reevaluate(core);
      });
      core.event('cmi.up', { peer: core.peer });
      void reevaluate(core);
      return;
    } catch (e) {
      lastErr = e as Error;
      await new Promise((r) => setTimeout(r, PEER_CONNECT_RETRY_MS));
    }
  }
  throw new Error(`SP ${core.sp}: cannot connect CMI to SP ${core.peer}: ${lastErr?.message ?? 'cancelled'}`);
}

export function disconnectPeer(core: SpCore): void {
  core.peerWanted = false;
  const c = core.client;
  core.client = null;
  c?.close();
  void reevaluate(core);
}

/** Re-runs the cache-mode policy and applies it to every cache (serialized; never rejects). */
export function reevaluate(core: SpCore): Promise<void> {
  const run = async () => {
    const d = cacheModePolicy({
      previous: core.decision.mode,
      peerUp: core.peerUp,
      batteryFailed: core.battery.failed && core.battery.detected,
      batteryCharge: core.battery.charge,
      vaultUsable: core.vaultUsable,
      writeThroughConfigured: core.init.cache.writeThrough,
      thresholds: core.battery.thresholds,
    });
    const prev = core.decision;
    core.decision = d;
    await applyMode(core);
    if (d.mode !== prev.mode || d.reason !== prev.reason) core.event('sp.cache-mode', { from: prev.mode, to: d.mode, reason: d.reason, detail: d.detail });
  };
  const p = core.policyChain.then(run, run);
  core.policyChain = p.catch((e: unknown) => core.event('sp.error', { problem: `cache mode: ${(e as Error).message}` }));
  return core.policyChain;
}

/**
 * Applies the current decision to every cache (or only `cacheOnly`): with the peer up, attach
 * its mirror (a cache whose attach fails stays write-through); without it, detach.
 */
export async function applyMode(core: SpCore, cacheOnly?: WriteCache): Promise<void> {
  const caches = cacheOnly ? [cacheOnly] : core.caches();
  const mode: CacheMode = core.decision.mode;
  const client = core.client;
  for (const c of caches) {
    if (client && !client.closed) {
      if (!c.mirror) {
        try {
          await c.attachMirror(new CmiCacheMirror(client));
        } catch {
          // attachMirror reported it (cache.mirror-error); the cache goes on without the peer.
          c.setMode('write-through');
          continue;
        }
      }
    } else if (c.mirror) {
      c.detachMirror();
    }
    c.setMode(c.mirror ? mode : 'write-through');
  }
}
