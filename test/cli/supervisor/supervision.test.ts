// The supervisor's per-array state table (src/cli/supervisor/supervision.ts), driven directly:
// every state and input, the restart policy's backoff and limit, held (operator) crashes.
import { describe, expect, it } from 'vitest';
import { ARRAY_RUN_STATES, SUPERVISION_TRANSITIONS, initialSupervision, supervise, type Supervision, type SupervisionInput } from '../../../src/cli/supervisor/index.js';
import type { RestartPolicy } from '../../../src/cli/lab.js';

const never: RestartPolicy = { mode: 'never', backoffMs: 1000, limit: 3 };
const onFailure: RestartPolicy = { mode: 'on-failure', backoffMs: 250, limit: 2 };

/** Applies inputs in order; throws on a refused one. */
function run(inputs: SupervisionInput[], policy: RestartPolicy, from: Supervision = initialSupervision()) {
  let s = from;
  const actions: unknown[] = [];
  for (const i of inputs) {
    const t = supervise(s, i, policy);
    if (!t.ok) throw new Error(`${i.type} refused in ${s.state}: ${t.reason}`);
    s = t.next;
    actions.push(...t.actions);
  }
  return { s, actions };
}

const crashed = (over: Partial<Supervision> = {}): Supervision => ({ state: 'crashed', held: false, autoRestarts: 0, ...over });

describe('array supervision table', () => {
  it('covers every state, and every target is a state', () => {
    expect(Object.keys(SUPERVISION_TRANSITIONS).sort()).toEqual([...ARRAY_RUN_STATES].sort());
    for (const row of Object.values(SUPERVISION_TRANSITIONS)) for (const to of Object.values(row)) expect(ARRAY_RUN_STATES).toContain(to);
  });

  it('start, run, die: crashed, and with restart: never nothing is scheduled (the operator decides)', () => {
    const { s, actions } = run([{ type: 'ready' }, { type: 'exited' }], never);
    expect(s).toEqual({ state: 'crashed', held: false, autoRestarts: 0 });
    expect(actions).toEqual([]);
  });

  it('an operator crash kills and holds the array; its exit schedules nothing even with on-failure', () => {
    const a = run([{ type: 'ready' }, { type: 'crash' }], onFailure);
    expect(a.s).toEqual({ state: 'running', held: true, autoRestarts: 0 });
    expect(a.actions).toEqual([{ do: 'kill' }]);
    const b = run([{ type: 'exited' }], onFailure, a.s);
    expect(b.s.state).toBe('crashed');
    expect(b.actions).toEqual([]);
    // a policy timer that fires anyway is refused: held down
    const t = supervise(b.s, { type: 'restart', by: 'policy' }, onFailure);
    expect(t.ok).toBe(false);
  });

  it('on-failure: each unexpected death schedules a restart after backoffMs until the limit, then gives up', () => {
    let s: Supervision = run([{ type: 'ready' }], onFailure).s;
    const seen: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const died = run([{ type: 'exited' }], onFailure, s);
      seen.push(...died.actions);
      if (died.actions.some((a) => (a as { do: string }).do === 'give-up')) {
        s = died.s;
        break;
      }
      s = run([{ type: 'restart', by: 'policy' }, { type: 'ready' }], onFailure, died.s).s;
    }
    expect(seen).toEqual([
      { do: 'schedule-restart', delayMs: 250, attempt: 1 },
      { do: 'schedule-restart', delayMs: 250, attempt: 2 },
      { do: 'give-up', limit: 2 },
    ]);
    expect(s).toEqual({ state: 'crashed', held: false, autoRestarts: 2 });
    // the operator's restart resets the count
    expect(run([{ type: 'restart', by: 'operator' }], onFailure, s).s).toEqual({ state: 'restarting', held: false, autoRestarts: 0 });
  });

  it('a restart that dies before ready is a crash again (and counts against the limit)', () => {
    const { s, actions } = run([{ type: 'restart', by: 'policy' }, { type: 'exited' }], onFailure, crashed());
    expect(s).toEqual({ state: 'crashed', held: false, autoRestarts: 1 });
    expect(actions).toEqual([{ do: 'spawn' }, { do: 'schedule-restart', delayMs: 250, attempt: 2 }]);
  });

  it('the operator restart of a held array clears held and spawns', () => {
    const t = supervise(crashed({ held: true }), { type: 'restart', by: 'operator' }, never);
    expect(t).toEqual({ ok: true, next: { state: 'restarting', held: false, autoRestarts: 0 }, actions: [{ do: 'spawn' }] });
  });

  it('refuses what makes no sense, with a reason, and changes nothing', () => {
    const up: Supervision = { state: 'running', held: false, autoRestarts: 0 };
    const r1 = supervise(up, { type: 'restart', by: 'operator' }, never);
    expect(r1).toEqual({ ok: false, reason: 'it is running, not crashed' });
    const r2 = supervise(crashed(), { type: 'crash' }, never);
    expect(r2).toEqual({ ok: false, reason: 'it is not running (crashed)' });
    expect(supervise(crashed(), { type: 'restart', by: 'policy' }, never).ok).toBe(false);
    expect(supervise({ state: 'stopped', held: false, autoRestarts: 0 }, { type: 'restart', by: 'operator' }, never).ok).toBe(false);
    expect(supervise(up, { type: 'hold' }, never).ok).toBe(false);
  });

  it('stop: a live array is killed and ends stopped; a crashed one is stopped at once', () => {
    const live = run([{ type: 'ready' }, { type: 'stop' }, { type: 'exited' }], onFailure);
    expect(live.s.state).toBe('stopped');
    expect(live.actions).toEqual([{ do: 'kill' }]); // no restart scheduled while stopping
    const dead = run([{ type: 'stop' }], onFailure, crashed());
    expect(dead).toEqual({ s: crashed({ state: 'stopped' }), actions: [] });
  });

  it('site-fail holds an array already down (hold), so the policy no longer restarts it', () => {
    const held = run([{ type: 'hold' }], onFailure, crashed()).s;
    expect(held.held).toBe(true);
    expect(supervise(held, { type: 'restart', by: 'policy' }, onFailure).ok).toBe(false);
  });
});
