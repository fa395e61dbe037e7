/**
 * Conditions a step waits for (and a `condition` check tests at the end): polled through the
 * lab's APIs every POLL_MS until they hold or the step's timeout. Each evaluation says why it
 * does not hold yet, so a timeout reports what was last seen.
 */
import type { ConditionSpec } from '../spec/types.js';
import type { MirrorView } from '../../replication/mirror/types.js';
import type { LabApis } from './apis.js';
import { primaryOfGroup, primaryOfMirror } from './actions.js';

export const POLL_MS = 200;

export interface ConditionContext {
  apis: LabApis;
  /** events of `type` from `source` (null: any) seen so far */
  eventsSeen(type: string, source: string | null): number;
  workloadDone(name: string): boolean;
}

export interface Evaluation {
  holds: boolean;
  /** what was seen: why it holds or not */
  seen: string;
}

export async function evaluate(c: ConditionSpec, ctx: ConditionContext): Promise<Evaluation> {
  switch (c.kind) {
    case 'mirror-state':
      return mirrorState(c, ctx);
    case 'group-coherent': {
      const v = await (await primaryOfGroup(ctx.apis, c.group, c.array)).getGroup(c.group);
      return { holds: v.incoherent === null, seen: v.incoherent === null ? `group ${c.group} coherent` : `group ${c.group} not coherent: ${v.incoherent}` };
    }
    case 'group-drained': {
      const v = await (await primaryOfGroup(ctx.apis, c.group, c.array)).getGroup(c.group);
      const waiting = v.metrics?.entriesWaiting ?? null;
      return { holds: waiting === 0, seen: `group ${c.group}: ${waiting ?? 'unknown'} entries not acknowledged by the secondary` };
    }
    case 'event': {
      const n = ctx.eventsSeen(c.type, c.source);
      return { holds: n > 0, seen: `${n} ${c.type} event(s)${c.source ? ` from ${c.source}` : ''}` };
    }
    case 'workload-done': {
      const done = ctx.workloadDone(c.workload);
      return { holds: done, seen: `workload ${c.workload} ${done ? 'ended' : 'still running'}` };
    }
    case 'array-state': {
      const st = ctx.apis.refresh().arrays.find((a) => a.name === c.array)?.state ?? 'running';
      const is = st === 'running' ? 'running' : st === 'crashed' ? 'crashed' : st;
      return { holds: is === c.state, seen: `array ${c.array} ${st}` };
    }
  }
}

async function mirrorState(c: Extract<ConditionSpec, { kind: 'mirror-state' }>, ctx: ConditionContext): Promise<Evaluation> {
  const v: MirrorView = await (await primaryOfMirror(ctx.apis, c.mirror, c.array)).getMirror(c.mirror);
  const secondaries = v.record.images.filter((i) => i.role === 'secondary');
  const describe = secondaries.map((i) => `${i.imageId} ${i.state}${i.fractured ? ` fractured (${i.fractureReason})` : ''}`).join(', ');
  const ok = (i: (typeof secondaries)[number]): boolean => {
    switch (c.state) {
      case 'in-sync':
        return !i.fractured && (i.state === 'SYNCHRONIZED' || i.state === 'CONSISTENT');
      case 'fractured':
        return i.fractured;
      default:
        return i.state === c.state;
    }
  };
  return { holds: secondaries.length > 0 && secondaries.every(ok), seen: `mirror ${c.mirror}: ${describe || 'no secondaries'}` };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until the condition holds (resolves with what was seen) or `timeoutMs` passes (throws with it). */
export async function waitFor(c: ConditionSpec, ctx: ConditionContext, timeoutMs: number, signal?: AbortSignal): Promise<Evaluation> {
  const deadline = Date.now() + timeoutMs;
  let last: Evaluation = { holds: false, seen: 'not evaluated yet' };
  for (;;) {
    if (signal?.aborted) throw Object.assign(new Error(`the run was aborted while waiting for ${c.kind}: ${last.seen}`), { code: 'aborted' });
    try {
      last = await evaluate(c, ctx);
      if (last.holds) return last;
    } catch (e) {
      // An array being restarted does not answer for a while: keep polling until the timeout.
      last = { holds: false, seen: (e as Error).message };
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for ${c.kind}: ${last.seen}`);
    await sleep(POLL_MS);
  }
}
