import { describe, expect, it } from 'vitest';
import { electMaster, type HostLiveness } from '../../src/heartbeat/index.js';

const HOSTS = ['h1', 'h2', 'h3'];
const up: HostLiveness = { valid: true, reason: 'ok' };
const down = (reason: string): HostLiveness => ({ valid: false, reason });

describe('electMaster', () => {
  it('initial election: the first valid host in configured order (self counts as valid)', () => {
    expect(electMaster(HOSTS, { h1: up, h3: up }, 'h2', null)).toMatchObject({ master: 'h1', changed: true, reason: 'initial-election' });
    expect(electMaster(HOSTS, { h1: down('silent') }, 'h3', null)).toMatchObject({ master: 'h3', changed: true });
    expect(electMaster(HOSTS, {}, 'h2', null).master).toBe('h2');
  });

  it('the current master stays while valid', () => {
    expect(electMaster(HOSTS, { h1: up, h2: up }, 'h3', 'h2')).toEqual({ master: 'h2', changed: false, reason: 'master-alive', detail: 'h2 stays master' });
    expect(electMaster(HOSTS, { h1: up }, 'h2', 'h2')).toMatchObject({ master: 'h2', changed: false });
  });

  it.each(['silent', 'time-stale', 'unknown-sender', 'instance-expired'])('a master that is %s is replaced by the first valid host', (reason) => {
    const d = electMaster(HOSTS, { h1: down(reason), h3: up }, 'h2', 'h1');
    expect(d).toMatchObject({ master: 'h2', changed: true, reason: 'master-failed' });
    expect(d.detail).toContain(reason);
  });

  it('no flapping: a recovered host earlier in the order does not take the role back', () => {
    let current: string | null = null;
    const timeline: Array<Record<string, HostLiveness>> = [{ h1: up, h2: up }, { h1: down('silent'), h2: up }, { h1: up, h2: up }, { h1: down('silent'), h2: up }, { h1: up, h2: up }];
    const masters = timeline.map((l) => (current = electMaster(HOSTS, l, 'h3', current).master));
    expect(masters).toEqual(['h1', 'h2', 'h2', 'h2', 'h2']);
  });

  it('a master no longer configured is replaced', () => {
    expect(electMaster(HOSTS, { h1: up }, 'h2', 'h9')).toMatchObject({ master: 'h1', changed: true, reason: 'master-not-configured' });
  });

  it('throws on misuse', () => {
    expect(() => electMaster([], {}, 'h1', null)).toThrow(/at least one/);
    expect(() => electMaster(['h1', 'h1'], {}, 'h1', null)).toThrow(/unique/);
    expect(() => electMaster(HOSTS, {}, 'h9', null)).toThrow(/self/);
  });
});
