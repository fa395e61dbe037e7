/** Text of `sanbox vs state|wait|freeze` (docs/automation.md). */
import type { FreezeResult } from '../../automation/freeze.js';
import type { VsReading } from '../../automation/vs-state.js';
import { table } from '../common.js';

/** One row per volume set; the members of a group indented below it. */
export function statesText(readings: VsReading[]): string {
  const rows: string[][] = [];
  for (const r of readings) {
    rows.push([r.set, r.kind, r.state, r.productionSite ?? '?', r.direction ?? '?', r.reason, r.detail]);
    for (const m of r.members ?? []) rows.push([`  ${m.name}`, 'member', '', '', '', m.condition, m.detail]);
  }
  return table(['SET', 'KIND', 'STATE', 'PRODUCTION', 'DIRECTION', 'REASON', 'DETAIL'], rows);
}

/** `m0 OutOfSync (copying: bravo:0 SYNCHRONIZING 43%)`. */
export function readingLine(r: VsReading): string {
  return `${r.set} ${r.state} (${r.reason}: ${r.detail})`;
}

export function freezeText(f: FreezeResult): string {
  const what =
    f.action === 'already-frozen'
      ? `${f.kind} ${f.set} was frozen already (nothing done)`
      : f.kind === 'mirror'
        ? `froze mirror ${f.set} on ${f.primaryArray}: fractured ${f.fractured?.join(', ')} (operator fracture: the changes go to the fracture log until "sanbox mirror sync ${f.set}")`
        : `froze group ${f.set} on ${f.primaryArray}: sender paused (the writes are journaled until "sanbox group resume ${f.set}")`;
  const lines = [what];
  if (f.boundary) {
    const members = f.boundary.members.join(', ');
    for (const c of f.boundary.copies) lines.push(`  ${c.array}: ${members} hold the journal through record ${c.appliedThrough ?? '?'} (sender acknowledged through ${c.ackedThrough ?? '?'})`);
    if (!f.boundary.settled) lines.push('  not settled: a secondary has not applied what its sender saw acknowledged (or the reverse); each holds one point of the journal all the same');
  }
  lines.push(`state: ${readingLine(f.after)}`);
  return lines.join('\n');
}
