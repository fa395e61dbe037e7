// A toy sender for the throttle convergence tests: deterministic, in steps of simulated time.
import { ThrottleEngine, ThrottleState, type ThrottleHooks } from '../../../src/replication/group/throttle.js';
import type { ThrottleSpec } from '../../../src/replication/group/types.js';
import { ManualClock } from '../../support/clock.js';

export interface SimPhase {
  /** simulated seconds */
  seconds: number;
  /** KB/s the host writes into the writelog */
  offeredKBps: number;
}

export interface SimSample {
  t: number;
  netkbps: number;
  sleepMs: number;
  backlogKB: number;
  clock: string;
}

/**
 * Sender: one chunk of `chunkKB` per (sendMs + sleepMs), sendMs = chunkKB / capacityKBps, while it
 * has a backlog; its throughput over each interval is what it could send or what there was to
 * send, whichever is less. The throttles are evaluated at the end of every interval with the
 * netkbps of that interval; the new sleep applies to the next one.
 */
export function simulate(
  specs: ThrottleSpec[],
  phases: SimPhase[],
  opts: { capacityKBps: number; chunkKB: number; everyS?: number; start?: Date; hooks?: Partial<ThrottleHooks> },
): { samples: SimSample[]; state: ThrottleState; logs: string[] } {
  const every = opts.everyS ?? 10;
  const clock = new ManualClock(opts.start ?? new Date(2024, 0, 15, 12, 0, 0));
  const engine = new ThrottleEngine(specs, { now: clock.date });
  const state = new ThrottleState();
  const logs: string[] = [];
  const hooks: ThrottleHooks = {
    chainExtension: () => false,
    releaseExtension: () => false,
    log: (m) => logs.push(m),
    event: (m) => logs.push(`event: ${m}`),
    command: () => {},
    ...opts.hooks,
  };
  const sendMs = (opts.chunkKB / opts.capacityKBps) * 1000;
  const samples: SimSample[] = [];
  let backlog = 0;
  let t = 0;
  for (const phase of phases) {
    for (let s = 0; s < phase.seconds; s += every) {
      backlog += phase.offeredKBps * every;
      const maxRate = (opts.chunkKB * 1000) / (sendMs + state.senderSleepMs);
      const sent = Math.min(backlog, maxRate * every);
      backlog -= sent;
      t += every;
      clock.advance(every * 1000);
      const m = { netkbps: sent / every, pctcpu: 1, pctwl: 0 };
      state.apply(engine.evaluate(m), hooks, m);
      const d = clock.date();
      samples.push({ t, netkbps: m.netkbps, sleepMs: state.senderSleepMs, backlogKB: backlog, clock: `${d.getHours()}:${String(d.getMinutes()).padStart(2, '0')}` });
    }
  }
  return { samples, state, logs };
}

/**
 * The source's bandwidth example (Figure 10, as its text describes it), in milliseconds: the sleep
 * grows by 15 ms every evaluation the group sends more than 200 KB/s, by another 5 ms above
 * 300 KB/s, and shrinks while it sends less, down to zero. Two transitional throttles report the
 * crossings.
 */
export const FIGURE_10: ThrottleSpec[] = [
  { measure: 'netkbps', op: 'gt', value: 200, actions: [{ do: 'sleep-incr', ms: 15 }] },
  { measure: 'netkbps', op: 'gt', value: 300, actions: [{ do: 'sleep-incr', ms: 5 }] },
  { measure: 'netkbps', op: 'lt', value: 200, actions: [{ do: 'sleep-decr', ms: 5 }] },
  { measure: 'netkbps', op: 'rises-above', value: 300, actions: [{ do: 'log', message: 'network use %netkbps% KB/s is above 300 KB/s' }] },
  { measure: 'netkbps', op: 'falls-below', value: 100, actions: [{ do: 'event', message: 'network use fell to %netkbps% KB/s' }] },
];
