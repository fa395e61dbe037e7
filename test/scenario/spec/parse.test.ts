// Scenario files: a full file into its normalized spec, the defaults, every family of problems
// (each with its path in the document, all listed at once), and loading with the lab's names.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadLab } from '../../../src/cli/lab/index.js';
import { labNamesOf, loadScenario, parseScenario, ScenarioSpecError, type LabNames } from '../../../src/scenario/spec/parse.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const DEFAULT_LAB = join(REPO, 'lab/default.yaml');

/** Like lab/default.yaml, with sites east (alpha) and west (bravo). */
const LAB: LabNames = {
  arrays: new Map([
    ['alpha', { sps: ['A', 'B'], luns: ['disk0', 'disk1', 'disk2'] }],
    ['bravo', { sps: [], luns: ['disk0', 'disk1', 'disk2'] }],
  ]),
  links: ['alpha-bravo'],
  sites: ['east', 'west'],
  mirrors: ['m0', 'm1', 'm2'],
  groups: ['g0'],
  heartbeatHosts: ['alpha-1'],
  automationSites: ['east', 'west'],
};

const FILE = '/scenarios/flap.yaml';
/** The event sources of LAB, as a problem lists them. */
const SRC = '(arrays, links, hb:HOST, automation:SITE and lab: lab, alpha, bravo, alpha-bravo, hb:alpha-1, automation:east, automation:west)';

/** The problems of a rejected scenario (the error's message is exactly those, one per line). */
function problems(yaml: string, labNames: LabNames | undefined = LAB): string[] {
  try {
    parseScenario(yaml, FILE, { labNames });
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioSpecError);
    const err = e as ScenarioSpecError;
    expect(err.message).toBe(err.problems.join('\n'));
    return err.problems;
  }
  throw new Error('expected the scenario to be rejected');
}

/** A scenario with the lab line and these sections. */
const scenario = (body: string) => `lab: ../lab/default.yaml\n${body}`;

const FULL = `
scenario: full
description: everything at once
lab: ../lab/default.yaml
seed: 7
timeout: 2m
workloads:
  - { name: w1, kind: ledger, array: alpha, lun: disk0, sps: [A, B], blocks: 1024, connections: 2, depth: 8, blockSize: 512, fua: 0.5, start: 1s, duration: 10s }
  - { name: app, kind: prefix, array: alpha, luns: [disk1, disk2], depth: 4, blocks: 100 }
  - { name: f1, kind: fio, array: bravo, lun: disk0, args: [--rw=randwrite, --bs=4k] }
  - { name: sh, kind: command, run: "echo hi", duration: 500ms }
steps:
  - { name: cut, at: 2s, link-cut: { link: alpha-bravo, direction: b-to-a, reset: true } }
  - { link-set: { link: alpha-bravo, direction: a-to-b, latency: 20ms, bandwidth: 100M } }
  - { link-set: { link: alpha-bravo, bandwidth: unlimited } }
  - { link-restore: { link: alpha-bravo } }
  - { sp-crash: { array: alpha, sp: B } }
  - { power-fail: { array: alpha } }
  - { site-fail: { site: east } }
  - { disk-fault: { array: bravo, lun: disk1, errors: [read, write], rate: 0.5, range: { offset: 4K, length: 1M }, errno: ENOSPC, delay: 5ms, jitter: 2ms, loseUnflushed: true, seed: 3 } }
  - { disk-fault: { array: bravo, lun: disk2, delay: 10ms } }
  - { wait: { condition: { group-coherent: { group: g0 } } } }
  - { wait: { condition: { mirror-state: { mirror: m0, array: bravo, state: in-sync } }, timeout: 30s } }
  - { sleep: 1.5 }
  - { workload-stop: w1 }
  - { workload-wait: { workload: app, timeout: 1m } }
  - { expectError: split-brain, mirror-synchronize: { mirror: m0 } }
  - { name: up, group-promote: { group: g0, array: bravo, force: true } }
  - { mirror-resolve: { mirror: m0, survivor: alpha } }
  - { command: { run: "true", expectExit: 1 } }
nemesis:
  - from: 1s
    until: 8s
    every: [0.5s, 3s]
    faults:
      - { link-cut: { link: alpha-bravo, directions: [both, a-to-b] }, for: [0.2s, 2s], weight: 3 }
      - { link-latency: { link: alpha-bravo, latency: [0ms, 20ms] }, for: 1s }
      - { sp-crash: { array: alpha }, for: [1s, 2s] }
      - { power-fail: { array: alpha }, for: 500ms }
      - { disk-errors: { array: bravo, lun: disk0, errors: [write], rate: 0.25 }, for: 1s, weight: 0.5 }
      - { array-crash: { array: bravo }, for: 2s }
  - { name: second, until: 3s, every: 1s, faults: [{ array-crash: { array: alpha }, for: 1s }] }
checks:
  - { ledger: { workload: w1, sps: [A] } }
  - { ledger: { workload: w1, array: bravo, allowReadErrors: true } }
  - { prefix: { workload: app, array: bravo, maxLag: 5, maxMissingAcked: 10 } }
  - { mirror-verify: { mirror: m0 } }
  - { images-equal: { a: "alpha:disk0", b: "bravo:disk0" } }
  - { rto: { from: cut, to: up, max: 30 } }
  - { no-split-brain: {} }
  - { fs: { array: bravo, lun: disk0 } }
  - { host-errors: { workload: f1, max: 5 } }
  - { event: { type: array.crashed, source: lab, max: 0 } }
  - { event: { type: mirror.split-brain } }
  - { condition: { array-state: { array: bravo, state: running } } }
  - { workload-exit: { workload: sh, exitCode: 3 } }
`;

describe('scenario files: parsing', () => {
  it('parses a full scenario into exactly its normalized spec', () => {
    const spec = parseScenario(FULL, FILE, { labNames: LAB });
    const one = { min: 1000, max: 1000 };
    expect(spec).toEqual({
      name: 'full',
      description: 'everything at once',
      file: FILE,
      labFile: '/lab/default.yaml',
      seed: 7,
      timeoutMs: 120_000,
      workloads: [
        { name: 'w1', kind: 'ledger', array: 'alpha', lun: 'disk0', sps: ['A', 'B'], blocks: 1024, connections: 2, depth: 8, blockSize: 512, fua: 0.5, startMs: 1000, durationMs: 10_000 },
        { name: 'app', kind: 'prefix', array: 'alpha', luns: ['disk1', 'disk2'], depth: 4, blocks: 100, startMs: 0, durationMs: null },
        { name: 'f1', kind: 'fio', array: 'bravo', lun: 'disk0', sp: null, args: ['--rw=randwrite', '--bs=4k'], startMs: 0, durationMs: null },
        { name: 'sh', kind: 'command', run: 'echo hi', startMs: 0, durationMs: 500 },
      ],
      steps: [
        { name: 'cut', atMs: 2000, expectError: null, action: { kind: 'link-cut', link: 'alpha-bravo', direction: 'b-to-a', reset: true } },
        { name: null, atMs: null, expectError: null, action: { kind: 'link-set', link: 'alpha-bravo', direction: 'a-to-b', latencyMs: 20, jitterMs: null, bandwidth: 100 * 2 ** 20 } },
        { name: null, atMs: null, expectError: null, action: { kind: 'link-set', link: 'alpha-bravo', direction: 'both', latencyMs: null, jitterMs: null, bandwidth: 0 } },
        { name: null, atMs: null, expectError: null, action: { kind: 'link-restore', link: 'alpha-bravo' } },
        { name: null, atMs: null, expectError: null, action: { kind: 'sp-crash', array: 'alpha', sp: 'B' } },
        { name: null, atMs: null, expectError: null, action: { kind: 'power-fail', array: 'alpha' } },
        { name: null, atMs: null, expectError: null, action: { kind: 'site-fail', site: 'east' } },
        {
          name: null,
          atMs: null,
          expectError: null,
          action: {
            kind: 'disk-fault',
            array: 'bravo',
            lun: 'disk1',
            errors: ['read', 'write'],
            rate: 0.5,
            range: { offset: 4096, length: 2 ** 20 },
            errno: 'ENOSPC',
            delayMs: 5,
            jitterMs: 2,
            loseUnflushed: true,
            seed: 3,
          },
        },
        {
          name: null,
          atMs: null,
          expectError: null,
          action: { kind: 'disk-fault', array: 'bravo', lun: 'disk2', errors: [], rate: 1, range: null, errno: 'EIO', delayMs: 10, jitterMs: 0, loseUnflushed: false, seed: null },
        },
        { name: null, atMs: null, expectError: null, action: { kind: 'wait', condition: { kind: 'group-coherent', group: 'g0', array: null }, timeoutMs: 60_000 } },
        {
          name: null,
          atMs: null,
          expectError: null,
          action: { kind: 'wait', condition: { kind: 'mirror-state', mirror: 'm0', array: 'bravo', state: 'in-sync' }, timeoutMs: 30_000 },
        },
        { name: null, atMs: null, expectError: null, action: { kind: 'sleep', ms: 1500 } },
        { name: null, atMs: null, expectError: null, action: { kind: 'workload-stop', workload: 'w1' } },
        { name: null, atMs: null, expectError: null, action: { kind: 'workload-wait', workload: 'app', timeoutMs: 60_000 } },
        { name: null, atMs: null, expectError: 'split-brain', action: { kind: 'mirror-synchronize', mirror: 'm0', array: null } },
        { name: 'up', atMs: null, expectError: null, action: { kind: 'group-promote', group: 'g0', array: 'bravo', force: true, fromSnapshot: false } },
        { name: null, atMs: null, expectError: null, action: { kind: 'mirror-resolve', mirror: 'm0', survivor: 'alpha', array: 'alpha' } },
        { name: null, atMs: null, expectError: null, action: { kind: 'command', run: 'true', expectExit: 1 } },
      ],
      nemesis: [
        {
          name: 'nemesis0',
          fromMs: 1000,
          untilMs: 8000,
          everyMs: { min: 500, max: 3000 },
          faults: [
            { kind: 'link-cut', link: 'alpha-bravo', directions: ['both', 'a-to-b'], forMs: { min: 200, max: 2000 }, weight: 3 },
            { kind: 'link-latency', link: 'alpha-bravo', latencyMs: { min: 0, max: 20 }, forMs: one, weight: 1 },
            { kind: 'sp-crash', array: 'alpha', sps: ['A', 'B'], forMs: { min: 1000, max: 2000 }, weight: 1 },
            { kind: 'power-fail', array: 'alpha', forMs: { min: 500, max: 500 }, weight: 1 },
            { kind: 'disk-errors', array: 'bravo', lun: 'disk0', errors: ['write'], errno: 'EIO', rate: 0.25, forMs: one, weight: 0.5 },
            { kind: 'array-crash', array: 'bravo', forMs: { min: 2000, max: 2000 }, weight: 1 },
          ],
        },
        { name: 'second', fromMs: 0, untilMs: 3000, everyMs: one, faults: [{ kind: 'array-crash', array: 'alpha', forMs: one, weight: 1 }] },
      ],
      checks: [
        { kind: 'ledger', workload: 'w1', array: null, sps: ['A'], allowReadErrors: false },
        { kind: 'ledger', workload: 'w1', array: 'bravo', sps: null, allowReadErrors: true },
        { kind: 'prefix', workload: 'app', array: 'bravo', maxLagSeconds: 5, maxMissingAcked: 10 },
        { kind: 'mirror-verify', mirror: 'm0', array: null },
        { kind: 'images-equal', a: 'alpha:disk0', b: 'bravo:disk0' },
        { kind: 'rto', from: 'cut', to: 'up', maxSeconds: 30 },
        { kind: 'no-split-brain' },
        { kind: 'fs', array: 'bravo', lun: 'disk0' },
        { kind: 'host-errors', workload: 'f1', errno: 'EIO', min: 1, max: 5 },
        { kind: 'event', type: 'array.crashed', source: 'lab', min: 0, max: 0 },
        { kind: 'event', type: 'mirror.split-brain', source: null, min: 1, max: null },
        { kind: 'condition', condition: { kind: 'array-state', array: 'bravo', state: 'running' } },
        { kind: 'workload-exit', workload: 'sh', exitCode: 3 },
      ],
    });
  });

  it('fills in the defaults', () => {
    const spec = parseScenario(
      scenario(`
workloads:
  - { name: w, kind: ledger, array: alpha, lun: disk0 }
  - { name: p, kind: prefix, array: alpha, luns: [disk1] }
  - { name: f, kind: fio, array: alpha, lun: disk0 }
steps:
  - link-cut: { link: alpha-bravo }
  - workload-wait: w
  - disk-fault: { array: alpha, lun: disk0 }
nemesis:
  - until: 5s
    every: 1s
    faults:
      - { link-cut: { link: alpha-bravo }, for: 1s }
      - { disk-errors: { array: alpha, lun: disk1 }, for: 1s }
checks:
  - host-errors: { workload: w }
  - workload-exit: { workload: f }
`),
      FILE,
      { labNames: LAB },
    );
    expect(spec).toMatchObject({ name: 'flap', description: '', labFile: '/lab/default.yaml', seed: 1, timeoutMs: 300_000 });
    expect(spec.workloads).toEqual([
      { name: 'w', kind: 'ledger', array: 'alpha', lun: 'disk0', sps: null, blocks: 256, connections: 4, depth: 4, blockSize: 4096, fua: 0, startMs: 0, durationMs: null },
      { name: 'p', kind: 'prefix', array: 'alpha', luns: ['disk1'], depth: 4, blocks: null, startMs: 0, durationMs: null },
      { name: 'f', kind: 'fio', array: 'alpha', lun: 'disk0', sp: null, args: [], startMs: 0, durationMs: null },
    ]);
    expect(spec.steps.map((s) => s.action)).toEqual([
      { kind: 'link-cut', link: 'alpha-bravo', direction: 'both', reset: false },
      // a workload-wait is bounded by the run's timeout unless told otherwise
      { kind: 'workload-wait', workload: 'w', timeoutMs: 300_000 },
      // as `sanbox fault disk`: no errors listed and no delay: every op fails
      { kind: 'disk-fault', array: 'alpha', lun: 'disk0', errors: ['read', 'write', 'flush', 'trim', 'zero'], rate: 1, range: null, errno: 'EIO', delayMs: 0, jitterMs: 0, loseUnflushed: false, seed: null },
    ]);
    expect(spec.steps[0]).toMatchObject({ name: null, atMs: null, expectError: null });
    // a lose-unflushed fault alone fails nothing
    const lose = parseScenario(scenario('steps: [{ disk-fault: { array: alpha, lun: disk0, loseUnflushed: true } }]'), FILE, { labNames: LAB });
    expect(lose.steps[0]!.action).toMatchObject({ kind: 'disk-fault', errors: [], loseUnflushed: true, delayMs: 0 });
    expect(spec.nemesis).toEqual([
      {
        name: 'nemesis0',
        fromMs: 0,
        untilMs: 5000,
        everyMs: { min: 1000, max: 1000 },
        faults: [
          { kind: 'link-cut', link: 'alpha-bravo', directions: ['both'], forMs: { min: 1000, max: 1000 }, weight: 1 },
          { kind: 'disk-errors', array: 'alpha', lun: 'disk1', errors: ['read', 'write', 'flush', 'trim', 'zero'], errno: 'EIO', rate: 1, forMs: { min: 1000, max: 1000 }, weight: 1 },
        ],
      },
    ]);
    expect(spec.checks).toEqual([
      { kind: 'host-errors', workload: 'w', errno: 'EIO', min: 1, max: null },
      { kind: 'workload-exit', workload: 'f', exitCode: 0 },
    ]);
  });

  it('takes the name from the file, resolves the lab against its directory, and accepts empty lists', () => {
    const spec = parseScenario('lab: labs/two.yaml\nworkloads: []\nsteps:\n', '/x/y/my-test.v2.yml');
    expect(spec).toEqual({
      name: 'my-test.v2',
      description: '',
      file: '/x/y/my-test.v2.yml',
      labFile: '/x/y/labs/two.yaml',
      seed: 1,
      timeoutMs: 300_000,
      workloads: [],
      steps: [],
      nemesis: [],
      checks: [],
    });
  });

  it('without the lab, checks its own names but not the lab\'s; sp-crash sps default to A and B', () => {
    const spec = parseScenario(
      scenario(`
workloads: [{ name: w, kind: ledger, array: zulu, lun: lun9 }]
nemesis: [{ until: 2s, every: 1s, faults: [{ sp-crash: { array: zulu }, for: 1s }] }]
`),
      FILE,
    );
    expect(spec.nemesis[0]!.faults[0]).toMatchObject({ kind: 'sp-crash', array: 'zulu', sps: ['A', 'B'] });
    expect(problems(scenario('steps: [{ workload-stop: nope }]'), undefined)).toEqual(['steps[0].workload-stop.workload: unknown workload "nope" (workloads: none)']);
  });
});

describe('scenario files: problems', () => {
  it('unknown keys, at every level', () => {
    expect(problems('lab: l.yaml\nsedd: 2\n')).toEqual(['sedd: unknown key (known: scenario, description, lab, seed, timeout, workloads, steps, nemesis, checks)']);
    const [atx] = problems(scenario('steps: [{ atx: 2s, sleep: 1s }]'));
    expect(atx).toMatch(/^steps\[0\]\.atx: unknown key \(known: name, at, expectError, and one action: link-cut, link-restore, .*, command\)$/);
    expect(problems(scenario('steps: [{ link-cut: { linq: alpha-bravo, link: alpha-bravo } }]'))).toEqual(['steps[0].link-cut.linq: unknown key (known: link, direction, reset)']);
    expect(problems(scenario('workloads: [{ name: w, kind: command, run: x, depth: 4 }]'))).toEqual(['workloads[0].depth: unknown key (known: name, kind, start, duration, run)']);
    expect(problems(scenario('checks: [{ rto: { from: a, to: b, max: 1, min: 0 } }]'))).toContain('checks[0].rto.min: unknown key (known: from, to, max)');
    // a misspelt action is one problem (the unknown key), not two
    expect(problems(scenario('steps: [{ link-cutt: { link: alpha-bravo } }]'))).toHaveLength(1);
  });

  it('bad scalars: durations, integers, choices, names', () => {
    expect(
      problems(
        scenario(`
timeout: 5 parsecs
seed: -1
workloads: [{ name: "w 1", kind: ledger, array: alpha, lun: disk0, depth: 0, blockSize: 1000, fua: 2, start: soon }]
steps: [{ link-cut: { link: alpha-bravo, direction: sideways } }]
`),
      ),
    ).toEqual([
      'seed: must be an integer from 0 to 4294967295, not -1',
      'timeout: must be a duration (2s, 500ms, 1m, or a number of seconds), not "5 parsecs"',
      'workloads[0].name: must be a name of 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..), not "w 1"',
      'workloads[0].start: must be a duration (2s, 500ms, 1m, or a number of seconds), not "soon"',
      'workloads[0].depth: must be an integer from 1 to 256, not 0',
      'workloads[0].blockSize: must be a multiple of 512, not 1000',
      'workloads[0].fua: must be a number from 0 to 1, not 2',
      'steps[0].link-cut.direction: must be one of both, a-to-b, b-to-a, not "sideways"',
    ]);
  });

  it('names . and .. are refused (scenario, workload, step, nemesis, and a file named ...yaml); .hidden is a name', () => {
    const rule = 'must be a name of 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)';
    expect(
      problems(
        scenario(`scenario: ".."
workloads: [{ name: ".", kind: command, run: "true" }]
steps: [{ name: "..", sleep: 1s }]
nemesis: [{ name: ".", until: 2s, every: 1s, faults: [{ link-cut: { link: alpha-bravo }, for: 1s }] }]
`),
      ),
    ).toEqual([`scenario: ${rule}, not ".."`, `workloads[0].name: ${rule}, not "."`, `steps[0].name: ${rule}, not ".."`, `nemesis[0].name: ${rule}, not "."`]);
    expect(() => parseScenario(scenario(''), '/scenarios/...yaml', { labNames: LAB })).toThrow('scenario: missing, and the file name ".." is no valid name');
    expect(parseScenario(scenario('scenario: .hidden\n'), FILE, { labNames: LAB }).name).toBe('.hidden');
  });

  it('missing required keys and kinds', () => {
    expect(problems('seed: 1\n')).toEqual(['lab: missing (required)']);
    expect(problems(scenario('workloads: [{ name: w, array: alpha }]'))).toEqual(['workloads[0].kind: missing (required: ledger, prefix, fio, command)']);
    expect(problems(scenario('steps: [{ sp-crash: { array: alpha } }]'))).toEqual(['steps[0].sp-crash.sp: missing (required)']);
    expect(problems(scenario('steps: [{ power-fail: }]'))).toEqual(['steps[0].power-fail.array: missing (required)']);
    expect(problems(scenario('steps: [{ link-set: { link: alpha-bravo } }]'))).toEqual(['steps[0].link-set: give at least one of latency, jitter, bandwidth']);
    expect(problems(scenario('steps: [{ disk-fault: { array: alpha, lun: disk0, errors: [] } }]'))).toEqual([
      'steps[0].disk-fault: no errors, no delay and no loseUnflushed: this fault does nothing',
    ]);
    expect(problems(scenario('steps: [{ disk-fault: { array: alpha, lun: disk0, loseUnflushed: true, range: { length: 1M } } }]'))).toEqual([
      'steps[0].disk-fault.range: limits errors and delays only (loseUnflushed holds writes of the whole LUN): give errors or a delay with it, or leave it out',
    ]);
    expect(problems(scenario('steps: [{ disk-fault: { array: alpha, lun: disk0, delay: 50s, jitter: 20s } }]'))).toEqual(['steps[0].disk-fault.delay: delay 50000 ms + jitter 20000 ms is over 60000 ms']);
    expect(problems(scenario('steps: [{ disk-fault: { array: alpha, lun: disk0, errors: [read, bend] } }]'))).toEqual([
      'steps[0].disk-fault.errors[1]: must be one of read, write, flush, trim, zero, not "bend"',
    ]);
  });

  it('ranges: two durations with min <= max', () => {
    expect(
      problems(
        scenario(`
nemesis:
  - until: 1s
    from: 2s
    every: [3s, 0.5s]
    faults: [{ link-cut: { link: alpha-bravo }, for: [1s, 2s, 3s] }, { array-crash: { array: alpha }, for: [1s, never] }]
`),
      ),
    ).toEqual([
      'nemesis[0].until: must be after from ("2s"), not "1s"',
      'nemesis[0].every: the minimum "3s" is above the maximum "0.5s"',
      'nemesis[0].faults[0].for: a range must be [MIN, MAX], two durations, not ["1s","2s","3s"]',
      'nemesis[0].faults[1].for[1]: must be a duration (2s, 500ms, 1m, or a number of seconds), not "never"',
    ]);
    expect(problems(scenario('nemesis: [{ until: 2s, every: 1s, faults: [] }]'))).toEqual(['nemesis[0].faults: must not be empty']);
    expect(problems(scenario('nemesis: [{ until: 2s, every: 1s, faults: [{ array-crash: { array: alpha }, weight: 0 }] }]'))).toEqual([
      'nemesis[0].faults[0].for: missing (required)',
      'nemesis[0].faults[0].weight: must be a number above 0, not 0',
    ]);
  });

  it('unknown names of the lab: link, array, LUN, SP, site, mirror, group, event source', () => {
    expect(
      problems(
        scenario(`
workloads: [{ name: w, kind: ledger, array: alpha, lun: disk7, sps: [C] }]
steps:
  - { link-cut: { link: alpha-charlie } }
  - { array-crash: { array: charlie } }
  - { site-fail: { site: north } }
  - { sp-crash: { array: bravo, sp: A } }
  - { power-fail: { array: bravo } }
  - { mirror-promote: { mirror: m9, array: bravo } }
  - { wait: { condition: { group-drained: { group: g1 } } } }
  - { wait: { condition: { event: { type: mirror.split-brain, source: nowhere } } } }
checks:
  - { images-equal: { a: "alpha:disk0", b: "bravo-disk0" } }
  - { fs: { array: bravo, lun: disk5 } }
`),
      ),
    ).toEqual([
      'workloads[0].lun: unknown LUN "disk7" (LUNs of alpha: disk0, disk1, disk2)',
      'workloads[0].sps[0]: unknown SP "C" (SPs of alpha: A, B)',
      'steps[0].link-cut.link: unknown link "alpha-charlie" (links of the lab: alpha-bravo)',
      'steps[1].array-crash.array: unknown array "charlie" (arrays of the lab: alpha, bravo)',
      'steps[2].site-fail.site: unknown site "north" (sites of the lab: east, west)',
      'steps[3].sp-crash.array: array bravo has no SPs (no sps: in the lab file): this needs a two-SP array',
      'steps[4].power-fail.array: array bravo has no SPs (no sps: in the lab file): this needs a two-SP array',
      'steps[5].mirror-promote.mirror: unknown mirror "m9" (mirrors of the lab: m0, m1, m2)',
      'steps[6].wait.condition.group-drained.group: unknown group "g1" (groups of the lab: g0)',
      'steps[7].wait.condition.event.source: unknown event source "nowhere" (arrays, links, hb:HOST, automation:SITE and lab: lab, alpha, bravo, alpha-bravo, hb:alpha-1, automation:east, automation:west)',
      'checks[0].images-equal.b: must be ARRAY:LUN (e.g. alpha:disk0), not "bravo-disk0"',
      'checks[1].fs.lun: unknown LUN "disk5" (LUNs of bravo: disk0, disk1, disk2)',
    ]);
  });

  it('unknown workloads and steps, and workloads of the wrong kind for a check', () => {
    expect(
      problems(
        scenario(`
workloads:
  - { name: w1, kind: ledger, array: alpha, lun: disk0 }
  - { name: app, kind: prefix, array: alpha, luns: [disk1, disk2] }
  - { name: sh, kind: command, run: "true" }
steps:
  - { name: a, sleep: 1s }
  - { name: b, workload-wait: { workload: w2 } }
  - { wait: { condition: { workload-done: { workload: w3 } } } }
checks:
  - { ledger: { workload: app } }
  - { prefix: { workload: w1, array: bravo } }
  - { host-errors: { workload: sh } }
  - { rto: { from: a, to: c, max: 10 } }
  - { rto: { from: b, to: a, max: 10 } }
  - { event: { type: mirror.fractur } }
`),
      ),
    ).toEqual([
      'steps[1].workload-wait.workload: unknown workload "w2" (workloads: w1, app, sh)',
      'steps[2].wait.condition.workload-done.workload: unknown workload "w3" (workloads: w1, app, sh)',
      'checks[0].ledger.workload: workload app is a prefix workload; a ledger check needs a ledger workload',
      'checks[1].prefix.workload: workload w1 is a ledger workload; a prefix check needs a prefix workload',
      'checks[2].host-errors.workload: workload sh is a command workload; a host-errors check needs a ledger, prefix or fio workload',
      'checks[3].rto.to: unknown step "c" (named steps: a, b)',
      'checks[4].rto.to: step "a" (steps[0]) comes before step "b" (steps[1])',
      'checks[5].event.type: unknown event type "mirror.fractur" (did you mean mirror.image-fractured, mirror.image-unfractured?)',
    ]);
  });

  it('duplicate names of workloads, steps and nemeses', () => {
    expect(
      problems(
        scenario(`
workloads:
  - { name: w1, kind: command, run: a }
  - { name: w1, kind: command, run: b }
steps:
  - { name: s, sleep: 1s }
  - { name: s, sleep: 1s }
nemesis:
  - { name: n, until: 2s, every: 1s, faults: [{ array-crash: { array: alpha }, for: 1s }] }
  - { name: n, until: 2s, every: 1s, faults: [{ array-crash: { array: alpha }, for: 1s }] }
`),
      ),
    ).toEqual([
      'workloads[1].name: "w1" is already the name of workloads[0]',
      'steps[1].name: "s" is already the name of steps[0]',
      'nemesis[1].name: "n" is already the name of nemesis[0]',
    ]);
  });

  it('exactly one action per step (and one kind per condition, check, fault)', () => {
    expect(problems(scenario('steps: [{ name: x, sleep: 1s, link-restore: { link: alpha-bravo } }]'))).toEqual(['steps[0]: 2 actions (sleep, link-restore): give exactly one']);
    expect(problems(scenario('steps: [{ name: x }]'))).toEqual([expect.stringMatching(/^steps\[0\]: no action \(one of: link-cut, .*\)$/)]);
    expect(problems(scenario('checks: [{ no-split-brain: {}, fs: { array: alpha, lun: disk0 } }]'))).toEqual(['checks[0]: 2 checks (no-split-brain, fs): give exactly one']);
    expect(problems(scenario('steps: [{ wait: { condition: { } } }]'))).toEqual([expect.stringMatching(/^steps\[0\]\.wait\.condition: no condition \(one of: mirror-state, /)]);
    expect(problems(scenario('steps: [sleep]'))).toEqual([expect.stringMatching(/^steps\[0\]: must be a mapping \(name, at, expectError, and one action: .*\), not "sleep"$/)]);
    expect(problems(scenario('workloads: { w: 1 }'))).toEqual(['workloads: must be a list, not {"w":1}']);
  });

  it('malformed YAML, with its line', () => {
    expect(problems('lab: x.yaml\nsteps: [{ sleep: 1s }\nchecks: []\n')).toEqual([expect.stringMatching(/^line \d+, column \d+: malformed YAML: /)]);
    expect(problems('lab: x.yaml\nseed: 1\nseed: 2\n')).toEqual(['line 3, column 1: malformed YAML: Map keys must be unique']);
    expect(problems('- just\n- a list\n')).toEqual(['a scenario file must be a mapping (keys: scenario, description, lab, seed, timeout, workloads, steps, nemesis, checks), not ["just","a list"]']);
  });

  it('lists every problem at once, across sections', () => {
    const found = problems(`
scenario: bad name!
seed: 1.5
workloads: [{ name: w, kind: ledger, array: alpha, lun: disk0, connections: 0 }]
steps: [{ link-cut: { link: x }, at: -1 }]
nemesis: [{ until: 1s, every: 1s, faults: [{ sp-crash: { array: alpha, sps: [A, A] }, for: 1s }] }]
checks: [{ ledger: { workload: nope } }]
`);
    expect(found).toEqual([
      'scenario: must be a name of 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..), not "bad name!"',
      'lab: missing (required)',
      'seed: must be an integer from 0 to 4294967295, not 1.5',
      'workloads[0].connections: must be an integer from 1 to 64, not 0',
      'steps[0].at: must be a duration (2s, 500ms, 1m, or a number of seconds), not -1',
      'steps[0].link-cut.link: unknown link "x" (links of the lab: alpha-bravo)',
      'nemesis[0].faults[0].sp-crash.sps: lists "A" twice',
      'checks[0].ledger.workload: unknown workload "nope" (workloads: w)',
    ]);
  });
});

describe('scenario files: loading with the lab', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sanbox-scenario-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('labNamesOf: arrays with their SPs and LUNs, links, sites (implicit ones too), mirrors, groups', () => {
    const names = labNamesOf(loadLab(DEFAULT_LAB));
    expect(names).toEqual({
      arrays: new Map([
        ['alpha', { sps: ['A', 'B'], luns: ['disk0', 'disk1', 'disk2'] }],
        ['bravo', { sps: [], luns: ['disk0', 'disk1', 'disk2'] }],
      ]),
      links: ['alpha-bravo'],
      sites: ['alpha', 'bravo'],
      mirrors: ['m0', 'm1', 'm2'],
      groups: ['g0'],
      heartbeatHosts: [],
      automationSites: [],
    });
    // a heartbeat lab adds its links and its hosts (event sources hb:HOST)
    const hb = labNamesOf(loadLab(join(REPO, 'scenarios', 'labs', 'heartbeat.yaml')));
    expect([hb.links, hb.heartbeatHosts]).toEqual([['alpha-bravo', 'hb-net', 'hb-witness-east', 'hb-witness-west'], ['east-1', 'east-2', 'west-1']]);
    // a lab with site automation adds its controllers' sites (event sources automation:SITE)
    expect(labNamesOf(loadLab(join(REPO, 'lab', 'two-sites.yaml'))).automationSites).toEqual(['east', 'west']);
  });

  it('takes hb:HOST as an event source of a heartbeat lab, and refuses an unknown host', () => {
    const ok = parseScenario(`scenario: s\nlab: x.yaml\nsteps:\n  - { wait: { condition: { event: { type: hb.failover, source: hb:alpha-1 } }, timeout: 1s } }\n`, FILE, { labNames: LAB });
    expect(ok.steps[0]).toMatchObject({ action: { kind: 'wait', condition: { kind: 'event', type: 'hb.failover', source: 'hb:alpha-1' } } });
    const bad = problems(`scenario: s\nlab: x.yaml\nsteps:\n  - { wait: { condition: { event: { type: hb.failover, source: hb:nobody } }, timeout: 1s } }\n`);
    expect(bad).toEqual(['steps[0].wait.condition.event.source: unknown event source "hb:nobody" (arrays, links, hb:HOST, automation:SITE and lab: lab, alpha, bravo, alpha-bravo, hb:alpha-1, automation:east, automation:west)']);
  });

  it('takes automation:SITE as an event source of a lab with site automation, and refuses an unknown site', () => {
    const wait = (source: string) => `scenario: s\nlab: x.yaml\nsteps:\n  - { wait: { condition: { event: { type: automation.operation-succeeded, source: "${source}" } }, timeout: 1s } }\n`;
    const ok = parseScenario(wait('automation:west'), FILE, { labNames: LAB });
    expect(ok.steps[0]).toMatchObject({ action: { kind: 'wait', condition: { kind: 'event', source: 'automation:west' } } });
    expect(problems(wait('automation:north'))).toEqual([`steps[0].wait.condition.event.source: unknown event source "automation:north" ${SRC}`]);
    // the site alone is no source, nor a prefix without a name; without automation, no controller is a source
    expect(problems(wait('west'))).toEqual([`steps[0].wait.condition.event.source: unknown event source "west" ${SRC}`]);
    expect(problems(wait('automation:'))[0]).toMatch(/^steps\[0\]\.wait\.condition\.event\.source: must be a name/);
    expect(problems(wait('automation:east'), { ...LAB, automationSites: [] })).toEqual([
      'steps[0].wait.condition.event.source: unknown event source "automation:east" (arrays, links, hb:HOST, automation:SITE and lab: lab, alpha, bravo, alpha-bravo, hb:alpha-1)',
    ]);
  });

  it('loads a file whose lab is relative to it, and checks the names against that lab', () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, `lab: ${relative(dir, DEFAULT_LAB)}\nsteps: [{ site-fail: { site: alpha } }]\n`);
    const spec = loadScenario(file);
    expect(spec).toMatchObject({ name: 'ok', file, labFile: DEFAULT_LAB });
    expect(spec.steps[0]!.action).toEqual({ kind: 'site-fail', site: 'alpha' });

    writeFileSync(file, `lab: ${relative(dir, DEFAULT_LAB)}\nsteps: [{ sp-crash: { array: charlie, sp: A } }]\n`);
    expect(() => loadScenario(file)).toThrow('steps[0].sp-crash.array: unknown array "charlie" (arrays of the lab: alpha, bravo)');
  });

  it('reports a lab file it cannot read, and a scenario file it cannot read', () => {
    const file = join(dir, 'nolab.yaml');
    writeFileSync(file, 'lab: missing.yaml\nseed: x\n');
    try {
      loadScenario(file);
      throw new Error('expected a failure');
    } catch (e) {
      expect(e).toBeInstanceOf(ScenarioSpecError);
      const [lab, seed] = (e as ScenarioSpecError).problems;
      expect(lab).toMatch(/^lab: cannot read lab file .*missing\.yaml/);
      expect(seed).toBe('seed: must be an integer from 0 to 4294967295, not "x"');
    }
    expect(() => loadScenario(join(dir, 'absent.yaml'))).toThrow(ScenarioSpecError);
  });

  it('every scenario of scenarios/ loads', () => {
    const files = readdirSync(join(REPO, 'scenarios')).filter((f) => f.endsWith('.yaml'));
    for (const f of files) expect(() => loadScenario(join(REPO, 'scenarios', f)), f).not.toThrow();
  });
});

describe('nemesis site-fail', () => {
  const yaml = (site: string) => `lab: x.yaml\nnemesis:\n  - { from: 1s, until: 5s, every: [1s, 2s], faults: [{ site-fail: { site: ${site} }, for: [1s, 3s] }] }\n`;
  it('takes a site of the lab and its downtime', () => {
    const spec = parseScenario(yaml('east'), FILE, { labNames: LAB });
    expect(spec.nemesis[0].faults).toEqual([{ kind: 'site-fail', site: 'east', forMs: { min: 1000, max: 3000 }, weight: 1 }]);
  });
  it('refuses a site the lab does not have', () => {
    expect(problems(yaml('north'))).toEqual([expect.stringMatching(/^nemesis\[0\]\.faults\[0\]\.site-fail\.site: unknown site "north"/)]);
  });
});

describe('check event-sum', () => {
  const withSteps = (check: string) => scenario(`steps:\n  - { name: cut, link-cut: { link: alpha-bravo } }\n  - { name: failback, link-restore: { link: alpha-bravo } }\nchecks:\n  - ${check}\n`);

  it('takes a type, a field, a source, a step, and sizes as bounds', () => {
    const spec = parseScenario(withSteps('{ event-sum: { type: mirror.resync-done, field: bytesSent, source: alpha, after: failback, min: 4K, max: 16M } }'), FILE, { labNames: LAB });
    expect(spec.checks).toEqual([{ kind: 'event-sum', type: 'mirror.resync-done', field: 'bytesSent', source: 'alpha', after: 'failback', min: 4096, max: 16 << 20 }]);
    // the defaults: any source, the whole run, min 0, no max; a source may be a controller
    const d = parseScenario(withSteps('{ event-sum: { type: mirror.resync-done, field: bytesSent } }'), FILE, { labNames: LAB });
    expect(d.checks).toEqual([{ kind: 'event-sum', type: 'mirror.resync-done', field: 'bytesSent', source: null, after: null, min: 0, max: null }]);
    const c = parseScenario(withSteps('{ event-sum: { type: mirror.resync-done, field: bytesSent, source: "automation:east", max: 1048576 } }'), FILE, { labNames: LAB });
    expect(c.checks[0]).toMatchObject({ source: 'automation:east', max: 1048576 });
  });

  it('refuses an unknown step in after', () => {
    expect(problems(withSteps('{ event-sum: { type: mirror.resync-done, field: bytesSent, after: failover } }'))).toEqual([
      'checks[0].event-sum.after: unknown step "failover" (named steps: cut, failback)',
    ]);
  });

  it('refuses a bad field name, and a field that is the journal\'s own', () => {
    expect(problems(withSteps('{ event-sum: { type: mirror.resync-done, field: "bytes sent" } }'))).toEqual([
      'checks[0].event-sum.field: must be the name of a field of the event (letters, digits and _, e.g. bytesSent), not "bytes sent"',
    ]);
    expect(problems(withSteps('{ event-sum: { type: mirror.resync-done, field: seq } }'))).toEqual(['checks[0].event-sum.field: seq is the event journal\'s own field, not a detail to sum']);
    expect(problems(withSteps('{ event-sum: { type: mirror.resync-done } }'))).toEqual(['checks[0].event-sum.field: missing (required)']);
  });

  it('refuses max below min, bad sizes, an unknown type and unknown keys', () => {
    expect(problems(withSteps('{ event-sum: { type: mirror.resync-done, field: bytesSent, min: 2M, max: 1M } }'))).toEqual(['checks[0].event-sum.max: must be at least min (2097152), not 1048576']);
    expect(problems(withSteps('{ event-sum: { type: mirror.resync-done, field: bytesSent, min: -1, max: lots } }'))).toEqual([
      'checks[0].event-sum.max: must be a size in bytes (4096, 64K, 1M), not "lots"',
      'checks[0].event-sum.min: must be a size in bytes (4096, 64K, 1M), not -1',
    ]);
    expect(problems(withSteps('{ event-sum: { type: mirror.resync-finished, field: bytesSent, step: cut } }'))).toEqual([
      expect.stringMatching(/^checks\[0\]\.event-sum\.step: unknown key \(known: type, field, source, after, min, max\)/),
      expect.stringMatching(/^checks\[0\]\.event-sum\.type: unknown event type "mirror\.resync-finished"/),
    ]);
  });
});
