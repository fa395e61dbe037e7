/**
 * Drives one volume set to an operation's goal: read the set from its arrays, ask the pure
 * decision (../rg/storage-decision.ts), act on the arrays' APIs, read again, until the decision is
 * `ready`, a refusal, or the storage timeout. Every change of decision is an event.
 */
import { ApiClient } from '../../control/index.js';
import type { LabState } from '../../cli/lab.js';
import { readState } from '../../cli/lab/state.js';
import { arrayClient, labVolumeSets, readVolumeSet, siteOf, type LabVolumeSet } from '../client.js';
import { storageDecision, type SecondaryConsistency, type StorageDecision, type StorageGoal } from '../rg/storage-decision.js';
import type { VsReading } from '../vs-state.js';

const POLL_MS = 300;
const CONSISTENT = new Set(['SYNCHRONIZED', 'CONSISTENT']);

/** A step that cannot reach its goal: a stable code and why. */
export class StepFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface StorageContext {
  lab: string;
  emit(type: string, details: Record<string, unknown>): void;
  /** an asynchronous group switched to synchronous for a swap: its mode, to restore after it (persisted by the caller) */
  remember(group: string, mode: string): void;
  /** the mode to give back to a group once the swap is done */
  restoreMode?: string;
}

export async function labState(lab: string): Promise<LabState> {
  const s = await readState(lab);
  if (!s) throw new StepFailure('lab-not-running', `lab ${lab} is not running (no state file)`);
  return s;
}

export function volumeSet(lab: LabState, name: string): LabVolumeSet {
  const set = labVolumeSets(lab).find((s) => s.name === name);
  if (!set) throw new StepFailure('not-found', `lab ${lab.lab} has no volume set ${name}`);
  return set;
}

function client(lab: LabState, array: string): ApiClient {
  const c = arrayClient(lab, array);
  if (!(c instanceof ApiClient)) throw new StepFailure(c.error, c.message);
  return c;
}

/** The set's array at `site` (its image there). */
export function arrayAt(lab: LabState, set: LabVolumeSet, site: string): string {
  const a = set.arrays.find((x) => siteOf(lab, x) === site);
  if (!a) throw new StepFailure('no-image-at-site', `${set.kind} ${set.name} has no image at site ${site}`);
  return a;
}

/** Is the image (every member's) at `site` a point in time, as its own array says? */
export async function secondaryConsistency(lab: LabState, set: LabVolumeSet, site: string): Promise<SecondaryConsistency> {
  try {
    const c = client(lab, arrayAt(lab, set, site));
    const names = set.kind === 'mirror' ? [set.name] : (await c.getGroup(set.name)).members.map((m) => m.name);
    const views = await Promise.all(names.map((n) => c.getMirror(n)));
    const ok = views.every((v) => v.local.role === 'primary' || CONSISTENT.has(v.record.images.find((i) => i.imageId === v.local.imageId)?.state ?? ''));
    return ok ? 'consistent' : 'inconsistent';
  } catch {
    return 'unknown';
  }
}

async function act(lab: LabState, set: LabVolumeSet, d: StorageDecision, goal: StorageGoal, ctx: StorageContext): Promise<void> {
  const primary = (r: string | null) => client(lab, r ?? set.arrays[0]!);
  const isMirror = set.kind === 'mirror';
  switch (d.action) {
    case 'resume':
      await primary(null).resumeGroup(set.name);
      return;
    case 'switch-sync': {
      const c = primary(null);
      const g = await c.getGroup(set.name);
      ctx.remember(set.name, g.record.mode);
      await c.setGroupMode(set.name, 'synchronous');
      return;
    }
    case 'promote':
    case 'promote-forced':
    case 'promote-from-snapshot': {
      const c = client(lab, arrayAt(lab, set, goal.site));
      const how = { force: d.action === 'promote-forced', fromSnapshot: d.action === 'promote-from-snapshot' };
      await (isMirror ? c.promoteMirror(set.name, how) : c.promoteGroup(set.name, how));
      return;
    }
    default:
      throw new Error(`no action for ${d.action}`);
  }
}

/** The set's current primary array in a reading (promote and friends act elsewhere). */
function primaryOf(set: LabVolumeSet, r: VsReading): LabVolumeSet {
  return r.primaryArray ? { ...set, arrays: [r.primaryArray, ...set.arrays.filter((a) => a !== r.primaryArray)] } : set;
}

/** Brings `name` to `goal` within `timeoutMs`; the last reading when ready, else throws StepFailure. */
export async function driveSet(outer: StorageContext, name: string, goal: StorageGoal, timeoutMs: number): Promise<VsReading> {
  const ctx: StorageContext = { ...outer };
  ctx.remember = (group, mode) => {
    outer.remember(group, mode);
    ctx.restoreMode = mode;
  };
  const end = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const lab = await labState(ctx.lab);
    const set = volumeSet(lab, name);
    const r = await readVolumeSet(lab, set);
    const secondary = goal.op === 'recover' && r.productionSite !== goal.site ? await secondaryConsistency(lab, set, goal.site) : 'unknown';
    const d = storageDecision(r, goal, secondary);
    const key = `${d.action}/${d.reason}`;
    if (key !== last) ctx.emit('automation.storage-decision', { set: name, goal: goal.op, site: goal.site, action: d.action, reason: d.reason, detail: d.detail, state: r.state });
    last = key;
    if (d.action === 'ready') return await restore(ctx, lab, primaryOf(set, r), r);
    if (d.action === 'refuse') throw new StepFailure(d.reason, d.detail);
    if (Date.now() > end) throw new StepFailure('storage-timeout', `${d.detail} (not ready within ${Math.round(timeoutMs / 1000)} s)`);
    if (d.action !== 'wait') {
      try {
        await act(lab, primaryOf(set, r), d, goal, ctx);
        ctx.emit('automation.storage-action', { set: name, action: d.action, reason: d.reason });
      } catch (e) {
        // the arrays refuse what is unsafe; read again and let the decision see why (or time out)
        ctx.emit('automation.storage-action-failed', { set: name, action: d.action, error: (e as Error).message });
      }
    }
    await new Promise((res) => setTimeout(res, POLL_MS));
  }
}

/** A group switched to synchronous for the swap gets its mode back on its new primary. */
async function restore(ctx: StorageContext, lab: LabState, set: LabVolumeSet, r: VsReading): Promise<VsReading> {
  if (!ctx.restoreMode || set.kind !== 'group' || ctx.restoreMode === 'synchronous') return r;
  await client(lab, set.arrays[0]!).setGroupMode(set.name, ctx.restoreMode as 'asynchronous');
  ctx.emit('automation.storage-action', { set: set.name, action: 'restore-mode', mode: ctx.restoreMode });
  return r;
}

/**
 * A set this site recovered by force comes back in split brain when the lost site acknowledged
 * writes the recovery never saw (between its link's failure and its death). The recovered side
 * is the production now: it survives, and the returning side's divergent regions are rewritten
 * from it. Returns what each member discarded.
 */
export async function resolveForRecoveredSide(lab: LabState, set: LabVolumeSet, site: string): Promise<{ mirror: string; discardedRegions: number; discardedBytes: number }[]> {
  const array = arrayAt(lab, set, site);
  const c = client(lab, array);
  const names = set.kind === 'mirror' ? [set.name] : (await c.getGroup(set.name)).members.map((m) => m.name);
  const out: { mirror: string; discardedRegions: number; discardedBytes: number }[] = [];
  for (const name of names) {
    const v = await c.getMirror(name);
    if (!v.splitBrain) continue;
    const remote = v.images.map((i) => i.splitBrain?.remote).find((x) => x !== undefined);
    await c.resolveSplitBrain(name, { survivor: array });
    out.push({ mirror: name, discardedRegions: remote?.regions ?? 0, discardedBytes: remote?.bytes ?? 0 });
  }
  return out;
}

/** The decision for every set now, before anything is changed: an operation with a refusal among them is refused whole. */
export async function preflight(labName: string, sets: string[], goal: StorageGoal): Promise<(StorageDecision & { set: string; state: string })[]> {
  const lab = await labState(labName);
  return Promise.all(
    sets.map(async (name) => {
      const set = volumeSet(lab, name);
      const r = await readVolumeSet(lab, set);
      const secondary = goal.op === 'recover' && r.productionSite !== goal.site ? await secondaryConsistency(lab, set, goal.site) : 'unknown';
      return { set: name, state: r.state, ...storageDecision(r, goal, secondary) };
    }),
  );
}
