// Seeded simulation of the heartbeat core (TigerBeetle style): thousands of simulated seconds of
// a production and a standby master under drawn faults, checking that no single-path fault ever
// causes a failover, that a site loss is detected within timeout + one interval, and what a full
// partition does with and without a witness. SANBOX_SEED reruns with another base seed.
import { describe, expect, it } from 'vitest';
import { mixSeed, mulberry32, type Random } from '../../src/random/index.js';
import { MAX_SERIAL } from '../../src/heartbeat/index.js';
import { reportSeedOnFailure, testSeed } from '../support/random.js';
import { CYCLES, INTERVAL, TIMEOUT, World, type Fault, type FaultKind, type Outcome, type Scenario } from './sim-model.js';

const BASE = testSeed(0x4eb7);
const SINGLE_RUNS = 240;
const SITE_LOSS_RUNS = 40;
const PARTITION_RUNS = 60;

const int = (rng: Random, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1)); // inclusive
const pick = <T>(rng: Random, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const KINDS: readonly FaultKind[] = ['network-cut', 'mirror-fracture', 'latency-spike', 'sp-takeover', 'standby-restart', 'production-takeover'];

function drawFault(rng: Random, kind: FaultKind, mirrors: number): Fault {
  const from = int(rng, 3, 40);
  switch (kind) {
    case 'network-cut':
      return { kind, from, to: rng() < 0.3 ? CYCLES : from + int(rng, 1, 30) };
    case 'mirror-fracture':
      return { kind, mirror: int(rng, 0, mirrors - 1), from };
    case 'latency-spike':
      return { kind, target: pick(rng, ['network', 'remote-link'] as const), from, to: from + int(rng, 1, 12), delayMs: int(rng, 1, TIMEOUT - 1) };
    case 'sp-takeover': {
      const all = Array.from({ length: mirrors }, (_, i) => i);
      const which = rng() < 0.5 ? all : [int(rng, 0, mirrors - 1)];
      return { kind, mirrors: which, side: pick(rng, ['production', 'standby'] as const), atMs: from * INTERVAL + int(rng, 0, INTERVAL - 1), stallMs: int(rng, 1, TIMEOUT - 1) };
    }
    case 'standby-restart':
      return { kind, at: from, down: int(rng, 1, 3) };
    case 'production-takeover':
      return { kind, at: from, detect: int(rng, 1, 2) };
  }
}

function baseScenario(rng: Random): Scenario {
  // a third of the runs start next to the serial wrap
  const firstSerial = rng() < 0.33 ? MAX_SERIAL - int(rng, 0, 40) : int(rng, 1, 1_000_000);
  return { mirrors: int(rng, 2, 3), witness: rng() < 0.5, faults: [], firstSerial, readPhase: int(rng, 1, INTERVAL - 1) };
}

function singleFault(seed: number): { sc: Scenario; kind: FaultKind } {
  const rng = mulberry32(seed);
  const sc = baseScenario(rng);
  const kind = pick(rng, KINDS);
  sc.faults.push(drawFault(rng, kind, sc.mirrors));
  return { sc, kind };
}

function siteLoss(seed: number): Scenario {
  const rng = mulberry32(seed);
  const sc = baseScenario(rng);
  sc.siteLossAt = int(rng, 10, 40);
  const before = rng();
  // sometimes a path was already down when the site went
  if (before < 0.25) sc.faults.push({ kind: 'network-cut', from: int(rng, 3, sc.siteLossAt), to: CYCLES });
  else if (before < 0.5) sc.faults.push({ kind: 'mirror-fracture', mirror: int(rng, 0, sc.mirrors - 1), from: int(rng, 3, sc.siteLossAt) });
  return sc;
}

function partition(seed: number, witness: boolean): Scenario {
  const rng = mulberry32(seed);
  const sc = baseScenario(rng);
  sc.witness = witness;
  const at = int(rng, 5, 30);
  const until = rng() < 0.5 ? CYCLES : at + int(rng, 1, 25);
  sc.partition = { at, until, witnessCut: witness ? pick(rng, ['production', 'standby', 'none'] as const) : 'none' };
  return sc;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor((s.length - 1) / 2)]!;
}

const describeRun = (seed: number, sc: Scenario, o: Outcome) => `seed ${seed}: ${JSON.stringify(sc)} -> ${JSON.stringify(o)}`;

describe('heartbeat simulation', () => {
  it('no false failover, bounded detection, no split brain with a witness, split brain without one', () => {
    reportSeedOnFailure(BASE);
    const t0 = performance.now();
    const falseFailovers: string[] = [];
    const falseFences: string[] = [];
    const kinds = new Map<FaultKind, number>();
    let pathFailures = 0;
    let pathRecoveries = 0;
    for (let i = 0; i < SINGLE_RUNS; i++) {
      const seed = mixSeed(BASE, 1, i);
      const { sc, kind } = singleFault(seed);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      const o = new World(sc).run();
      pathFailures += o.pathFailures;
      pathRecoveries += o.pathRecoveries;
      if (o.failoverAtMs !== null) falseFailovers.push(describeRun(seed, sc, o));
      if (o.fencedEver) falseFences.push(describeRun(seed, sc, o));
    }

    const detections: number[] = [];
    const missed: string[] = [];
    for (let i = 0; i < SITE_LOSS_RUNS; i++) {
      const seed = mixSeed(BASE, 2, i);
      const sc = siteLoss(seed);
      const o = new World(sc).run();
      const lossMs = sc.siteLossAt! * INTERVAL;
      if (o.failoverAtMs === null || o.failoverAtMs - lossMs > TIMEOUT + INTERVAL) missed.push(describeRun(seed, sc, o));
      else detections.push(o.failoverAtMs - lossMs);
    }

    const withWitnessSplit: string[] = [];
    let witnessFailovers = 0;
    let witnessFences = 0;
    for (let i = 0; i < PARTITION_RUNS; i++) {
      const seed = mixSeed(BASE, 3, i);
      const sc = partition(seed, true);
      const o = new World(sc).run();
      if (o.twoWritableCycles > 0) withWitnessSplit.push(describeRun(seed, sc, o));
      if (o.failoverAtMs !== null) witnessFailovers++;
      if (o.fencedEver) witnessFences++;
    }

    let noWitnessSplit = 0;
    const noWitnessMissing: string[] = [];
    const permanent = [];
    for (let i = 0; i < PARTITION_RUNS; i++) {
      const seed = mixSeed(BASE, 4, i);
      const sc = partition(seed, false);
      const o = new World(sc).run();
      const p = sc.partition!;
      // a partition that lasts past the timeout always ends in split brain without a witness
      const long = p.until - p.at > TIMEOUT / INTERVAL + 1;
      if (long) permanent.push(seed);
      if (o.twoWritableCycles > 0) noWitnessSplit++;
      else if (long) noWitnessMissing.push(describeRun(seed, sc, o));
    }

    const ms = Math.round(performance.now() - t0);
    const runs = SINGLE_RUNS + SITE_LOSS_RUNS + 2 * PARTITION_RUNS;
    console.log(
      `heartbeat simulation (base seed ${BASE}): ${runs} runs x ${CYCLES} cycles of ${INTERVAL} ms, timeout ${TIMEOUT} ms; ` +
        `single-path faults ${SINGLE_RUNS} (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}): paths failed ${pathFailures} times and recovered ${pathRecoveries}, false failovers ${falseFailovers.length}, false fences ${falseFences.length}; ` +
        `site loss ${SITE_LOSS_RUNS}: detected ${detections.length}, detection median ${median(detections)} ms, max ${Math.max(...detections)} ms (bound ${TIMEOUT + INTERVAL} ms); ` +
        `partition with witness ${PARTITION_RUNS}: two writable ${withWitnessSplit.length}, failovers ${witnessFailovers}, fences ${witnessFences}; ` +
        `partition without witness ${PARTITION_RUNS}: split brain ${noWitnessSplit} (${permanent.length} lasted past the timeout); ${ms} ms wall`,
    );

    expect(SINGLE_RUNS).toBeGreaterThanOrEqual(200);
    for (const k of KINDS) expect(kinds.get(k) ?? 0, k).toBeGreaterThanOrEqual(20);
    expect(pathFailures).toBeGreaterThan(50); // the faults do bite: single paths fail...
    expect(pathRecoveries).toBeGreaterThan(5); // ...and come back through the hysteresis
    expect(falseFailovers, falseFailovers.slice(0, 3).join('\n')).toEqual([]);
    expect(falseFences, falseFences.slice(0, 3).join('\n')).toEqual([]);
    expect(missed, missed.slice(0, 3).join('\n')).toEqual([]);
    expect(detections.length).toBeGreaterThanOrEqual(20);
    expect(withWitnessSplit, withWitnessSplit.slice(0, 3).join('\n')).toEqual([]);
    expect(witnessFailovers).toBeGreaterThan(0); // the witness lets a real isolation fail over
    expect(noWitnessMissing, noWitnessMissing.slice(0, 3).join('\n')).toEqual([]);
    expect(permanent.length).toBeGreaterThan(0);
    expect(noWitnessSplit).toBeGreaterThanOrEqual(permanent.length);
  });
});
