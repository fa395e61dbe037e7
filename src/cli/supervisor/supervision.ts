/**
 * The supervisor's view of one array of a lab: a small state table and a pure transition
 * function (no timers, no processes: the supervisor carries out the actions it returns).
 *
 * States:
 * - starting: the array's process was spawned at `up`; not ready yet.
 * - running: ready (its ready message arrived) and alive.
 * - crashed: its process died (every process of the array is gone). With `held`, the operator
 *   crashed it (`fault array-crash`, `site-fail`): it stays down until `array-restart` /
 *   `site-restore`, whatever the restart policy.
 * - restarting: spawned again (operator or policy); not ready yet.
 * - stopping: `down` / a signal: being stopped. stopped: gone for good.
 *
 * Inputs: ready, exited (the process died), crash (operator: kill it and hold it down), hold
 * (operator: an array already down stays down), restart (by the operator or by the policy),
 * stop.
 */
import type { ArrayRunState, RestartPolicy } from '../lab/index.js';

export type { ArrayRunState, RestartPolicy } from '../lab/index.js';
export const ARRAY_RUN_STATES: readonly ArrayRunState[] = ['starting', 'running', 'crashed', 'restarting', 'stopping', 'stopped'];

export type SupervisionInputType = 'ready' | 'exited' | 'crash' | 'hold' | 'restart' | 'stop';
export type SupervisionInput =
  | { type: 'ready' }
  | { type: 'exited' }
  | { type: 'crash' }
  | { type: 'hold' }
  | { type: 'restart'; by: 'operator' | 'policy' }
  | { type: 'stop' };


export interface Supervision {
  state: ArrayRunState;
  /** Crashed on purpose by the operator: no automatic restart. */
  held: boolean;
  /** Automatic restarts done since lab start or the last operator restart. */
  autoRestarts: number;
}

export type SupervisionAction =
  | { do: 'spawn' }
  | { do: 'kill' }
  | { do: 'schedule-restart'; delayMs: number; attempt: number }
  | { do: 'give-up'; limit: number };

export type Transition = { ok: true; next: Supervision; actions: SupervisionAction[] } | { ok: false; reason: string };

/** The state part of the table; anything absent is refused. */
export const SUPERVISION_TRANSITIONS: Readonly<Record<ArrayRunState, Readonly<Partial<Record<SupervisionInputType, ArrayRunState>>>>> = {
  starting: { ready: 'running', exited: 'crashed', crash: 'starting', stop: 'stopping' },
  running: { exited: 'crashed', crash: 'running', stop: 'stopping' },
  crashed: { restart: 'restarting', hold: 'crashed', stop: 'stopped' },
  restarting: { ready: 'running', exited: 'crashed', crash: 'restarting', stop: 'stopping' },
  stopping: { exited: 'stopped', stop: 'stopping' },
  stopped: { stop: 'stopped' },
};

export function initialSupervision(): Supervision {
  return { state: 'starting', held: false, autoRestarts: 0 };
}

const REFUSED: Partial<Record<SupervisionInputType, (s: ArrayRunState) => string>> = {
  restart: (s) => (s === 'running' || s === 'starting' || s === 'restarting' ? `it is ${s}, not crashed` : `it is ${s}`),
  crash: (s) => `it is not running (${s})`,
  hold: (s) => `it is ${s}, not crashed`,
};

/** What happens to `s` on `input` under `policy`: the next record and the actions to carry out. */
export function supervise(s: Supervision, input: SupervisionInput, policy: RestartPolicy): Transition {
  const to = SUPERVISION_TRANSITIONS[s.state][input.type];
  if (to === undefined) return { ok: false, reason: REFUSED[input.type]?.(s.state) ?? `${input.type} is not expected while ${s.state}` };
  const next: Supervision = { ...s, state: to };
  const actions: SupervisionAction[] = [];
  switch (input.type) {
    case 'crash':
      next.held = true;
      actions.push({ do: 'kill' });
      break;
    case 'hold':
      next.held = true;
      break;
    case 'restart':
      if (input.by === 'policy') {
        // A timer of the policy: the operator may have crashed it on purpose meanwhile.
        if (s.held || policy.mode !== 'on-failure') return { ok: false, reason: s.held ? 'held down by the operator' : 'the restart policy is never' };
        next.autoRestarts = s.autoRestarts + 1;
      } else {
        next.held = false;
        next.autoRestarts = 0;
      }
      actions.push({ do: 'spawn' });
      break;
    case 'stop':
      if (s.state !== 'crashed' && s.state !== 'stopped' && s.state !== 'stopping') actions.push({ do: 'kill' });
      break;
    case 'exited':
      if (to === 'crashed' && !s.held && policy.mode === 'on-failure') {
        if (s.autoRestarts < policy.limit) actions.push({ do: 'schedule-restart', delayMs: policy.backoffMs, attempt: s.autoRestarts + 1 });
        else actions.push({ do: 'give-up', limit: policy.limit });
      }
      break;
    case 'ready':
      break;
  }
  return { ok: true, next, actions };
}

/** Whether the array is up for clients (its API and NBD ports answer). */
export function isUp(s: Supervision): boolean {
  return s.state === 'running';
}
