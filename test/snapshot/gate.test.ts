// WriteGate (src/snapshot/gate.ts): a hold waits for the changes in flight, changes entering
// while it is held wait for the release, holds nest, and unbalanced calls throw.
import { describe, it, expect } from 'vitest';
import { WriteGate } from '../../src/snapshot/index.js';

/** Lets every pending promise continuation run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** A promise with a flag saying whether it settled. */
function track<T>(p: Promise<T>): { p: Promise<T>; done: () => boolean } {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  return { p, done: () => done };
}

describe('WriteGate', () => {
  it('an open gate admits changes at once (no promise)', () => {
    const g = new WriteGate();
    expect(g.held).toBe(false);
    expect(g.enter()).toBeUndefined();
    expect(g.enter()).toBeUndefined();
    g.leave();
    g.leave();
  });

  it('hold waits for every change in flight to leave', async () => {
    const g = new WriteGate();
    g.enter();
    g.enter();
    const h = track(g.hold());
    expect(g.held).toBe(true);
    await settle();
    expect(h.done()).toBe(false);
    g.leave();
    await settle();
    expect(h.done()).toBe(false);
    g.leave();
    await settle();
    expect(h.done()).toBe(true);
    g.release();
  });

  it('a hold with nothing in flight resolves at once', async () => {
    const g = new WriteGate();
    const h = track(g.hold());
    await settle();
    expect(h.done()).toBe(true);
    g.release();
    expect(g.held).toBe(false);
  });

  it('changes entering while the gate is held wait for the release, then run', async () => {
    const g = new WriteGate();
    await g.hold();
    const w1 = g.enter();
    const w2 = g.enter();
    expect(w1).toBeInstanceOf(Promise);
    const t1 = track(w1!);
    const t2 = track(w2!);
    await settle();
    expect(t1.done() || t2.done()).toBe(false);
    g.release();
    await settle();
    expect(t1.done() && t2.done()).toBe(true);
    // They count as in flight now: a new hold waits for both to leave.
    const h = track(g.hold());
    await settle();
    expect(h.done()).toBe(false);
    g.leave();
    await settle();
    expect(h.done()).toBe(false);
    g.leave();
    await settle();
    expect(h.done()).toBe(true);
    g.release();
  });

  it('holds nest: the gate opens at the last release', async () => {
    const g = new WriteGate();
    await g.hold();
    await g.hold();
    const w = track(g.enter()!);
    g.release();
    expect(g.held).toBe(true);
    await settle();
    expect(w.done()).toBe(false);
    g.release();
    expect(g.held).toBe(false);
    await settle();
    expect(w.done()).toBe(true);
    g.leave();
  });

  it('two holds taken while changes are in flight both wait for them to drain', async () => {
    const g = new WriteGate();
    g.enter();
    const h1 = track(g.hold());
    const h2 = track(g.hold());
    await settle();
    expect(h1.done() || h2.done()).toBe(false);
    g.leave();
    await settle();
    expect(h1.done() && h2.done()).toBe(true);
    g.release();
    expect(g.held).toBe(true);
    g.release();
    expect(g.held).toBe(false);
  });

  it('leave without enter and release without hold throw', () => {
    const g = new WriteGate();
    expect(() => g.leave()).toThrow(/leave without enter/);
    expect(() => g.release()).toThrow(/release without hold/);
    g.enter();
    g.leave();
    expect(() => g.leave()).toThrow(/leave without enter/);
  });
});
