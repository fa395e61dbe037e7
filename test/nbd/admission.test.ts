// One connection's back-pressure (src/nbd/admission.ts), driven directly: its own limits, its
// share of the server's memory budget, and the books of what it holds.
import { describe, it, expect } from 'vitest';
import { Admission, costOf, DEFAULT_LIMITS } from '../../src/nbd/admission.js';
import { CMD, LIMITS } from '../../src/nbd/constants.js';
import { MemoryBudget } from '../../src/nbd/memory-budget.js';

const MiB = 1024 * 1024;

function admission(limits = {}, budgetBytes = 64 * MiB, queued = { bytes: 0 }) {
  const budget = new MemoryBudget(budgetBytes);
  const woken: number[] = [];
  const waiter = { wake: () => woken.push(1) };
  const a = new Admission(7, { ...DEFAULT_LIMITS, ...limits }, budget, waiter, () => queued.bytes);
  a.join();
  return { a, budget, woken, queued };
}

describe('NBD admission', () => {
  it('one request is always admitted; past maxInflight or maxInflightBytes the next waits', () => {
    const { a } = admission({ maxInflight: 2, maxInflightBytes: 8 * MiB });
    expect(a.congested(0)).toBe(false);
    a.begin(CMD.WRITE, 4096);
    a.begin(CMD.FLUSH, 0);
    expect(a.congested(0)).toBe(true); // two in flight
    a.end(CMD.FLUSH, 0);
    expect(a.congested(0)).toBe(false);
    a.begin(CMD.READ, 8 * MiB); // the bytes limit, reached by one request: admitted alone
    expect(a.congested(0)).toBe(true);
  });

  it('replies queued past maxQueuedReplyBytes stop reading requests', () => {
    const { a, queued } = admission({ maxQueuedReplyBytes: MiB });
    queued.bytes = MiB;
    expect(a.congested(0)).toBe(true);
    queued.bytes = MiB - 1;
    expect(a.congested(0)).toBe(false);
  });

  it('books: a read is charged when it starts, a write when its payload was taken; both held in the budget until released', () => {
    const { a, budget } = admission();
    a.charge(4096); // a write's payload, read from the socket
    a.begin(CMD.WRITE, 4096);
    a.begin(CMD.READ, 8192);
    expect([a.inflight, a.inflightBytes, a.held, budget.used, budget.holding]).toEqual([2, 12288, 12288, 12288, 1]);
    a.end(CMD.WRITE, 4096);
    a.end(CMD.READ, 8192); // a read's charge goes with its reply, released when written
    expect([a.inflight, a.inflightBytes, a.held, budget.used]).toEqual([0, 0, 8192, 8192]);
    a.uncharge(8192);
    expect([a.held, budget.used, budget.holding]).toEqual([0, 0, 0]);
  });

  it('over its share of a full budget it waits on the budget, and a release wakes it', () => {
    const { a, budget, woken } = admission({}, 2 * MiB);
    a.charge(MiB); // at the guarantee (1 MiB)
    const other = new Admission(8, DEFAULT_LIMITS, budget, { wake: () => {} }, () => 0);
    other.join();
    other.charge(MiB);
    expect(a.congested(MiB)).toBe(true);
    expect(budget.stats().waiting).toBe(1);
    other.uncharge(MiB);
    expect(woken.length).toBeGreaterThan(0);
    a.resumed();
    a.leave();
    expect(budget.stats()).toMatchObject({ waiting: 0, connections: 1 });
  });

  it('releasing more than it holds is a bug that fails loudly', () => {
    const { a } = admission();
    a.charge(10);
    expect(() => a.uncharge(11)).toThrow(/released more budget than it held/);
  });

  it('what a request holds: the data of a read or a write within the payload limit, nothing else', () => {
    expect(costOf(CMD.WRITE, 4096)).toBe(4096);
    expect(costOf(CMD.READ, 1 << 20)).toBe(1 << 20);
    expect(costOf(CMD.TRIM, 1 << 30)).toBe(0);
    expect(costOf(CMD.WRITE, LIMITS.MAX_PAYLOAD + 1)).toBe(0);
  });
});
