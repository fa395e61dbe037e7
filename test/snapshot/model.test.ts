/**
 * Model test of copy-on-write snapshots: a SnapshotManager over a real LUN image (host changes
 * through its COW layer) against a plain model: the LUN's bytes and, per snapshot, its bytes as
 * taken. Random writes (unaligned offsets and lengths, crossing regions), trims, write-zeroes,
 * snapshot creates, deletes in any order, rollbacks and close + reopen of the manager; after
 * every command every live snapshot must read exactly its model copy, the LUN its model, and the
 * store's use must match the model's count of saved copies.
 *
 * Saved copies are modelled independently of the implementation's intervals: every change to a
 * region is an event, and a snapshot that has not saved a region yet saves it at the first
 * change event (the event's id). A saved copy is one (region, event) pair that some live snapshot
 * holds, so the store holds exactly that many slots; the overflow policies follow from it.
 */
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { BlockError } from '../../src/block/index.js';
import { fileOps } from '../../src/native/index.js';
import { SnapshotError, type OverflowPolicy } from '../../src/snapshot/index.js';
import { fcSeed } from '../support/random.js';
import { Rig, firstDiff, tempRoot } from './helpers.js';

const root = tempRoot('sanbox-snap-model-');
afterAll(() => root.cleanup());
let runNo = 0;

/** Trim punches holes where the addon is loaded (reads then give zeroes); else it is a no-op. */
const TRIM_ZEROES = fileOps !== null;

type Cmd =
  | { kind: 'write'; offset: number; length: number; fill: number }
  | { kind: 'trim'; offset: number; length: number }
  | { kind: 'zero'; offset: number; length: number }
  | { kind: 'snap' }
  | { kind: 'delete'; pick: number }
  | { kind: 'rollback'; pick: number }
  | { kind: 'reopen' };

interface Geometry {
  size: number;
  regionSize: number;
  /** Slots of the store. */
  slots: number;
  policy: OverflowPolicy;
}

function cmdArb(g: Geometry, w: { snap: number; delete: number; rollback: number; reopen: number }): fc.Arbitrary<Cmd> {
  const { size, regionSize: rs } = g;
  const offset = fc.oneof(
    { weight: 4, arbitrary: fc.nat(size / 4096 - 1).map((b) => b * 4096) },
    { weight: 1, arbitrary: fc.nat(size / 512 - 1).map((b) => b * 512) },
    { weight: 1, arbitrary: fc.nat(size - 1) },
  );
  const length = fc.oneof(
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 4 }).map((n) => n * 4096) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 * rs + 100 }) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 700 }) },
  );
  const range = fc.tuple(offset, length).map(([o, l]) => ({ offset: o, length: Math.min(l, size - o) }));
  return fc.oneof(
    { weight: 8, arbitrary: fc.tuple(range, fc.nat(255)).map(([r, fill]) => ({ kind: 'write' as const, ...r, fill })) },
    { weight: 2, arbitrary: range.map((r) => ({ kind: 'trim' as const, ...r })) },
    { weight: 2, arbitrary: range.map((r) => ({ kind: 'zero' as const, ...r })) },
    { weight: w.snap, arbitrary: fc.constant({ kind: 'snap' as const }) },
    // pick -1: the newest (its shared copies must then count as saved for the one below it).
    { weight: w.delete, arbitrary: fc.oneof(fc.constant(-1), fc.nat(63)).map((pick) => ({ kind: 'delete' as const, pick })) },
    { weight: w.rollback, arbitrary: fc.nat(63).map((pick) => ({ kind: 'rollback' as const, pick })) },
    { weight: w.reopen, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  );
}

/** A write's data: not constant, different per fill and per position. */
function pattern(fill: number, offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (fill * 37 + ((offset + i) >> 3) * 11 + 1) & 0xff || 0x5a;
  return b;
}

interface SnapModel {
  name: string;
  data: Buffer;
  state: 'valid' | 'invalid';
  /** region -> the change event whose saved copy this snapshot reads. */
  saved: Map<number, number>;
}

class Model {
  readonly lun: Buffer;
  /** Creation order (= seq order); invalid ones stay until deleted. */
  snaps: SnapModel[] = [];
  /** The last change event. */
  event = 0;
  private names = 0;
  /** A rollback left unfinished (the LUN is offline): its target. */
  rollingBack: SnapModel | undefined;

  constructor(readonly g: Geometry) {
    this.lun = Buffer.alloc(g.size);
  }

  live(): SnapModel[] {
    return this.snaps.filter((s) => s.state === 'valid');
  }

  /** Saved copies the store holds: (region, event) pairs of live snapshots. */
  slotsUsed(): number {
    const copies = new Set<string>();
    for (const s of this.live()) for (const [r, e] of s.saved) copies.add(`${r}:${e}`);
    return copies.size;
  }

  regionsOf(offset: number, length: number): number[] {
    const rs = this.g.regionSize;
    const out: number[] = [];
    for (let r = Math.floor(offset / rs); r <= Math.floor((offset + length - 1) / rs); r++) out.push(r);
    return out;
  }

  /**
   * The copy-on-write of a change, region by region in order: every live snapshot lacking the
   * region saves it at this event; a full store refuses (false; regions before stay saved) or
   * invalidates the oldest live snapshot (never `protect`, a rollback's target) until there is
   * room or no snapshot lacks the region any more.
   */
  beforeChange(offset: number, length: number, protect?: SnapModel): boolean {
    for (const r of this.regionsOf(offset, length)) {
      for (;;) {
        const lacking = this.live().filter((s) => !s.saved.has(r));
        if (lacking.length === 0) break;
        if (this.slotsUsed() < this.g.slots) {
          const e = ++this.event;
          for (const s of lacking) s.saved.set(r, e);
          break;
        }
        if (this.g.policy === 'refuse-writes') return false;
        const victim = this.live().find((s) => s !== protect)!;
        victim.state = 'invalid';
        reached.invalidated++;
      }
    }
    return true;
  }

  snap(): SnapModel {
    const s: SnapModel = { name: `s${this.names++}`, data: Buffer.from(this.lun), state: 'valid', saved: new Map() };
    this.snaps.push(s);
    return s;
  }

  /** Restores the target's saved regions in order; false when one is refused (the rollback stays unfinished). */
  rollback(s: SnapModel): boolean {
    this.rollingBack = s;
    const rs = this.g.regionSize;
    for (const r of [...s.saved.keys()].sort((a, b) => a - b)) {
      const at = r * rs;
      const len = Math.min(rs, this.g.size - at);
      if (!this.beforeChange(at, len, s)) return false;
      s.data.copy(this.lun, at, at, at + len);
    }
    this.rollingBack = undefined;
    return true;
  }
}

async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof BlockError) return e.errno;
    if (e instanceof SnapshotError) return e.code;
    throw e;
  }
}

function expectBytes(got: Buffer, want: Buffer, what: string): void {
  if (!got.equals(want)) {
    const at = firstDiff(got, want);
    throw new Error(`${what} differs from the model at byte ${at} (region ${Math.floor(at / 4096)}@4K): got ${got[at]}, want ${want[at]}`);
  }
}

async function check(rig: Rig, model: Model, step: string): Promise<void> {
  expectBytes(await rig.lun.read(0, model.g.size), model.lun, `LUN after ${step}`);
  const views = rig.manager.list('disk0');
  expect(views.map((v) => [v.name, v.state]), `snapshot list after ${step}`).toEqual(model.snaps.map((s) => [s.name, s.state]));
  for (const s of model.snaps) {
    const d = rig.manager.device(`disk0@${s.name}`);
    if (s.state === 'invalid') {
      expect(d, `invalid snapshot ${s.name} has no device (${step})`).toBeUndefined();
      continue;
    }
    expect(d, `snapshot ${s.name} has a device (${step})`).toBeDefined();
    expectBytes(await d!.device.read(0, model.g.size), s.data, `snapshot ${s.name} after ${step}`);
    expect(d!.view.usedBytes, `usedBytes of ${s.name} after ${step}`).toBe(s.saved.size * model.g.regionSize);
    // Block status covers the snapshot exactly, and what it calls zero reads as zeroes.
    const ext = await d!.device.blockStatus(0, model.g.size);
    expect(ext.reduce((n, e) => n + e.length, 0), `block status of ${s.name} covers it (${step})`).toBe(model.g.size);
    let at = 0;
    for (const e of ext) {
      if (e.zero && !s.data.subarray(at, at + e.length).equals(Buffer.alloc(e.length))) throw new Error(`snapshot ${s.name}: block status says zero at ${at}+${e.length} but it holds data (${step})`);
      at += e.length;
    }
  }
  expect(rig.manager.storeOf('disk0').usedBytes, `store use after ${step}`).toBe(model.slotsUsed() * model.g.regionSize);
  expect(rig.manager.offline(0), `LUN offline after ${step}`).toBe(model.rollingBack !== undefined);
}

/** What the runs reached (most live snapshots at once, invalidations, refusals), to check the generators reach the cases. */
const reached = { maxLive: 0, invalidated: 0, refused: 0, rollbacks: 0, reopens: 0 };

async function run(g: Geometry, cmds: Cmd[]): Promise<void> {
  const dir = join(root.path, `run${runNo++}`);
  mkdirSync(dir);
  const rig = await Rig.create(dir, g.size, { storeBytes: g.slots * g.regionSize, regionSize: g.regionSize, policy: g.policy });
  const model = new Model(g);
  try {
    for (const [i, c] of cmds.entries()) {
      const step = `command ${i} ${JSON.stringify(c)}`;
      switch (c.kind) {
        case 'write':
        case 'trim':
        case 'zero': {
          const data = c.kind === 'write' ? pattern(c.fill, c.offset, c.length) : undefined;
          const p = c.kind === 'write' ? rig.lun.write(c.offset, data!) : c.kind === 'trim' ? rig.lun.trim(c.offset, c.length) : rig.lun.writeZeroes(c.offset, c.length);
          const got = await errnoOf(p);
          let want = 'ok';
          if (model.rollingBack) want = 'ESHUTDOWN';
          else if (!model.beforeChange(c.offset, c.length)) {
            want = 'ENOSPC';
            reached.refused++;
          }
          expect(got, step).toBe(want);
          if (want === 'ok') {
            if (c.kind === 'write') data!.copy(model.lun, c.offset);
            else if (c.kind === 'zero' || TRIM_ZEROES) model.lun.fill(0, c.offset, c.offset + c.length);
          }
          break;
        }
        case 'snap': {
          if (model.snaps.length >= 64) continue;
          const want = model.rollingBack ? 'busy' : 'ok';
          const name = want === 'ok' ? model.snap().name : 'x';
          expect(await errnoOf(rig.manager.create(['disk0'], name)), step).toBe(want);
          break;
        }
        case 'delete': {
          if (model.snaps.length === 0) continue;
          const s = c.pick < 0 ? model.snaps.at(-1)! : model.snaps[c.pick % model.snaps.length]!;
          const want = model.rollingBack === s ? 'busy' : 'ok';
          expect(await errnoOf(rig.manager.delete('disk0', s.name)), step).toBe(want);
          if (want === 'ok') model.snaps = model.snaps.filter((x) => x !== s);
          break;
        }
        case 'rollback': {
          const live = model.live();
          if (live.length === 0) continue;
          const s = live[c.pick % live.length]!;
          const want = model.rollback(s) ? 'ok' : 'io';
          expect(await errnoOf(rig.manager.rollback('disk0', s.name)), step).toBe(want);
          break;
        }
        case 'reopen': {
          // An unfinished rollback resumes at open; skip the reopen when the model says it would fail again.
          if (model.rollingBack) {
            const probe = structuredCloneModel(model);
            if (!probe.rollback(probe.rollingBack!)) continue;
            model.rollback(model.rollingBack);
          }
          await rig.reopen();
          break;
        }
      }
      await check(rig, model, step);
      reached.maxLive = Math.max(reached.maxLive, model.live().length);
      if (c.kind === 'rollback') reached.rollbacks++;
      if (c.kind === 'reopen') reached.reopens++;
    }
  } finally {
    await rig.close();
  }
}

/** A throwaway copy of the model (to ask what a command would do). */
function structuredCloneModel(m: Model): Model {
  const c = new Model(m.g);
  m.lun.copy(c.lun);
  const map = new Map<SnapModel, SnapModel>();
  c.snaps = m.snaps.map((s) => {
    const x = { name: s.name, data: Buffer.from(s.data), state: s.state, saved: new Map(s.saved) };
    map.set(s, x);
    return x;
  });
  c.rollingBack = m.rollingBack && map.get(m.rollingBack);
  c.event = m.event;
  return c;
}

const RS = 8192;
const SIZE = 256 * 1024;

/** Runs the model property over `g`; returns what the runs reached. */
async function property(
  g: Geometry,
  weights: { snap: number; delete: number; rollback: number; reopen: number },
  commands: { minLength: number; maxLength: number },
  numRuns: number,
  seed: number,
): Promise<typeof reached> {
  Object.assign(reached, { maxLive: 0, invalidated: 0, refused: 0, rollbacks: 0, reopens: 0 });
  await fc.assert(
    fc.asyncProperty(fc.array(cmdArb(g, weights), commands), (cmds) => run(g, cmds)),
    { numRuns, ...fcSeed(seed) },
  );
  return { ...reached };
}

describe('snapshots against a byte-array model', () => {
  it('every snapshot reads as taken and the LUN as written, through writes, trims, zeroes, deletes, rollbacks and reopens', async () => {
    // The last region is half a region (a LUN need not be a multiple of the region size).
    const g: Geometry = { size: SIZE + RS / 2, regionSize: RS, slots: 4096, policy: 'invalidate-oldest' };
    const r = await property(g, { snap: 3, delete: 1, rollback: 1, reopen: 1 }, { minLength: 1, maxLength: 40 }, 100, 0x5eed_5a01);
    expect(r.rollbacks).toBeGreaterThan(0);
    expect(r.reopens).toBeGreaterThan(0);
    expect(r.invalidated + r.refused).toBe(0);
  }, 120_000);

  it('deep stacks: 16 and more snapshots at once, with 4 KiB regions', async () => {
    const g: Geometry = { size: SIZE / 4, regionSize: 4096, slots: 4096, policy: 'refuse-writes' };
    const r = await property(g, { snap: 10, delete: 1, rollback: 1, reopen: 1 }, { minLength: 45, maxLength: 50 }, 12, 0x5eed_5a02);
    expect(r.maxLive).toBeGreaterThanOrEqual(16);
  }, 120_000);

  it('a full store under invalidate-oldest: writes succeed, the oldest snapshots become invalid, the others stay exact', async () => {
    const g: Geometry = { size: SIZE, regionSize: RS, slots: 5, policy: 'invalidate-oldest' };
    const r = await property(g, { snap: 3, delete: 2, rollback: 1, reopen: 1 }, { minLength: 1, maxLength: 40 }, 100, 0x5eed_5a03);
    expect(r.invalidated).toBeGreaterThan(0);
  }, 120_000);

  it('a full store under refuse-writes: a write that needs a slot fails with ENOSPC and changes nothing', async () => {
    const g: Geometry = { size: SIZE + RS / 2, regionSize: RS, slots: 5, policy: 'refuse-writes' };
    const r = await property(g, { snap: 3, delete: 2, rollback: 1, reopen: 1 }, { minLength: 1, maxLength: 40 }, 100, 0x5eed_5a04);
    expect(r.refused).toBeGreaterThan(0);
  }, 120_000);
});
