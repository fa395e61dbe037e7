/**
 * The nemesis's schedule: which faults happen when, drawn from the seed and nothing else, so the
 * same scenario and seed give the same trace (the run's report keeps it; `--replay` runs a
 * report's trace again without drawing). Pure: no clock, no I/O.
 *
 * Each nemesis draws in its own window [fromMs, untilMs): a pause from `everyMs`, then one of its
 * faults (by weight) with its parameters and its duration from `forMs`; the next pause starts
 * when that fault has been undone, so one nemesis's faults never overlap. A fault is drawn only
 * if it starts before untilMs; it may end after it (it is always undone).
 */
import { mixSeed, mulberry32, type Random } from '../../random/index.js';
import type { ActionSpec, NemesisFaultSpec, NemesisSpec, Range, ScenarioSpec } from '../spec/types.js';
import type { TraceFault } from '../report/types.js';

/** Every fault of every nemesis, merged in time order (ties: nemesis order). */
export function drawSchedule(spec: Pick<ScenarioSpec, 'nemesis'>, seed: number): TraceFault[] {
  const all: Omit<TraceFault, 'index'>[] = [];
  spec.nemesis.forEach((n, i) => all.push(...drawNemesis(n, mulberry32(mixSeed(seed, 0x6e656d, i)))));
  const order = all.map((f, i) => ({ f, i })).sort((x, y) => x.f.atMs - y.f.atMs || x.i - y.i);
  return order.map(({ f }, index) => ({ index, ...f }));
}

function drawNemesis(n: NemesisSpec, random: Random): Omit<TraceFault, 'index'>[] {
  if (n.faults.length === 0) throw new Error(`nemesis ${n.name} has no faults`);
  const out: Omit<TraceFault, 'index'>[] = [];
  let t = n.fromMs;
  for (;;) {
    t += drawInt(random, n.everyMs);
    if (t >= n.untilMs) return out;
    const fault = pickWeighted(random, n.faults);
    const durationMs = drawInt(random, fault.forMs);
    const { inject, undo, label } = concretize(fault, random, durationMs);
    out.push({ nemesis: n.name, atMs: t, durationMs, inject, undo, label });
    t += durationMs;
  }
}

/** An integer in [min, max] (both ends possible). */
export function drawInt(random: Random, r: Range): number {
  if (!(r.min <= r.max)) throw new Error(`bad range ${r.min}..${r.max}`);
  return r.min + Math.floor(random() * (r.max - r.min + 1));
}

function pickWeighted<T extends { weight: number }>(random: Random, items: T[]): T {
  const total = items.reduce((s, x) => s + x.weight, 0);
  if (!(total > 0)) throw new Error('fault weights must add up to more than 0');
  let r = random() * total;
  for (const x of items) {
    r -= x.weight;
    if (r < 0) return x;
  }
  return items[items.length - 1];
}

function pick<T>(random: Random, items: T[]): T {
  if (items.length === 0) throw new Error('nothing to pick from');
  return items[Math.floor(random() * items.length)];
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The fault's inject and undo actions with every random parameter drawn. */
function concretize(f: NemesisFaultSpec, random: Random, durationMs: number): { inject: ActionSpec; undo: ActionSpec; label: string } {
  switch (f.kind) {
    case 'link-cut': {
      const direction = pick(random, f.directions);
      return {
        inject: { kind: 'link-cut', link: f.link, direction, reset: false },
        undo: { kind: 'link-restore', link: f.link },
        label: `link ${f.link} cut ${direction} for ${seconds(durationMs)}`,
      };
    }
    case 'link-latency': {
      const latencyMs = drawInt(random, f.latencyMs);
      return {
        inject: { kind: 'link-set', link: f.link, direction: 'both', latencyMs, jitterMs: null, bandwidth: null },
        undo: { kind: 'link-settings-restore', link: f.link },
        label: `link ${f.link} latency ${latencyMs} ms for ${seconds(durationMs)}`,
      };
    }
    case 'sp-crash': {
      const sp = pick(random, f.sps);
      return {
        inject: { kind: 'sp-crash', array: f.array, sp },
        undo: { kind: 'sp-restart', array: f.array, sp },
        label: `SP ${f.array}:${sp} crashed for ${seconds(durationMs)}`,
      };
    }
    case 'power-fail':
      return {
        inject: { kind: 'power-fail', array: f.array },
        undo: { kind: 'power-restore', array: f.array },
        label: `power of ${f.array} off for ${seconds(durationMs)}`,
      };
    case 'disk-errors':
      return {
        inject: { kind: 'disk-fault', array: f.array, lun: f.lun, errors: f.errors, rate: f.rate, range: null, errno: f.errno, delayMs: 0, jitterMs: 0, loseUnflushed: false, seed: Math.floor(random() * 0xffffffff) },
        undo: { kind: 'disk-clear', array: f.array, lun: f.lun },
        label: `disk ${f.array}:${f.lun} ${f.errors.join('/')} errors (${f.errno}) for ${seconds(durationMs)}`,
      };
    case 'array-crash':
      return {
        inject: { kind: 'array-crash', array: f.array },
        undo: { kind: 'array-restart', array: f.array },
        label: `array ${f.array} crashed for ${seconds(durationMs)}`,
      };
    case 'site-fail':
      return {
        inject: { kind: 'site-fail', site: f.site },
        undo: { kind: 'site-restore', site: f.site },
        label: `site ${f.site} failed for ${seconds(durationMs)}`,
      };
  }
}
