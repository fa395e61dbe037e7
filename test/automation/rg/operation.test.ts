import { describe, expect, it } from 'vitest';
import { advance, newOperation, OP_TRANSITIONS, opTransition, planSteps, STEP_TRANSITIONS, stepTransition } from '../../../src/automation/rg/operation.js';
import type { ResourceGroupSpec } from '../../../src/automation/rg/types.js';

const res = (name: string, after: string[] = []) => ({ name, start: 's', stop: 't', monitor: 'm', after, startTimeoutMs: 1000, stopTimeoutMs: 1000 });
const rg: ResourceGroupSpec = { name: 'rg0', volumeSets: ['m0', 'g0'], preferredSite: 'east', failover: 'automatic', failback: 'manual', usePitCopy: false, storageTimeoutMs: 1000, resources: [res('app', ['fs']), res('fs')] };
const at = new Date('2026-12-03T00:00:00Z');

describe('operation plans', () => {
  it('online: lease, storage of every set, then the resources in dependency order', () => {
    expect(planSteps('online', rg).map((s) => `${s.kind}:${s.target}`)).toEqual(['lease:rg0', 'storage:m0', 'storage:g0', 'start:fs', 'start:app']);
  });
  it('offline: the resources in reverse order, storage untouched', () => {
    expect(planSteps('offline', rg).map((s) => `${s.kind}:${s.target}`)).toEqual(['lease:rg0', 'stop:app', 'stop:fs']);
  });
  it('move takes the lease from the peer; recover takes it by force', () => {
    expect(planSteps('move', rg)[0]!.kind).toBe('lease');
    expect(planSteps('recover', rg).map((s) => s.kind)).toEqual(['lease-forced', 'storage', 'storage', 'start', 'start']);
  });
});

describe('step and operation tables', () => {
  it('every row of the step table, and every absent one throws', () => {
    const events = ['begin', 'succeed', 'fail', 'resume'] as const;
    for (const [from, row] of Object.entries(STEP_TRANSITIONS))
      for (const ev of events) {
        const to = (row as Record<string, string>)[ev];
        if (to) expect(stepTransition(from as never, ev)).toBe(to);
        else expect(() => stepTransition(from as never, ev)).toThrow(/illegal step transition/);
      }
  });
  it('every row of the operation table, and every absent one throws', () => {
    const events = ['step-done', 'finish', 'fail', 'resume'] as const;
    for (const [from, row] of Object.entries(OP_TRANSITIONS))
      for (const ev of events) {
        const to = (row as Record<string, string>)[ev];
        if (to) expect(opTransition(from as never, ev)).toBe(to);
        else expect(() => opTransition(from as never, ev)).toThrow(/illegal operation transition/);
      }
  });
});

describe('advancing a step log', () => {
  it('runs to the end: every step done, the operation succeeded', () => {
    let op = newOperation('op1', 'offline', rg, 'east', at);
    for (let i = 0; i < op.steps.length; i++) op = advance(advance(op, 'begin', { at }), 'succeed', { at, reason: 'ok' });
    expect(op.status).toBe('succeeded');
    expect(op.steps.every((s) => s.status === 'done')).toBe(true);
    expect(op.endedAt).toBeDefined();
  });
  it('a failed step fails the operation with its code and keeps the cursor on it', () => {
    let op = advance(newOperation('op2', 'online', rg, 'east', at), 'begin', { at });
    op = advance(op, 'succeed', { at });
    op = advance(advance(op, 'begin', { at }), 'fail', { at, reason: 'split-brain', detail: 'both sides took writes' });
    expect(op).toMatchObject({ status: 'failed', cursor: 1, error: { code: 'split-brain' } });
    expect(() => advance(op, 'begin', { at })).toThrow(/no step/);
  });
  it('a resumed step stays running (a controller restarted mid-step); pending cannot resume', () => {
    const op = advance(newOperation('op3', 'online', rg, 'east', at), 'begin', { at });
    expect(advance(op, 'resume', { at }).steps[0]!.status).toBe('running');
    expect(() => advance(newOperation('op4', 'online', rg, 'east', at), 'resume', { at })).toThrow(/illegal/);
  });
});
