import { EventEmitter } from 'node:events';

/**
 * Lifecycle states of one SP.
 * - off: no power (the chassis has not powered the SP, or power failed and the SP stopped).
 * - down: powered but not running (crashed or stopped); its peer owns its LUNs.
 * - booting: process starting: drops its stale cache and superseded vault images, looks for a
 *   vault image to restore.
 * - restoring: replaying the vault image to the image files; serves no I/O.
 * - up: serving I/O.
 * - dumping: power lost, on battery, writing the vault.
 * - resuming: (the SP process's own view) power came back mid-dump; the SP abandons the torn
 *   dump and restores its routes before it serves again. The chassis sees this as one step.
 */
export type SpState = 'off' | 'down' | 'booting' | 'restoring' | 'up' | 'dumping' | 'resuming';

export const SP_STATES: readonly SpState[] = ['off', 'down', 'booting', 'restoring', 'up', 'dumping', 'resuming'];

/**
 * - power-restore: the chassis powers an SP that is off.
 * - boot: start (or restart) the SP process of a powered SP that is down.
 * - booted: boot finished with nothing to restore. vault-found: boot found an image to replay.
 * - restore-done: replayed and marked consumed. restore-failed: no usable copy (the affected
 *   LUNs go cache-dirty); the SP still comes up.
 * - crash: the SP process died (SIGKILL). shutdown: orderly stop (cache destaged first).
 * - power-fail: power lost with a working battery: an up SP dumps; others just stop.
 * - power-cut: power lost with no hold-up (battery failed or empty): everything stops.
 * - dump-done: the vault copy is complete; the SP stops. hold-up-expired: the battery ran out
 *   mid-dump; the copy is torn; the SP stops.
 * - power-back: (SP process) power returned mid-dump; the SP abandons the dump.
 *   dump-abandoned: the torn copy is marked consumed, the routes are back; the SP serves.
 */
export type SpEvent =
  | 'power-restore'
  | 'boot'
  | 'booted'
  | 'vault-found'
  | 'restore-done'
  | 'restore-failed'
  | 'crash'
  | 'shutdown'
  | 'power-fail'
  | 'power-cut'
  | 'dump-done'
  | 'hold-up-expired'
  | 'power-back'
  | 'dump-abandoned';

export const SP_EVENTS: readonly SpEvent[] = [
  'power-restore',
  'boot',
  'booted',
  'vault-found',
  'restore-done',
  'restore-failed',
  'crash',
  'shutdown',
  'power-fail',
  'power-cut',
  'dump-done',
  'hold-up-expired',
  'power-back',
  'dump-abandoned',
];

/**
 * The whole transition table; anything absent is illegal.
 *
 * Notable rows:
 * - dumping + power-restore -> up: power came back mid-dump. The SP never lost its memory (the
 *   battery held it), so it abandons the dump, marks the torn copy's generation consumed (its
 *   content is superseded by the live cache) and keeps serving. This is the chassis's view; the
 *   SP process itself passes through resuming (dumping + power-back -> resuming, then
 *   dump-abandoned -> up), during which it still holds I/O and refuses peer traffic.
 * - restoring + power-fail -> off: a second failure during restore. Nothing new was accepted
 *   (no I/O is served while restoring) and the image is not consumed yet, so the next boot
 *   replays it again (replay is idempotent).
 * - booting/restoring + crash -> down: the image stays unconsumed and is replayed by the next boot.
 */
export const SP_TRANSITIONS: Readonly<Record<SpState, Readonly<Partial<Record<SpEvent, SpState>>>>> = {
  off: { 'power-restore': 'booting' },
  down: { boot: 'booting', 'power-fail': 'off', 'power-cut': 'off' },
  booting: { booted: 'up', 'vault-found': 'restoring', crash: 'down', 'power-fail': 'off', 'power-cut': 'off' },
  restoring: { 'restore-done': 'up', 'restore-failed': 'up', crash: 'down', 'power-fail': 'off', 'power-cut': 'off' },
  up: { crash: 'down', shutdown: 'down', 'power-fail': 'dumping', 'power-cut': 'off' },
  dumping: { 'dump-done': 'off', 'hold-up-expired': 'off', crash: 'off', 'power-cut': 'off', 'power-restore': 'up', 'power-back': 'resuming' },
  resuming: { 'dump-abandoned': 'up', crash: 'down', 'power-cut': 'off' },
};

export class IllegalTransitionError extends Error {
  constructor(
    readonly state: SpState,
    readonly event: SpEvent,
  ) {
    super(`illegal SP transition: ${event} in state ${state}`);
    this.name = 'IllegalTransitionError';
  }
}

/** Pure: the next state, or throws IllegalTransitionError. */
export function transition(state: SpState, event: SpEvent): SpState {
  const row = SP_TRANSITIONS[state];
  if (!row) throw new Error(`unknown SP state ${String(state)}`);
  const next = row[event];
  if (!next) throw new IllegalTransitionError(state, event);
  return next;
}

export function canTransition(state: SpState, event: SpEvent): boolean {
  return SP_TRANSITIONS[state]?.[event] !== undefined;
}

/** True when the SP serves host I/O in this state. */
export function servesIo(state: SpState): boolean {
  return state === 'up';
}

/**
 * True while the SP is in a power failure: dumping, abandoning a dump (resuming) or off. It
 * holds host I/O (nothing new may be acknowledged) and refuses peer and chassis traffic.
 */
export function inPowerFailure(state: SpState): boolean {
  return state === 'dumping' || state === 'resuming' || state === 'off';
}

export interface SpTransitionRecord {
  sp: string;
  from: SpState;
  event: SpEvent;
  to: SpState;
  at: number;
}

/** One SP's state with history, emitting 'transition' (SpTransitionRecord) on every change. */
export class SpLifecycle extends EventEmitter {
  private current: SpState;
  readonly history: SpTransitionRecord[] = [];

  constructor(
    readonly sp: string,
    initial: SpState = 'off',
    private readonly clock: () => number = Date.now,
  ) {
    super();
    this.current = initial;
  }

  get state(): SpState {
    return this.current;
  }

  /** Applies `event`; throws IllegalTransitionError (state unchanged) when it is not allowed. */
  apply(event: SpEvent): SpState {
    const to = transition(this.current, event);
    const rec: SpTransitionRecord = { sp: this.sp, from: this.current, event, to, at: this.clock() };
    this.current = to;
    this.history.push(rec);
    this.emit('transition', rec);
    return to;
  }
}
