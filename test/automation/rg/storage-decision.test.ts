import { describe, expect, it } from 'vitest';
import { storageDecision, type StorageGoal } from '../../../src/automation/rg/storage-decision.js';
import type { VsReading } from '../../../src/automation/vs-state.js';

/** A reading of mirror m0 (home east): production and condition as given. */
function reading(over: Partial<VsReading>): VsReading {
  return { set: 'm0', kind: 'mirror', state: 'InSync', reason: 'duplex', detail: 'bravo:0 SYNCHRONIZED', homeSite: 'east', productionSite: 'east', primaryArray: 'alpha', direction: 'east->west', mode: 'sync', condition: 'duplex', ...over };
}
const unknown = (reason: string) => reading({ state: 'Unknown', reason, productionSite: null, primaryArray: null, mode: null, condition: null, direction: null });

const online: StorageGoal = { op: 'online', site: 'east' };
const moveWest: StorageGoal = { op: 'move', site: 'west' };
const recoverWest: StorageGoal = { op: 'recover', site: 'west', usePitCopy: false };

describe('storage decision: online', () => {
  it.each([
    ['InSync at the site', reading({}), 'ready', 'InSync'],
    ['SplitSite at the site (the other side away): usable', reading({ state: 'SplitSite', reason: 'suspended', condition: 'suspended' }), 'ready', 'SplitSite'],
    ['copying from the site', reading({ state: 'OutOfSync', reason: 'copying', condition: 'copying' }), 'ready', 'OutOfSync'],
    ['production elsewhere', reading({ state: 'RecoverySite', productionSite: 'west', primaryArray: 'bravo' }), 'refuse', 'production-elsewhere'],
    ['an array does not answer', unknown('array-unreachable'), 'wait', 'array-unreachable'],
    ['split brain', reading({ state: 'Unknown', reason: 'split-brain' }), 'refuse', 'split-brain'],
    ['unmapped at the site', reading({ state: 'Unknown', reason: 'unmapped', condition: 'inactive' }), 'refuse', 'unmapped'],
    ['two primaries, the newer here', reading({ state: 'RecoverySiteForceSwap', reason: 'two-primaries' }), 'refuse', 'two-primaries'],
  ])('%s -> %s', (_what, r, action, reason) => {
    expect(storageDecision(r, online)).toMatchObject({ action, reason });
  });
});

describe('storage decision: planned move to west', () => {
  it.each([
    ['in sync: plain promote, nothing copied', reading({}), 'promote', 'in-sync'],
    ['copying: wait', reading({ state: 'OutOfSync', reason: 'copying', condition: 'copying' }), 'wait', 'copying'],
    ['mirror fractured: refused, never swapped out of sync', reading({ state: 'SplitSite', reason: 'suspended', condition: 'suspended' }), 'refuse', 'out-of-sync'],
    ['group member suspended: refused', reading({ kind: 'group', state: 'XDModeOutOfSync', reason: 'suspended', condition: 'suspended', mode: 'async' }), 'refuse', 'out-of-sync'],
    ['old primary not yet resynchronized after a promote: refused', reading({ state: 'SplitSite', reason: 'promote-fractured', condition: 'promote-fractured' }), 'refuse', 'out-of-sync'],
    ['paused group: resume', reading({ kind: 'group', state: 'XDModeOutOfSync', reason: 'paused', condition: 'paused', mode: 'async' }), 'resume', 'paused'],
    ['asynchronous group journaling: switch to synchronous first', reading({ kind: 'group', state: 'XDMode', reason: 'journaling', condition: 'journaling', mode: 'async' }), 'switch-sync', 'asynchronous'],
    ['already at west', reading({ state: 'RecoverySite', productionSite: 'west', primaryArray: 'bravo' }), 'ready', 'moved'],
    ['force swap: a planned move needs both sides', reading({ state: 'RecoverySiteForceSwap', reason: 'other-side-unreachable', productionSite: 'east' }), 'refuse', 'force-swap'],
    ['unsynchronized: refused, never swapped out of sync', reading({ state: 'Unknown', reason: 'unmapped', condition: 'unsynchronized' }), 'refuse', 'unmapped'],
    ['bypass: refused', reading({ state: 'SplitSite', reason: 'bypass', condition: 'bypass' }), 'refuse', 'bypass'],
    ['nothing answers: wait', unknown('array-unreachable'), 'wait', 'array-unreachable'],
  ])('%s -> %s', (_what, r, action, reason) => {
    expect(storageDecision(r, moveWest)).toMatchObject({ action, reason });
  });
});

describe('storage decision: recovery at west (east declared lost)', () => {
  const silentEast = unknown('array-unreachable');
  it.each([
    ['the copy is a point in time: forced promote', silentEast, 'consistent', false, 'promote-forced', 'site-lost'],
    ['the copy is mid-resync, the policy forbids a point-in-time copy: refused', silentEast, 'inconsistent', false, 'refuse', 'inconsistent-secondary'],
    ['the copy is mid-resync, the policy allows it: from the snapshot', silentEast, 'inconsistent', true, 'promote-from-snapshot', 'inconsistent-secondary'],
    ['the copy does not say: wait', silentEast, 'unknown', false, 'wait', 'secondary-unknown'],
    ['recovered already', reading({ state: 'RecoverySiteForceSwap', reason: 'other-side-unreachable', productionSite: 'west', primaryArray: 'bravo' }), 'unknown', false, 'ready', 'recovered'],
    ['the lost site still answers and is in sync: plain promote only', reading({}), 'consistent', false, 'promote', 'production-site-answers'],
    ['the lost site still answers, out of sync: refused (two writable sides)', reading({ state: 'SplitSite', reason: 'suspended', condition: 'suspended' }), 'consistent', false, 'refuse', 'production-site-answers'],
    ['split brain: refused', reading({ state: 'Unknown', reason: 'split-brain' }), 'consistent', false, 'refuse', 'split-brain'],
  ] as const)('%s -> %s', (_what, r, secondary, usePitCopy, action, reason) => {
    expect(storageDecision(r, { ...recoverWest, usePitCopy }, secondary)).toMatchObject({ action, reason });
  });
});
