/**
 * Power and battery of a chassis: power-up (boot, vault restore, serve), power failure (the SPs
 * hold I/O on battery and dump their caches), power restored mid-dump, the battery faults and
 * its recharge. Every change of power state goes through the table in ./power-state.ts.
 */
import { ignoreOnClose } from '../../errors/index.js';
import { ChassisError } from './config.js';
import type { ChassisCore, SpHandle } from './core.js';
import { dumpOutcome } from './power-state.js';
import { finishRestore, type SpRestoreResult } from './restore.js';
import { cmd, spawnSp } from './sp-supervisor.js';

/** An SP answers `power-fail` within its hold-up plus this (writing the vault, stopping). */
export const POWER_FAIL_REPLY_MARGIN_MS = 30_000;

/** Boots both SPs, restores the vaults, serves (power goes off -> restoring -> on). */
export async function powerOn(core: ChassisCore): Promise<unknown> {
  const t0 = Date.now();
  core.applyPower('power-restore');
  core.publish('power.restoring', {});
  const hs = core.both();
  try {
    for (const h of hs) h.life.apply('power-restore');
    await Promise.all(hs.map((h) => spawnSp(core, h)));
    core.ownership.spUp('A');
    core.ownership.spUp('B');
    core.ownership.failback('automatic');
    const results = await Promise.all(hs.map((h) => cmd<SpRestoreResult>(h, 'restore', { replay: core.ownership.lunsOwnedBy(h.name) })));
    const restored = await finishRestore(core, hs, results);
    core.applyPower('restore-done');
    const ms = Date.now() - t0;
    core.publish('power.on', { ms, restored });
    return { power: 'on', ms, restored };
  } catch (e) {
    // A power failure (or an SP dying) during the restore: nothing was consumed; the next
    // power-up replays the same images.
    for (const h of hs) {
      h.expectExit = true;
      h.proc?.kill('SIGKILL');
    }
    await Promise.all(hs.map((h) => h.exited));
    for (const h of hs) if (h.life.state !== 'off' && h.life.state !== 'down') h.life.apply('power-cut');
    for (const h of hs) if (h.life.state === 'down') h.life.apply('power-cut');
    core.ownership.takeOver('A');
    core.ownership.takeOver('B');
    core.applyPower('restore-interrupted');
    core.publish('power.restore-interrupted', { problem: (e as Error).message });
    throw e;
  }
}

export function powerFail(core: ChassisCore): Promise<unknown> {
  if (core.power === 'restoring') {
    // A second failure during the restore: cut the booting SPs; nothing is consumed yet (the
    // restore then ends in restore-interrupted).
    for (const h of core.both()) {
      h.expectExit = true;
      h.proc?.kill('SIGKILL');
    }
    core.publish('power.failed', { during: 'restore', holdUpMs: 0 });
    return core.exclusive(async () => ({ power: core.power, during: 'restore' }));
  }
  return core
    .exclusive(() => failAndDump(core))
    .then(async (r) => {
      if (r.power === 'on') await mirrorPowerBack(core); // power returned in the middle of the dump
      return r;
    });
}

/** Power lost while on: every SP dumps within the hold-up, unless power returns first. */
async function failAndDump(core: ChassisCore): Promise<Record<string, unknown>> {
  core.requirePower('fail power');
  const t0 = Date.now();
  core.applyPower('power-fail');
  const holdUpMs = core.battery.holdUpNowMs();
  core.publish('power.failed', { holdUpMs, battery: { ...core.battery.view() } });
  // The mirror driver goes down with the array (what it has on disk is what a crash leaves),
  // while the SPs hold host I/O and dump. Its I/O in flight on the SPs' caches ends with
  // them (power off) or goes on (power back mid-dump). The SPs of the next power-up wait
  // for the roles it finds when it reopens.
  core.routes = null;
  const lost = core.opts.dataPath.powerLost().catch((e: unknown) => core.publish('sp.error', { problem: `mirror driver at power loss: ${(e as Error).message}` }));
  const results = await Promise.all(core.both().map((h) => spPowerFail(core, h, holdUpMs)));
  if (results.some((r) => (r as { aborted?: boolean }).aborted)) {
    core.applyPower('power-restore');
    core.publish('power.on', { ms: Date.now() - t0, during: 'dump' });
    await lost;
    return { power: 'on', restoredMidDump: true, sps: results };
  }
  core.ownership.takeOver('A');
  core.ownership.takeOver('B');
  core.applyPower(dumpOutcome(holdUpMs, results));
  drainBattery(core, Math.min(holdUpMs, Date.now() - t0));
  await lost;
  core.publish('power.off', { ms: Date.now() - t0, sps: results });
  return { power: 'off', holdUpMs, ms: Date.now() - t0, sps: results };
}

/** One SP through a power failure: it dumps (or just stops), or power comes back mid-dump. */
async function spPowerFail(core: ChassisCore, h: SpHandle, holdUpMs: number): Promise<Record<string, unknown>> {
  if (!h.proc) {
    if (h.life.state === 'down') h.life.apply(holdUpMs > 0 ? 'power-fail' : 'power-cut');
    return { sp: h.name, state: 'not running' };
  }
  h.expectExit = true;
  if (holdUpMs > 0 && h.life.state === 'up') h.life.apply('power-fail');
  try {
    const r = await cmd<Record<string, unknown>>(h, 'power-fail', { holdUpMs, bytesPerSec: core.opts.sps.vaultBytesPerSec }, holdUpMs + POWER_FAIL_REPLY_MARGIN_MS);
    if (r.aborted) {
      h.expectExit = false;
      h.life.apply('power-restore');
    } else {
      await h.exited;
      if (h.life.state === 'dumping') h.life.apply(r.dumped ? 'dump-done' : 'hold-up-expired');
      else if (h.life.state !== 'off') h.life.apply('power-cut');
    }
    core.publish('sp.dump', { sp: h.name, ...r });
    return { sp: h.name, ...r };
  } catch (e) {
    await h.exited;
    if (h.life.state !== 'off') h.life.apply(h.life.state === 'dumping' ? 'crash' : 'power-cut');
    return { sp: h.name, error: (e as Error).message };
  }
}

async function mirrorPowerBack(core: ChassisCore): Promise<void> {
  if (core.power !== 'on') return;
  await core.opts.dataPath.powerBack().catch((e: unknown) => core.publish('sp.error', { problem: `mirror driver at power restore: ${(e as Error).message}` }));
}

export function powerRestore(core: ChassisCore): Promise<unknown> {
  if (core.power === 'failing') {
    // Power back in the middle of the dump: the SPs never lost memory; they abandon the dump.
    // An SP whose dump already ended stops anyway; failAndDump collects every SP's answer.
    for (const h of core.both()) if (h.proc) void ignoreOnClose(cmd(h, 'power-restore'), `restoring power mid-dump: telling SP ${h.name}`);
    core.publish('power.restored', { during: 'dump' });
    return core.exclusive(async () => ({ power: core.power, restoredMidDump: true }));
  }
  return core
    .exclusive(async () => {
      if (core.power !== 'off') throw new ChassisError('power-on', 409, `array ${core.array.name} power is ${core.power}, not off`);
      core.publish('power.restored', {});
      return powerOn(core);
    })
    .then(async (r) => {
      // Outside the exclusive section: the driver's I/O may need a takeover to finish.
      await mirrorPowerBack(core);
      return r;
    });
}

// ---- battery ----

/** Holding the SPs up for `ms` used that share of a full battery's hold-up. */
function drainBattery(core: ChassisCore, ms: number): void {
  if (core.battery.drain(ms)) core.publish('battery.charge', { charge: core.battery.charge, cause: 'hold-up', ms });
}

/**
 * Recharging with power on, one step a second. The SPs hear of it when the charge crosses a
 * threshold of the cache-mode policy (which keeps its own hysteresis) and when it is full.
 */
export function rechargeTick(core: ChassisCore): void {
  if (core.closing || core.power !== 'on') return;
  if (!core.battery.recharge(core.opts.sps.battery.rechargePerSec)) return;
  core.publish('battery.charge', { charge: core.battery.charge, cause: 'recharge' });
  void broadcastBattery(core);
}

/** Tells every serving SP the battery's state (its cache-mode policy depends on it). */
async function broadcastBattery(core: ChassisCore): Promise<void> {
  const battery = core.battery.view();
  await Promise.all(core.upSps().map((h) => cmd(h, 'battery', { battery }).catch((e: unknown) => core.publish('sp.error', { sp: h.name, problem: `battery state: ${(e as Error).message}` }))));
}

export function batteryFail(core: ChassisCore, undetected: boolean): Promise<unknown> {
  return core.exclusive(async () => {
    core.battery.failed = true;
    core.battery.detected = !undetected;
    core.publish('battery.failed', { detected: !undetected });
    await broadcastBattery(core);
    return { battery: core.battery.status() };
  });
}

export function batteryRepair(core: ChassisCore): Promise<unknown> {
  return core.exclusive(async () => {
    core.battery.failed = false;
    core.battery.detected = true;
    core.publish('battery.repaired', {});
    await broadcastBattery(core);
    return { battery: core.battery.status() };
  });
}

export function batteryCharge(core: ChassisCore, charge: number): Promise<unknown> {
  if (!Number.isFinite(charge) || charge < 0 || charge > 100) return Promise.reject(new ChassisError('invalid-argument', 400, `battery charge must be 0..100, not ${charge}`));
  return core.exclusive(async () => {
    core.battery.charge = charge;
    core.publish('battery.charge', { charge });
    await broadcastBattery(core);
    return { battery: core.battery.status() };
  });
}
