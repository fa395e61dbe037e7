/**
 * Freeze (issue 14): every member of a volume set stops replicating at one write boundary,
 * consistent across members. A plain mirror: its secondaries are fractured (an operator fracture:
 * nothing resynchronizes it by itself). An asynchronous or near-synchronous group: its sender is
 * paused; the secondaries keep the journal through the last batch they applied, one sequence
 * number for every member. A synchronous group is refused (its writes take the mirrors' own path:
 * pausing stops nothing, and fracturing the members one by one is no single boundary).
 * Armed freeze (by itself when a remote write fails) is not here.
 */
import { ApiClient } from '../control/index.js';
import type { LabState } from '../cli/lab.js';
import { arrayClient, readVolumeSet, type LabVolumeSet, type ReadOptions } from './client.js';
import type { VsReading } from './vs-state.js';

export class FreezeRefused extends Error {
  constructor(
    readonly code: 'unknown-state' | 'sync-group' | 'unreachable',
    message: string,
  ) {
    super(message);
    this.name = 'FreezeRefused';
  }
}

/** A secondary array's copy of a frozen group: the last journal record it holds (null: no receiver open). */
export interface FrozenCopy {
  array: string;
  appliedThrough: number | null;
  /** what the primary's sender to it last saw acknowledged */
  ackedThrough: number | null;
}

export interface FreezeResult {
  set: string;
  kind: 'mirror' | 'group';
  /** fractured (a mirror), paused (a group), or nothing to do (frozen already) */
  action: 'fractured' | 'paused' | 'already-frozen';
  primaryArray: string;
  /** a mirror: the images fractured now */
  fractured?: string[];
  /** a group: where each secondary stopped, the same record for every member */
  boundary?: { members: string[]; copies: FrozenCopy[]; settled: boolean };
  before: VsReading;
  after: VsReading;
}

/** How long a freeze waits for the batch in flight when the group was paused to be acknowledged. */
const SETTLE_MS = 5000;

function primaryClient(lab: LabState, before: VsReading, o: ReadOptions): ApiClient {
  if (!before.primaryArray) throw new FreezeRefused('unknown-state', `volume set ${before.set} is ${before.state} (${before.reason}: ${before.detail}): no primary to freeze at`);
  const c = arrayClient(lab, before.primaryArray, { ...o, deadlineMs: 30_000 });
  if (!(c instanceof ApiClient)) throw new FreezeRefused('unreachable', c.message);
  return c;
}

export async function freezeVolumeSet(lab: LabState, set: LabVolumeSet, o: ReadOptions = {}): Promise<FreezeResult> {
  const before = await readVolumeSet(lab, set, o);
  const c = primaryClient(lab, before, o);
  const primaryArray = before.primaryArray!;
  const done = async (r: Omit<FreezeResult, 'set' | 'kind' | 'primaryArray' | 'before' | 'after'>): Promise<FreezeResult> => ({ set: set.name, kind: set.kind, primaryArray, ...r, before, after: await readVolumeSet(lab, set, o) });
  if (set.kind === 'mirror') {
    const view = await c.getMirror(set.name);
    const open = view.images.filter((i) => i.role === 'secondary' && !i.fractured).map((i) => i.imageId);
    if (!open.length) return done({ action: 'already-frozen', fractured: [] });
    await c.fractureMirror(set.name);
    return done({ action: 'fractured', fractured: open });
  }
  const g = await c.getGroup(set.name);
  if (g.record.mode === 'synchronous')
    throw new FreezeRefused('sync-group', `group ${set.name} is synchronous: a freeze pauses a journal, and a synchronous group has none; switch it first ("sanbox group mode ${set.name} asynchronous"), then freeze`);
  const action = g.record.paused ? 'already-frozen' : 'paused';
  if (!g.record.paused) await c.pauseGroup(set.name);
  const boundary = await settle(lab, set, c, primaryArray, o);
  return done({ action, boundary: { members: g.members.map((m) => m.name), ...boundary } });
}

/** Waits (a few seconds at most) until every secondary applied what its sender saw acknowledged. */
async function settle(lab: LabState, set: LabVolumeSet, primary: ApiClient, primaryArray: string, o: ReadOptions): Promise<{ copies: FrozenCopy[]; settled: boolean }> {
  const end = Date.now() + SETTLE_MS;
  for (;;) {
    const copies = await frozenCopies(lab, set, primary, primaryArray, o);
    const settled = copies.every((x) => x.appliedThrough !== null && x.appliedThrough === x.ackedThrough);
    if (settled || Date.now() > end) return { copies, settled };
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function frozenCopies(lab: LabState, set: LabVolumeSet, primary: ApiClient, primaryArray: string, o: ReadOptions): Promise<FrozenCopy[]> {
  const g = await primary.getGroup(set.name);
  const secondaries = set.arrays.filter((a) => a !== primaryArray);
  return Promise.all(
    secondaries.map(async (array) => {
      const ackedThrough = g.senders.find((s) => s.array === array)?.ackedThrough ?? null;
      const c = arrayClient(lab, array, o);
      if (!(c instanceof ApiClient)) return { array, appliedThrough: null, ackedThrough };
      try {
        const r = (await c.getGroup(set.name)).receiver;
        return { array, appliedThrough: r ? r.nextExpected - 1 : null, ackedThrough };
      } catch {
        return { array, appliedThrough: null, ackedThrough };
      }
    }),
  );
}
