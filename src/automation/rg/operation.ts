/**
 * An operation on a resource group as a persisted step log: a plan of steps built here, and the
 * state machines of the operation and of each step as tables (anything absent is illegal). The
 * controller persists the log before and after every step, so a controller that crashes resumes
 * at the step it was in; every step is idempotent (query, act, query again until the goal).
 */
import { startOrder, stopOrder } from '../resources/index.js';
import type { ResourceGroupSpec } from './types.js';

export type OpKind = 'online' | 'offline' | 'move' | 'recover';

/**
 * - lease: take the group's lease from the peer (which stops the group's host resources at its site first);
 * - lease-forced: take it without the peer (a recovery of a lost site);
 * - storage: bring one volume set to the operation's goal (./storage-decision.ts);
 * - start / stop: one host resource.
 */
export type StepKind = 'lease' | 'lease-forced' | 'storage' | 'start' | 'stop';
export type StepStatus = 'pending' | 'running' | 'done' | 'failed';
export type StepEvent = 'begin' | 'succeed' | 'fail' | 'resume';

export const STEP_TRANSITIONS: Readonly<Record<StepStatus, Readonly<Partial<Record<StepEvent, StepStatus>>>>> = {
  pending: { begin: 'running' },
  running: { succeed: 'done', fail: 'failed', resume: 'running' },
  done: {},
  failed: {},
};

export type OpStatus = 'running' | 'succeeded' | 'failed';
export type OpEvent = 'step-done' | 'finish' | 'fail' | 'resume';

export const OP_TRANSITIONS: Readonly<Record<OpStatus, Readonly<Partial<Record<OpEvent, OpStatus>>>>> = {
  running: { 'step-done': 'running', finish: 'succeeded', fail: 'failed', resume: 'running' },
  succeeded: {},
  failed: {},
};

export function stepTransition(s: StepStatus, e: StepEvent): StepStatus {
  const next = STEP_TRANSITIONS[s]?.[e];
  if (!next) throw new Error(`illegal step transition: ${e} in ${s}`);
  return next;
}

export function opTransition(s: OpStatus, e: OpEvent): OpStatus {
  const next = OP_TRANSITIONS[s]?.[e];
  if (!next) throw new Error(`illegal operation transition: ${e} in ${s}`);
  return next;
}

export interface Step {
  kind: StepKind;
  /** the volume set or host resource; the group for lease steps */
  target: string;
  status: StepStatus;
  reason?: string;
  detail?: string;
  startedAt?: string;
  endedAt?: string;
}

export interface Operation {
  id: string;
  kind: OpKind;
  rg: string;
  /** where the group goes (online, move, recover) or where it stops (offline) */
  site: string;
  requestedAt: string;
  status: OpStatus;
  steps: Step[];
  /** the step to run next (or running) */
  cursor: number;
  error?: { code: string; message: string };
  endedAt?: string;
  /** asynchronous groups switched to synchronous for a swap, with the mode to give back after it */
  modes?: Record<string, string>;
}

const step = (kind: StepKind, target: string): Step => ({ kind, target, status: 'pending' });

/**
 * The plan: storage first and host resources after it, in dependency order; offline in reverse
 * and storage last (nothing to do to it: the sets keep replicating, ready for the next online).
 */
export function planSteps(kind: OpKind, rg: ResourceGroupSpec): Step[] {
  const storage = rg.volumeSets.map((s) => step('storage', s));
  const starts = startOrder(rg.resources).map((r) => step('start', r));
  switch (kind) {
    case 'online':
      return [step('lease', rg.name), ...storage, ...starts];
    case 'offline':
      return [step('lease', rg.name), ...stopOrder(rg.resources).map((r) => step('stop', r))];
    case 'move':
      return [step('lease', rg.name), ...storage, ...starts];
    case 'recover':
      return [step('lease-forced', rg.name), ...storage, ...starts];
  }
}

export function newOperation(id: string, kind: OpKind, rg: ResourceGroupSpec, site: string, now: Date): Operation {
  return { id, kind, rg: rg.name, site, requestedAt: now.toISOString(), status: 'running', steps: planSteps(kind, rg), cursor: 0 };
}

/** The step at the cursor moved by `event` (a new Operation; the log is replaced, never mutated in place). */
export function advance(op: Operation, event: StepEvent, note: { reason?: string; detail?: string; at: Date }): Operation {
  const cur = op.steps[op.cursor];
  if (!cur || op.status !== 'running') throw new Error(`operation ${op.id}: no step to ${event} (status ${op.status}, cursor ${op.cursor})`);
  const status = stepTransition(cur.status, event);
  const at = note.at.toISOString();
  const updated: Step = { ...cur, status, ...(note.reason ? { reason: note.reason } : {}), ...(note.detail ? { detail: note.detail } : {}), ...(event === 'begin' ? { startedAt: at } : {}), ...(status === 'done' || status === 'failed' ? { endedAt: at } : {}) };
  const steps = op.steps.map((s, i) => (i === op.cursor ? updated : s));
  if (status === 'failed') return { ...op, steps, status: opTransition(op.status, 'fail'), error: { code: note.reason ?? 'failed', message: note.detail ?? '' }, endedAt: at };
  if (status !== 'done') return { ...op, steps };
  const cursor = op.cursor + 1;
  const finished = cursor === steps.length;
  return { ...op, steps, cursor, status: opTransition(op.status, finished ? 'finish' : 'step-done'), ...(finished ? { endedAt: at } : {}) };
}
