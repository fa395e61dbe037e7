/**
 * Runs one operation's step log: persists it before and after every step, runs the step, and
 * moves the log by the tables of ../rg/operation.ts. A resumed operation re-runs the step it was
 * in (every step is idempotent). Before every step but the lease's, the controller must hold the
 * group's lease: a controller that lost it stops there (`lease-lost`), whatever it was doing.
 */
import { advance, type OpKind, type Operation, type Step } from '../rg/operation.js';
import type { StorageGoal } from '../rg/storage-decision.js';
import type { ResourceGroupSpec } from '../rg/types.js';
import { ResourceError } from '../resources/index.js';
import { driveSet, StepFailure } from './storage.js';

export interface ExecutorHost {
  site: string;
  lab: string;
  emit(type: string, details: Record<string, unknown>): void;
  save(op: Operation): void;
  holdsLease(rg: string): boolean;
  /** take the lease from the peer (throws StepFailure when it cannot) */
  acquireLease(rg: string): Promise<void>;
  takeLeaseForced(rg: string): void;
  resources(rg: ResourceGroupSpec): { start(name: string): Promise<void>; stop(name: string): Promise<void> };
}

/** What an operation's storage steps bring each set to (offline has none). */
export function goalOf(kind: OpKind, site: string, rg: ResourceGroupSpec): StorageGoal {
  if (kind === 'recover') return { op: 'recover', site, usePitCopy: rg.usePitCopy };
  if (kind === 'move') return { op: 'move', site };
  return { op: 'online', site };
}

export async function runOperation(host: ExecutorHost, rg: ResourceGroupSpec, start: Operation): Promise<Operation> {
  let op = start;
  const ids = { operation: op.id, kind: op.kind, rg: op.rg, site: op.site };
  while (op.status === 'running') {
    const step = op.steps[op.cursor]!;
    if (step.status === 'pending') op = advance(op, 'begin', { at: new Date() });
    else op = advance(op, 'resume', { at: new Date() });
    host.save(op);
    host.emit(step.status === 'pending' ? 'automation.step-started' : 'automation.step-resumed', { ...ids, step: op.cursor, stepKind: step.kind, target: step.target });
    const t0 = Date.now();
    const remember = (group: string, mode: string) => {
      // persisted at once: a controller that crashes after the switch still gives the mode back
      op = { ...op, modes: { ...(op.modes ?? {}), [group]: mode } };
      host.save(op);
    };
    try {
      const reason = await runStep(host, rg, op, step, remember);
      op = advance(op, 'succeed', { at: new Date(), reason });
      host.emit('automation.step-done', { ...ids, step: op.cursor - 1, stepKind: step.kind, target: step.target, reason, durationMs: Date.now() - t0 });
    } catch (e) {
      const code = e instanceof StepFailure || e instanceof ResourceError ? e.code : 'internal';
      op = advance(op, 'fail', { at: new Date(), reason: code, detail: (e as Error).message });
      host.emit('automation.step-failed', { ...ids, step: op.cursor, stepKind: step.kind, target: step.target, code, message: (e as Error).message });
    }
    host.save(op);
  }
  return op;
}

async function runStep(host: ExecutorHost, rg: ResourceGroupSpec, op: Operation, step: Step, remember: (group: string, mode: string) => void): Promise<string> {
  if (step.kind === 'lease') return host.holdsLease(rg.name) ? 'held' : (await host.acquireLease(rg.name), 'acquired');
  if (step.kind === 'lease-forced') return host.holdsLease(rg.name) ? 'held' : (host.takeLeaseForced(rg.name), 'taken');
  if (!host.holdsLease(rg.name)) throw new StepFailure('lease-lost', `the controller of site ${host.site} no longer holds the lease of ${rg.name}: it stops here`);
  const resources = host.resources(rg);
  switch (step.kind) {
    case 'storage': {
      const mode = op.modes?.[step.target];
      const r = await driveSet(
        { lab: host.lab, emit: (t, d) => host.emit(t, { operation: op.id, rg: op.rg, ...d }), remember, ...(mode ? { restoreMode: mode } : {}) },
        step.target,
        goalOf(op.kind, op.site, rg),
        rg.storageTimeoutMs,
      );
      return r.state;
    }
    case 'start':
      await resources.start(step.target);
      return 'running';
    case 'stop':
      await resources.stop(step.target);
      return 'stopped';
    default:
      throw new Error(`unknown step kind ${String(step.kind)}`);
  }
}
