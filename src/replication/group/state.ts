/**
 * The state machine of a consistency group, as explicit tables (in the style of
 * src/replication/state/tables.ts and src/array/sp/state.ts): the tables are data, anything
 * absent is illegal, and `applyGroupOp` is pure (the next state and the events to publish).
 *
 * A group's state has four independent regions (a mode change can run during a refresh, the
 * sender can be paused in bypass, ...), each with its own table:
 *
 * - modeChange: `steady`, or `switching` (a mode change in progress: new host writes wait).
 * - bypass: `off` (the mode decides: direct or journaling), `entering` (fracture logs being
 *   written, record being saved), `resyncing` (saved; resyncs of the dirty members starting),
 *   `on` (changes go to the fracture logs until the secondaries are resynchronized).
 * - copy: `idle`, `refresh` (every allocated region goes through the writelog), or
 *   `backfresh-offline` (the secondary's image comes back; the members are offline to hosts).
 * - sender: `running` or `paused` (by the operator).
 *
 * The record holds what survives a restart: `bypass.on` is true exactly when bypass is not
 * `off`, `paused` exactly when the sender is `paused` (./invariants.ts).
 */
import type { PromotionFacts } from './promotion.js';
import type { GroupMode, GroupRecord } from './types.js';
import { GroupError } from './record.js';

export type ModeChangePhase = 'steady' | 'switching';
export type BypassPhase = 'off' | 'entering' | 'resyncing' | 'on';
export type CopyPhase = 'idle' | 'refresh' | 'backfresh-offline';
export type SenderPhase = 'running' | 'paused';

export interface GroupState {
  modeChange: ModeChangePhase;
  bypass: BypassPhase;
  copy: CopyPhase;
  sender: SenderPhase;
}
export type GroupRegion = keyof GroupState;

export const GROUP_REGION_STATES: { readonly [R in GroupRegion]: readonly GroupState[R][] } = {
  modeChange: ['steady', 'switching'],
  bypass: ['off', 'entering', 'resyncing', 'on'],
  copy: ['idle', 'refresh', 'backfresh-offline'],
  sender: ['running', 'paused'],
};

/** Every change of a group's state; the arguments are what its event reports. */
export type GroupOp =
  | { op: 'switch-start' }
  | { op: 'switch-done'; from: GroupMode; to: GroupMode }
  | { op: 'switch-abort' }
  | { op: 'enter-bypass'; reason: string }
  | { op: 'bypass-saved'; reason: string; records: number }
  | { op: 'bypass-settled' }
  | { op: 'leave-bypass'; why: string }
  | { op: 'promote'; name: string; facts: PromotionFacts }
  | { op: 'refresh-start'; bytesTotal: number }
  | { op: 'refresh-done'; bytes: number }
  | { op: 'refresh-failed'; error: string }
  | { op: 'backfresh-start'; from: string }
  | { op: 'backfresh-done'; from: string; bytes: number }
  | { op: 'backfresh-abort' }
  | { op: 'pause' }
  | { op: 'resume' }
  // a record from another array (the group's primary) is adopted: the phases follow it
  | { op: 'adopt-bypass-on' }
  | { op: 'adopt-bypass-off' }
  | { op: 'adopt-paused' }
  | { op: 'adopt-running' };
export type GroupOpName = GroupOp['op'];

/** The region each op changes. */
export const GROUP_OP_REGION: Readonly<Record<GroupOpName, GroupRegion>> = {
  'switch-start': 'modeChange',
  'switch-done': 'modeChange',
  'switch-abort': 'modeChange',
  'enter-bypass': 'bypass',
  'bypass-saved': 'bypass',
  'bypass-settled': 'bypass',
  'leave-bypass': 'bypass',
  promote: 'bypass',
  'adopt-bypass-on': 'bypass',
  'adopt-bypass-off': 'bypass',
  'refresh-start': 'copy',
  'refresh-done': 'copy',
  'refresh-failed': 'copy',
  'backfresh-start': 'copy',
  'backfresh-done': 'copy',
  'backfresh-abort': 'copy',
  pause: 'sender',
  resume: 'sender',
  'adopt-paused': 'sender',
  'adopt-running': 'sender',
};
export const GROUP_OPS: readonly GroupOpName[] = Object.keys(GROUP_OP_REGION) as GroupOpName[];

type RegionTable<S extends string> = Readonly<Record<S, Readonly<Partial<Record<GroupOpName, S>>>>>;

/**
 * The whole table, per region; anything absent is illegal.
 *
 * Notable rows:
 * - bypass entering + bypass-settled -> on: saving the record or persisting the fracture logs
 *   failed; the group stays in bypass (in memory) and leaves it like any other.
 * - bypass off/on + promote -> on: the old primary must be resynchronized before the journal
 *   can feed it, whatever the record said.
 * - adopt-* while bypass is being entered keeps the phase: this array's entry wins until saved.
 * - sender pause/resume are legal in both states (the operator may repeat them).
 */
export const GROUP_TRANSITIONS: { readonly [R in GroupRegion]: RegionTable<GroupState[R]> } = {
  modeChange: {
    steady: { 'switch-start': 'switching' },
    switching: { 'switch-done': 'steady', 'switch-abort': 'steady' },
  },
  bypass: {
    off: { 'enter-bypass': 'entering', promote: 'on', 'adopt-bypass-on': 'on', 'adopt-bypass-off': 'off' },
    entering: { 'bypass-saved': 'resyncing', 'bypass-settled': 'on', 'adopt-bypass-on': 'entering', 'adopt-bypass-off': 'entering' },
    resyncing: { 'bypass-settled': 'on', 'adopt-bypass-on': 'resyncing', 'adopt-bypass-off': 'resyncing' },
    on: { 'leave-bypass': 'off', promote: 'on', 'adopt-bypass-on': 'on', 'adopt-bypass-off': 'off' },
  },
  copy: {
    idle: { 'refresh-start': 'refresh', 'backfresh-start': 'backfresh-offline' },
    refresh: { 'refresh-done': 'idle', 'refresh-failed': 'idle' },
    'backfresh-offline': { 'backfresh-done': 'idle', 'backfresh-abort': 'idle' },
  },
  sender: {
    running: { pause: 'paused', resume: 'running', 'adopt-paused': 'paused', 'adopt-running': 'running' },
    paused: { pause: 'paused', resume: 'running', 'adopt-paused': 'paused', 'adopt-running': 'running' },
  },
};

/** Conditions on the other regions (data too): refresh goes through the journal, never in bypass. */
export const GROUP_OP_REQUIRES: Readonly<Partial<Record<GroupOpName, Partial<{ readonly [R in GroupRegion]: readonly GroupState[R][] }>>>> = {
  'refresh-start': { bypass: ['off'], modeChange: ['steady'] },
};

export class IllegalGroupOpError extends GroupError {
  constructor(
    readonly state: GroupState,
    readonly op: GroupOpName,
    readonly why: string,
  ) {
    super('state', `illegal group op ${op} in state ${describeGroupState(state)}: ${why}`);
    this.name = 'IllegalGroupOpError';
  }
}

/** An event to publish: `group.<type>`, the group id first, then the details. */
export interface GroupEvent {
  type: string;
  details: Record<string, unknown>;
}

function eventsOf(op: GroupOp): GroupEvent[] {
  switch (op.op) {
    case 'switch-done':
      return [{ type: 'mode', details: { from: op.from, to: op.to } }];
    case 'bypass-saved':
      return [{ type: 'bypass', details: { on: true, reason: op.reason, records: op.records } }];
    case 'leave-bypass':
      return [{ type: 'bypass', details: { on: false, why: op.why } }];
    case 'promote':
      return [{ type: 'promoted', details: { name: op.name, ...op.facts } }];
    case 'refresh-start':
      return [{ type: 'refresh-started', details: { bytesTotal: op.bytesTotal } }];
    case 'refresh-done':
      return [{ type: 'refresh-done', details: { bytes: op.bytes } }];
    case 'refresh-failed':
      return [{ type: 'refresh-failed', details: { error: op.error } }];
    case 'backfresh-start':
      return [{ type: 'backfresh-started', details: { from: op.from } }];
    case 'backfresh-done':
      return [{ type: 'backfresh-done', details: { from: op.from, bytes: op.bytes } }];
    case 'pause':
      return [{ type: 'paused', details: {} }];
    case 'resume':
      return [{ type: 'resumed', details: {} }];
    default:
      return [];
  }
}

/** Why `op` is illegal in `state`, or null when it is legal. */
export function groupOpRefusal(state: GroupState, op: GroupOpName): string | null {
  const region = GROUP_OP_REGION[op];
  if (!region) return `unknown op ${String(op)}`;
  const table = GROUP_TRANSITIONS[region] as RegionTable<string>;
  const row = table[state[region]];
  if (!row) return `unknown ${region} state ${String(state[region])}`;
  if (row[op] === undefined) return `not allowed when ${region} is ${state[region]}`;
  const req = GROUP_OP_REQUIRES[op] ?? {};
  for (const r of Object.keys(req) as GroupRegion[]) {
    const allowed = req[r] as readonly string[];
    if (!allowed.includes(state[r])) return `needs ${r} ${allowed.join(' or ')}, it is ${state[r]}`;
  }
  return null;
}

export function canApplyGroupOp(state: GroupState, op: GroupOpName): boolean {
  return groupOpRefusal(state, op) === null;
}

/** Pure: the next state and the events to publish, or throws IllegalGroupOpError (nothing changed). */
export function applyGroupOp(state: GroupState, op: GroupOp): { state: GroupState; events: GroupEvent[] } {
  const refusal = groupOpRefusal(state, op.op);
  if (refusal) throw new IllegalGroupOpError(state, op.op, refusal);
  const region = GROUP_OP_REGION[op.op];
  const to = (GROUP_TRANSITIONS[region] as RegionTable<string>)[state[region]]![op.op]!;
  return { state: { ...state, [region]: to }, events: eventsOf(op) };
}

/** The state a record stands for when nothing is in progress (load, create, a joined group). */
export function initialGroupState(record: Pick<GroupRecord, 'bypass' | 'paused'>): GroupState {
  return { modeChange: 'steady', bypass: record.bypass.on ? 'on' : 'off', copy: 'idle', sender: record.paused ? 'paused' : 'running' };
}

/** The ops that make the state follow a record adopted from another array. */
export function adoptOps(record: Pick<GroupRecord, 'bypass' | 'paused'>): GroupOp[] {
  return [{ op: record.bypass.on ? 'adopt-bypass-on' : 'adopt-bypass-off' }, { op: record.paused ? 'adopt-paused' : 'adopt-running' }];
}

/** True while the members' changes go to the fracture logs (bypass being entered, or on); the record's `bypass.on`. */
export function inBypass(state: GroupState): boolean {
  return state.bypass !== 'off';
}

/** How the members' host writes go: wait for a mode change, the fracture logs, the journal, or the mirror's own path. */
export function writeRoute(state: GroupState, mode: GroupMode): 'wait' | 'bypass' | 'journal' | 'direct' {
  if (state.modeChange === 'switching') return 'wait';
  if (inBypass(state)) return 'bypass';
  return mode === 'synchronous' ? 'direct' : 'journal';
}

/**
 * One name for the whole state (messages, logs), the most constraining phase first:
 * backfresh-offline, switching, entering-bypass, bypass, refresh, paused, journaling or direct.
 */
export function groupPhase(state: GroupState, mode: GroupMode): string {
  if (state.copy === 'backfresh-offline') return 'backfresh-offline';
  if (state.modeChange === 'switching') return 'switching';
  if (state.bypass === 'entering' || state.bypass === 'resyncing') return 'entering-bypass';
  if (state.bypass === 'on') return 'bypass';
  if (state.copy === 'refresh') return 'refresh';
  if (state.sender === 'paused') return 'paused';
  return mode === 'synchronous' ? 'direct' : 'journaling';
}

export function describeGroupState(s: GroupState): string {
  return `modeChange=${s.modeChange} bypass=${s.bypass} copy=${s.copy} sender=${s.sender}`;
}
