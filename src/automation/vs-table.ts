/**
 * Volume-set states (issue 14, seed 001): the states the source's eRCMF reports for a volume set,
 * and the table that maps sanbox's own replication facts onto them. The table is data: a
 * combination that is not in it is Unknown (reason `unmapped`), never a guess.
 *
 * A volume set is a plain mirror or a consistency group. Its facts, from the arrays:
 * - mode: `sync` (a plain mirror: this build replicates mirrors synchronously only; a group in
 *   `synchronous` mode) or `async` (a group `asynchronous` or `near-synchronous`);
 * - production: `home` when the primary is at the set's home site (the site of the lab file's
 *   primary array), `recovery` when it is at another site;
 * - condition: what replication is doing, classified from the primary's view (./vs-condition.ts).
 * docs/automation.md shows the same table.
 */

export type VsState = 'InSync' | 'OutOfSync' | 'SplitSite' | 'XDMode' | 'XDModeOutOfSync' | 'RecoverySite' | 'RecoverySiteForceSwap' | 'Unknown';
export const VS_STATES: readonly VsState[] = ['InSync', 'OutOfSync', 'SplitSite', 'XDMode', 'XDModeOutOfSync', 'RecoverySite', 'RecoverySiteForceSwap', 'Unknown'];

export type VsMode = 'sync' | 'async';
export type Production = 'home' | 'recovery';

/**
 * What replication is doing, from the primary's view (worst first where several hold):
 * - duplex: every secondary SYNCHRONIZED or CONSISTENT, connected, not fractured;
 * - copying: a secondary SYNCHRONIZING or resynchronizing over a connected link;
 * - suspended: a secondary fractured (link or operator), unreachable or its link not connected:
 *   the changes go to the fracture logs (tracked);
 * - promote-fractured: a secondary fractured by a promote (the old primary, to be resynchronized);
 * - unsynchronized: a secondary UNSYNCHRONIZED with no copy running (nothing tracked: a full copy);
 * - journaling: (async group) every sender running, members duplex, the secondaries coherent;
 * - paused: (async group) the sender paused by the operator;
 * - bypass: (group) journaling stopped, changes in the fracture logs (overflow or the operator);
 * - refresh: (async group) a refresh copies every region through the writelog (incoherent);
 * - sender-down: (async group) a sender not running (connecting, down, refused, stopped);
 * - incoherent: (async group) the group says its secondaries are not a point in time, for no
 *   reason above;
 * - attention / inactive: (mirror) the mirror is ATTENTION / INACTIVE (no host access);
 * - no-secondaries: the mirror has no secondary image; deleted: the group record is deleted.
 */
export type Condition =
  | 'duplex'
  | 'copying'
  | 'suspended'
  | 'promote-fractured'
  | 'unsynchronized'
  | 'journaling'
  | 'paused'
  | 'bypass'
  | 'refresh'
  | 'sender-down'
  | 'incoherent'
  | 'attention'
  | 'inactive'
  | 'no-secondaries'
  | 'deleted';

export interface VsRow {
  mode: VsMode;
  production: Production;
  condition: Condition;
  state: VsState;
}

const rows = (mode: VsMode, production: Production, map: Partial<Record<Condition, VsState>>): VsRow[] =>
  Object.entries(map).map(([condition, state]) => ({ mode, production, condition: condition as Condition, state: state as VsState }));

/** The whole table; anything absent is Unknown. */
export const VS_TABLE: readonly VsRow[] = [
  ...rows('sync', 'home', {
    duplex: 'InSync',
    copying: 'OutOfSync',
    suspended: 'SplitSite',
    'promote-fractured': 'SplitSite',
    bypass: 'SplitSite',
  }),
  ...rows('sync', 'recovery', {
    duplex: 'RecoverySite',
    copying: 'RecoverySite',
    suspended: 'RecoverySite',
    'promote-fractured': 'RecoverySite',
    unsynchronized: 'RecoverySite',
    bypass: 'RecoverySite',
  }),
  ...rows('async', 'home', {
    journaling: 'XDMode',
    paused: 'XDModeOutOfSync',
    bypass: 'XDModeOutOfSync',
    'sender-down': 'XDModeOutOfSync',
    suspended: 'XDModeOutOfSync',
    copying: 'OutOfSync',
    refresh: 'OutOfSync',
  }),
  ...rows('async', 'recovery', {
    journaling: 'RecoverySite',
    paused: 'RecoverySite',
    bypass: 'RecoverySite',
    'sender-down': 'RecoverySite',
    suspended: 'RecoverySite',
    copying: 'RecoverySite',
    refresh: 'RecoverySite',
    'promote-fractured': 'RecoverySite',
    unsynchronized: 'RecoverySite',
  }),
];

/** The table's state for these facts, or undefined (Unknown: not in the table). */
export function lookupState(mode: VsMode, production: Production, condition: Condition): VsState | undefined {
  return VS_TABLE.find((r) => r.mode === mode && r.production === production && r.condition === condition)?.state;
}

/** `InSync`, `insync`, `in-sync` all name InSync; undefined for no state. */
export function parseVsState(text: string): VsState | undefined {
  const key = text.replace(/[-_ ]/g, '').toLowerCase();
  return VS_STATES.find((s) => s.toLowerCase() === key);
}
