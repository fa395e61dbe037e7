import { describe, expect, it } from 'vitest';
import { emptyLease, grant, granted, LeaseRefusal, merge, promise, takeForced } from '../../../src/automation/rg/lease.js';

describe('resource group lease', () => {
  it('is acquired by promising the next epoch and being granted it by the peer', () => {
    const east = emptyLease('rg0');
    const west = emptyLease('rg0');
    const p = promise(east, 'east');
    expect(p.epoch).toBe(1);
    const westAfter = grant(west, 'east', p.epoch);
    expect(westAfter).toMatchObject({ holder: 'east', epoch: 1, forced: false });
    expect(granted(p.lease, 'east', p.epoch)).toMatchObject({ holder: 'east', epoch: 1, promised: 1 });
  });

  it('two controllers asking at once refuse each other: nobody acts', () => {
    const e = promise(emptyLease('rg0'), 'east');
    const w = promise(emptyLease('rg0'), 'west');
    expect(() => grant(e.lease, 'west', w.epoch)).toThrow(LeaseRefusal);
    expect(() => grant(w.lease, 'east', e.epoch)).toThrow(/acquiring it/);
  });

  it('refuses a transfer at or below the epoch it knows', () => {
    const held = { ...emptyLease('rg0'), holder: 'east', epoch: 3, promised: 3 };
    expect(() => grant(held, 'west', 3)).toThrow(/not newer/);
    expect(grant(held, 'west', 4)).toMatchObject({ holder: 'west', epoch: 4 });
  });

  it('a holder does not promise to itself; granted must match the promise', () => {
    const held = granted(promise(emptyLease('rg0'), 'east').lease, 'east', 1);
    expect(() => promise(held, 'east')).toThrow(/holds it already/);
    expect(() => granted(promise(emptyLease('rg0'), 'east').lease, 'east', 2)).toThrow(/not the promised/);
  });

  it('a forced take goes above anything promised and is marked forced', () => {
    const l = { ...emptyLease('rg0'), holder: 'east', epoch: 2, promised: 5 };
    expect(takeForced(l, 'west')).toMatchObject({ holder: 'west', epoch: 6, forced: true });
    const mine = { ...emptyLease('rg0'), holder: 'west', epoch: 2, promised: 2 };
    expect(takeForced(mine, 'west')).toBe(mine);
  });

  it('merging: the higher epoch wins, a lower one changes nothing, equal epochs with two holders is a broken protocol', () => {
    const local = { ...emptyLease('rg0'), holder: 'east', epoch: 1, promised: 1 };
    expect(merge(local, { holder: 'west', epoch: 2, forced: true })).toMatchObject({ holder: 'west', epoch: 2, forced: true });
    expect(merge(local, { holder: null, epoch: 0, forced: false })).toBe(local);
    expect(() => merge(local, { holder: 'west', epoch: 1, forced: false })).toThrow(/held by both/);
  });

  it('asserts its invariant: a holder exactly when the epoch is above 0', () => {
    expect(() => merge(emptyLease('rg0'), { holder: null, epoch: 3, forced: false })).toThrow(/holder null at epoch 3/);
  });
});
