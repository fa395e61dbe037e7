/**
 * Invariants of a group record and of a group's state against it, asserted after every
 * applyGroupOp, every save and every load (the group manager calls them). The cheap checks are
 * always on; the expensive ones (a full re-validation of the record) run with SANBOX_PARANOID set.
 * A failure is a bug: it throws, loudly.
 */
import { parseGroupRecord } from './record.js';
import { describeGroupState, GROUP_REGION_STATES, inBypass, type GroupRegion, type GroupState } from './state.js';
import type { GroupRecord } from './types.js';

const paranoid = (): boolean => !!process.env.SANBOX_PARANOID;

export class GroupInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GroupInvariantError';
  }
}

function fail(r: Pick<GroupRecord, 'name'>, what: string): never {
  throw new GroupInvariantError(`group ${r.name}: invariant violated: ${what}`);
}

/** The record alone: members, generation, bypass and refresh shapes. */
export function assertGroupRecord(r: GroupRecord): void {
  if (r.members.length === 0) fail(r, 'no member');
  if (new Set(r.members).size !== r.members.length) fail(r, `a member is listed twice (${r.members.join(', ')})`);
  if (!Number.isSafeInteger(r.generation) || r.generation < 1) fail(r, `generation ${r.generation}`);
  if (!Number.isSafeInteger(r.epoch) || r.epoch < 0) fail(r, `epoch ${r.epoch}`);
  const b = r.bypass;
  if (b.on && b.reason !== 'overflow' && b.reason !== 'operator') fail(r, `bypass on with reason ${JSON.stringify(b.reason)}`);
  if (b.on && typeof b.since !== 'string') fail(r, 'bypass on without since');
  if (!b.on && (b.reason !== null || b.since !== null)) fail(r, `bypass off with reason ${JSON.stringify(b.reason)} since ${JSON.stringify(b.since)}`);
  const f = r.refresh;
  if (f && !(f.bytesDone >= 0 && f.bytesDone <= f.bytesTotal)) fail(r, `refresh ${f.bytesDone} of ${f.bytesTotal} bytes`);
  if (paranoid()) {
    // The record must survive its own round trip through the disk or the wire.
    try {
      parseGroupRecord(JSON.parse(JSON.stringify(r)));
    } catch (e) {
      fail(r, (e as Error).message);
    }
  }
}

/** The state alone and against the record it is saved as. */
export function assertGroupState(r: GroupRecord, s: GroupState): void {
  for (const region of Object.keys(GROUP_REGION_STATES) as GroupRegion[]) {
    if (!(GROUP_REGION_STATES[region] as readonly string[]).includes(s[region])) fail(r, `${region} state ${String(s[region])}`);
  }
  if (r.bypass.on !== inBypass(s)) fail(r, `record bypass.on ${r.bypass.on} in state ${describeGroupState(s)}`);
  if (r.paused !== (s.sender === 'paused')) fail(r, `record paused ${r.paused} in state ${describeGroupState(s)}`);
  if (s.copy === 'refresh' && r.refresh?.running !== true) fail(r, `refresh running without refresh progress in the record (${JSON.stringify(r.refresh)})`);
}

export function assertGroup(r: GroupRecord, s: GroupState): void {
  assertGroupRecord(r);
  assertGroupState(r, s);
}
