/** How a clone looks from outside: its status view, and the reasons its guards give. */
import type { CloneEntry } from './entry.js';
import { sourceExport, type CloneState, type CloneView } from './types.js';

function stateOf(e: CloneEntry, readOnly: boolean): CloneState {
  const rec = e.rec;
  if (e.finishing) return 'copying';
  if (rec.state !== 'copying') return rec.state;
  if (rec.error || e.copy?.broken || !e.copy) return 'failed';
  return readOnly ? 'paused' : 'copying';
}

export function cloneView(e: CloneEntry, readOnly: boolean): CloneView {
  const rec = e.rec;
  const state = stateOf(e, readOnly);
  const copiedBytes = rec.state === 'completed' || e.finishing ? rec.size : (e.copy?.map.copiedBytes ?? 0);
  const measured = e.copier?.active ? e.copier.measuredBytesPerSec : undefined;
  const eta = state === 'copying' ? Math.ceil((rec.size - copiedBytes) / (measured || rec.rateBytesPerSec)) : undefined;
  return {
    name: rec.name,
    ...(rec.lun !== undefined ? { lun: rec.lun } : {}),
    state,
    source: { ...rec.source, export: sourceExport(rec.source) },
    totalBytes: rec.size,
    copiedBytes,
    percent: rec.size > 0 ? Math.floor((copiedBytes * 1000) / rec.size) / 10 : 100,
    regionSize: rec.regionSize,
    rateBytesPerSec: rec.rateBytesPerSec,
    ...(measured !== undefined ? { measuredBytesPerSec: measured } : {}),
    ...(eta !== undefined ? { etaSec: eta } : {}),
    created: rec.created,
    ...(rec.completed && !e.finishing ? { completed: rec.completed } : {}),
    ...(rec.copyMs !== undefined && !e.finishing ? { copyMs: rec.copyMs } : {}),
    ...(rec.error ?? e.copy?.broken ? { error: rec.error ?? e.copy?.broken } : {}),
  };
}

/** "still copying, 42% copied" as the guards say it. */
export function progressText(e: CloneEntry): string {
  const v = cloneView(e, false);
  if (v.state === 'creating') return 'being created';
  if (v.state === 'failed') return `its copy stopped on an error at ${v.percent}% (sanbox clone resume ${v.name})`;
  return `still copying, ${v.percent}% copied`;
}

/** Why a snapshot action is refused because of clone `e`, or undefined. */
export function guardReason(e: CloneEntry, action: 'create' | 'delete', lunId: number, snapshot: string): string | undefined {
  const rec = e.rec;
  if (action === 'delete' && rec.source.lun === lunId && rec.source.snapshot === snapshot) {
    return `clone ${rec.name} copies from it (${progressText(e)}); wait for the copy to complete, or delete the clone (sanbox clone delete ${rec.name})`;
  }
  if (action === 'create' && rec.lun === lunId) {
    return `it is clone ${rec.name}, ${progressText(e)} from ${sourceExport(rec.source)}; snapshot it once the copy has completed`;
  }
  return undefined;
}
