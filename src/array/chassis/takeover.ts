/**
 * Ownership changes run by the chassis: trespass and failback (quiesce and destage on the old
 * owner, move, acquire on the new one), takeover of a crashed SP's LUNs by its peer, SP crash
 * and restart faults, and the recovery of a cache-dirty LUN. The order of the steps is the
 * data-safety order written down in ../sp/index.ts.
 */
import { peerOf, type SpName } from '../sp/index.js';
import { ChassisError } from './config.js';
import type { ChassisCore, SpHandle } from './core.js';
import { finishRestore, type SpRestoreResult } from './restore.js';
import { cmd, spawnSp } from './sp-supervisor.js';

/** How long `spCrash` waits for the peer's takeover before answering without it. */
export const TAKEOVER_WAIT_MS = 30_000;

/** An SP died unasked: its peer takes over its LUNs from the mirror copy of its cache. */
export function onSpCrash(core: ChassisCore, h: SpHandle, code: number | null, signal: NodeJS.Signals | null, detectedAt: number): void {
  const st = h.life.state;
  if (st === 'up' || st === 'booting' || st === 'restoring' || st === 'dumping') h.life.apply('crash');
  core.publish('sp.crashed', { sp: h.name, code, signal });
  const survivor = core.sp[peerOf(h.name)];
  void core.exclusive(async () => {
    const moves = core.ownership.takeOver(h.name);
    const luns = moves.filter((m) => m.to === survivor.name).map((m) => m.lun);
    if (survivor.life.state !== 'up') {
      core.publish('sp.takeover-impossible', { sp: h.name, reason: `peer SP ${survivor.name} is ${survivor.life.state}` });
      return;
    }
    try {
      const r = await cmd<{ ms: number; pages: number }>(survivor, 'takeover', { luns });
      const ms = Date.now() - detectedAt;
      core.lastTakeover = { sp: survivor.name, failed: h.name, luns, ms, spMs: r.ms, pages: r.pages, at: new Date().toISOString() };
      core.publish('sp.takeover', core.lastTakeover);
      for (const w of core.takeoverWaiters.splice(0)) w(core.lastTakeover);
    } catch (e) {
      core.publish('sp.error', { sp: survivor.name, problem: `takeover failed: ${(e as Error).message}` });
    }
  });
}

/**
 * SIGKILL of an SP process; resolves once its peer has taken over its LUNs. During a power-fail
 * dump it kills the dumping SP at once (see crashDuringDump).
 */
export function spCrash(core: ChassisCore, spName: string): Promise<unknown> {
  const h = core.checkSp(spName);
  // The power failure holds the queue until the dump ends: a crash meant for the dump cannot wait.
  if (core.power === 'failing') return Promise.resolve().then(() => crashDuringDump(core, h));
  return core
    .exclusive(async () => {
      if (core.power === 'off') throw new ChassisError('power-off', 409, `cannot crash an SP: array ${core.array.name} power is off: the SPs are not running`);
      core.requirePower('crash an SP');
      if (h.life.state !== 'up' || !h.proc) throw new ChassisError('sp-down', 409, `SP ${h.name} is ${h.life.state}, not running`);
      const pid = h.pid;
      const peerUp = core.sp[peerOf(h.name)].life.state === 'up';
      const took = peerUp ? new Promise<Record<string, unknown>>((r) => core.takeoverWaiters.push(r)) : null;
      h.proc.kill('SIGKILL');
      return { sp: h.name, pid, signal: 'SIGKILL', took };
    })
    .then(async (r) => {
      const { took, ...rest } = r;
      let timer: NodeJS.Timeout | undefined;
      const t = took ? await Promise.race([took, new Promise<null>((res) => (timer = setTimeout(() => res(null), TAKEOVER_WAIT_MS)))]) : null;
      clearTimeout(timer); // a pending timer would keep the process alive for 30 s after it closed
      return { ...rest, takeover: t };
    });
}

/**
 * An SP killed while it dumps its cache on battery. Nothing is taken over (the power is
 * failing: no SP serves). Its dump stops where it is: the vault copy is a strict prefix, torn,
 * and never replayed; the power failure it belongs to ends torn (./power.ts, dumpOutcome). At
 * power-restore the peer's vault, whose dump holds the mirror of this SP's dirty pages, is
 * replayed; a LUN whose dirty cache no complete vault holds goes cache dirty.
 */
function crashDuringDump(core: ChassisCore, h: SpHandle): Record<string, unknown> {
  if (!h.proc || h.life.state !== 'dumping') {
    throw new ChassisError('sp-down', 409, `SP ${h.name} is ${h.life.state}, not dumping: the power of array ${core.array.name} is failing and the SP ${h.proc ? 'is not dumping' : 'has stopped'}`);
  }
  const pid = h.pid;
  h.proc.kill('SIGKILL');
  core.publish('sp.crashed', { sp: h.name, code: null, signal: 'SIGKILL', during: 'dump' });
  return { sp: h.name, pid, signal: 'SIGKILL', duringDump: true, takeover: null };
}

/** Boots a crashed SP: it drops its superseded cache/vault, then gets LUNs back per failback. */
export function spRestart(core: ChassisCore, spName: string): Promise<unknown> {
  const h = core.checkSp(spName);
  return core.exclusive(async () => {
    core.requirePower('restart an SP');
    if (h.life.state !== 'down') throw new ChassisError('sp-up', 409, `SP ${h.name} is ${h.life.state}; only a down SP can be restarted`);
    const t0 = Date.now();
    const peer = core.sp[peerOf(h.name)];
    h.life.apply('boot');
    await spawnSp(core, h);
    if (peer.life.state === 'up') return rejoin(core, h, peer, t0);
    // Both SPs were down: this one restores everything alone.
    core.ownership.spUp(h.name);
    const r = await cmd<SpRestoreResult>(h, 'restore', { replay: core.ownership.lunsOwnedBy(h.name) });
    const restored = await finishRestore(core, [h], [r]);
    return { sp: h.name, pid: h.pid, port: h.port, ms: Date.now() - t0, restored };
  });
}

/** A restarted SP joins its serving peer, then gets its LUNs back per the failback policy. */
async function rejoin(core: ChassisCore, h: SpHandle, peer: SpHandle, t0: number): Promise<unknown> {
  const rj = await cmd<{ consumed: number }>(h, 'rejoin');
  core.ownership.spUp(h.name);
  const served = await cmd<{ port: number }>(h, 'serve', { owned: [], cacheDirty: Object.fromEntries(core.cacheDirty) });
  core.rememberPort(h, served.port);
  h.life.apply('booted');
  await Promise.all([cmd(h, 'peer', { up: true }), cmd(peer, 'peer', { up: true })]);
  core.publish('sp.rejoined', { sp: h.name, supersededVaultGeneration: rj.consumed, ms: Date.now() - t0 });
  let failback: unknown = [];
  const policy = core.opts.sps.failback;
  if (policy === 'automatic') {
    const pending = core.ownership.failbackPending().filter((l) => core.ownership.defaultOwner(l) === h.name);
    failback = await moveLuns(core, pending, h.name, 'failback');
  } else {
    core.publish('sp.failback-pending', { sp: h.name, luns: core.ownership.failbackPending(), policy: 'manual' });
  }
  return { sp: h.name, pid: h.pid, port: h.port, ms: Date.now() - t0, failback, failbackPolicy: policy };
}

export function trespass(core: ChassisCore, ref: string | number, to?: string): Promise<unknown> {
  return core.exclusive(async () => {
    core.requirePower('trespass');
    const lun = core.findLun(ref);
    const from = core.ownership.owner(lun.id);
    const target = to === undefined ? (from ? peerOf(from) : core.ownership.defaultOwner(lun.id)) : core.checkSp(to).name;
    if (core.sp[target].life.state !== 'up') throw new ChassisError('sp-down', 409, `cannot trespass LUN ${lun.name} to SP ${target}: SP ${target} is ${core.sp[target].life.state}`);
    if (core.cacheDirty.has(lun.id)) throw new ChassisError('cache-dirty', 409, `LUN ${lun.name} is cache dirty; recover it first`);
    if (from === target) return { lun: lun.id, name: lun.name, from, to: target, moved: false };
    const [r] = await moveLuns(core, [lun.id], target, 'trespass');
    return { lun: lun.id, name: lun.name, ...r, moved: true };
  });
}

/** Quiesce + destage on the old owner, move ownership, build the cache on the new owner, resume. */
async function moveLuns(core: ChassisCore, luns: number[], to: SpName, kind: 'trespass' | 'failback'): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const target = core.sp[to];
  for (const lun of luns) {
    const t0 = Date.now();
    const from = core.ownership.owner(lun);
    const old = from ? core.sp[from] : null;
    let released: { destagedBytes: number; ms: number } = { destagedBytes: 0, ms: 0 };
    if (old) {
      try {
        released = await cmd(old, 'release', { lun });
      } catch (e) {
        // The LUN stays where it was: the old owner serves it again.
        await cmd(old, 'acquire', { lun }).catch((e2: unknown) => core.publish('sp.error', { sp: old.name, problem: `taking LUN ${lun} back after a failed trespass: ${(e2 as Error).message}` }));
        throw new ChassisError('io', 500, `trespass of LUN ${lun}: SP ${old.name} could not destage: ${(e as Error).message}`);
      }
    }
    if (kind === 'failback') core.ownership.failbackLun(lun);
    else core.ownership.trespass(lun, to);
    await cmd(target, 'acquire', { lun });
    if (old) await cmd(old, 'forward', { lun });
    const ms = Date.now() - t0;
    const rec = { lun, from, to, destagedBytes: released.destagedBytes, quiesceMs: released.ms, ms };
    core.publish(kind === 'trespass' ? 'lun.trespassed' : 'lun.failed-back', rec);
    out.push(rec);
  }
  return out;
}

/** Clears a LUN's cache-dirty state, accepting the loss of its cached writes. */
export function recover(core: ChassisCore, ref: string | number, acceptDataLoss: boolean): Promise<unknown> {
  return core.exclusive(async () => {
    const lun = core.findLun(ref);
    if (!core.cacheDirty.has(lun.id)) throw new ChassisError('not-cache-dirty', 409, `LUN ${lun.name} is not cache dirty; nothing to recover`);
    if (!acceptDataLoss) throw new ChassisError('invalid-argument', 400, `recovering LUN ${lun.name} accepts the loss of its cached writes: pass --accept-data-loss`);
    const reason = core.cacheDirty.get(lun.id);
    core.cacheDirty.delete(lun.id);
    await core.saveState();
    const owner = core.ownership.owner(lun.id);
    await Promise.all(core.upSps().map((h) => cmd(h, 'cache-dirty', { lun: lun.id, on: false, owner })));
    core.publish('lun.recovered', { lun: lun.id, name: lun.name, dataLossAccepted: true, reason });
    return { lun: lun.id, name: lun.name, recovered: true };
  });
}
