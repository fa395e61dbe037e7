// `sanbox scenario run` as a user runs it (a child process running dist/): a tiny scenario against
// a real lab (two arrays, a link emulator, an asynchronous group), its report, a replay of a
// hand-made trace, a failing step, and an invalid file that starts nothing.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { drawSchedule, loadScenario, type ScenarioReport, type TraceFault } from '../../../src/scenario/index.js';
import { BIN, REPO } from '../../support/paths.js';

const FIXTURES = join(REPO, 'test/scenario/runner/fixtures');
const work = mkdtempSync(join(tmpdir(), 'sanbox-scenario-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function sanbox(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, SANBOX_IMAGES: join(work, 'images') }, maxBuffer: 64 << 20 }, (e, out, err) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });
}

const readReport = (dir: string) => JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as ScenarioReport;

describe('sanbox scenario run', () => {
  it('runs a seeded scenario against a fresh lab and reports every fault, event, sample and check', async () => {
    const dir = join(work, 'flaps');
    const r = await sanbox(['scenario', 'run', join(FIXTURES, 'flaps.yaml'), '--seed', '11', '--report', dir]);
    expect(r.err).toContain('fault #0 inject: link alpha-bravo cut');
    expect(r.code, r.out + r.err).toBe(0);
    // not a terminal: the actions done of those planned, as sentences (src/cli/progress)
    expect(r.err).toMatch(/^scenario tiny-flaps: 0 of \d+ actions \(0%\) after 0s, \?\/s, ETA \?$/m);
    expect(r.err).toMatch(/^scenario tiny-flaps: done, (\d+) of \1 actions \(100%\) in [\d.]+s, [\d.]+ actions\/s on average$/m);
    expect(r.out).toMatch(/scenario tiny-flaps seed 11: PASS/);
    const rep = readReport(dir);
    expect(rep.ok).toBe(true);
    expect(rep.seed).toBe(11);
    // the trace is the seed's schedule, and every fault was injected and undone at its time
    expect(rep.trace).toEqual(drawSchedule(loadScenario(join(FIXTURES, 'flaps.yaml')), 11));
    expect(rep.trace.length).toBeGreaterThan(1);
    for (const f of rep.trace) {
      const done = rep.steps.filter((s) => s.source === 'nemesis' && s.index === f.index);
      expect(done.map((s) => [s.phase, s.ok])).toEqual([['inject', true], ['undo', true]]);
      expect(done[0].startMs).toBeGreaterThanOrEqual(f.atMs - 5);
    }
    expect(rep.events.some((e) => e.source === 'lab' && e.type === 'array.crashed')).toBe(true);
    expect(rep.events.some((e) => e.source === 'alpha-bravo' && e.type === 'link.cut')).toBe(true);
    expect(rep.events.some((e) => e.source === 'bravo' && e.type === 'group.promoted')).toBe(true);
    expect(rep.workloads[0].samples.length).toBeGreaterThan(1);
    expect(rep.checks.map((c) => [c.kind, c.ok])).toEqual([['prefix', true], ['rto', true], ['event', true]]);
    expect(rep.rpoSeconds).not.toBeNull();
    expect(rep.rtoSeconds).toBeGreaterThan(0);
    expect(rep.rerun).toContain('--seed 11');
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('tiny-flaps');
    // the images are gone, the report stays
    expect(existsSync(join(dir, 'images', 'alpha'))).toBe(false);
  });

  it('--replay runs the trace of a report, not a new draw', async () => {
    const dir = join(work, 'replayed');
    const trace: TraceFault[] = [
      { index: 0, nemesis: 'hand', atMs: 1500, durationMs: 700, inject: { kind: 'link-cut', link: 'alpha-bravo', direction: 'b-to-a', reset: false }, undo: { kind: 'link-restore', link: 'alpha-bravo' }, label: 'hand-made cut' },
    ];
    const recorded = join(work, 'hand-report.json');
    writeFileSync(recorded, JSON.stringify({ format: 'sanbox-scenario-report/1', scenario: 'tiny-flaps', seed: 3, trace }));
    const r = await sanbox(['scenario', 'run', join(FIXTURES, 'flaps.yaml'), '--replay', recorded, '--report', dir, '--json', '-q']);
    expect(r.code, r.out + r.err).toBe(0);
    const rep = readReport(dir);
    expect(rep.seed).toBe(3);
    expect(rep.trace).toEqual(trace);
    expect(rep.steps.filter((s) => s.source === 'nemesis').map((s) => `${s.phase} ${s.label}`)).toEqual(['inject hand-made cut', 'undo hand-made cut']);
    expect(JSON.parse(r.out).ok).toBe(true);
  });

  it('fails a run whose step fails, and prints the seed and the rerun command', async () => {
    const r = await sanbox(['scenario', 'run', join(FIXTURES, 'wrong-step.yaml'), '--seed', '4', '--report', join(work, 'wrong'), '-q']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/seed 4: FAIL/);
    expect(r.out).toMatch(/step 0 group-promote .* failed: state:/);
    expect(r.out).toContain('rerun: sanbox scenario run');
    expect(r.out).toContain('--seed 4');
    const rep = readReport(join(work, 'wrong'));
    expect(rep.checks.map((c) => c.ok)).toEqual([true]); // the checks still ran
  });

  it('catches a planted data loss: acknowledged writes the disk never made durable fail the ledger check', async () => {
    const dir = join(work, 'lost');
    const r = await sanbox(['scenario', 'run', join(FIXTURES, 'lost-writes.yaml'), '--report', dir, '-q']);
    expect(r.code, r.out + r.err).toBe(1);
    expect(r.out).toMatch(/check 0 \(ledger of host\) failed: .* [1-9]\d* violations/);
    const check = readReport(dir).checks[0];
    expect(check.ok).toBe(false);
    expect(Object.keys((check.details as { violationsByKind: object }).violationsByKind)).toContain('lost');
  });

  it('Ctrl-C ends the run as a failed one: the lab stopped, no process left, the report written', async () => {
    const dir = join(work, 'interrupted');
    const p = spawn(process.execPath, [BIN, 'scenario', 'run', join(FIXTURES, 'flaps.yaml'), '--report', dir], { env: { ...process.env, SANBOX_IMAGES: join(work, 'images') } });
    let err = '';
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      p.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('fault #1 inject')) p.kill('SIGINT');
      });
      p.on('close', resolve);
    });
    expect(code, err).toBe(1);
    expect(out).toContain('interrupted (SIGINT)');
    const rep = readReport(dir);
    expect(rep.failure).toBe('interrupted (SIGINT)');
    // the fault in force was undone, nothing was injected after the interrupt
    expect(rep.steps.filter((s) => s.source === 'nemesis').map((s) => s.phase)).toEqual(['inject', 'undo', 'inject', 'undo']);
    expect(rep.steps.some((s) => s.kind === 'array-crash')).toBe(false);
    const left = execFileSync('ps', ['-eo', 'args']).toString().split('\n').filter((l) => l.includes(rep.lab));
    expect(left).toEqual([]);
  });

  it('refuses an invalid file with every problem and its path, starting nothing', async () => {
    const r = await sanbox(['scenario', 'run', join(FIXTURES, 'invalid.yaml'), '--report', join(work, 'invalid')]);
    expect(r.code).toBe(2);
    for (const p of ['workloads[0].luns[1]: unknown LUN "disk9"', 'workloads[0].depth:', 'steps[0].link-cut.link: unknown link "alpha-charlie"', 'steps[1].atx: unknown key', 'checks[0].ledger.workload:']) expect(r.err).toContain(p);
    expect(existsSync(join(work, 'invalid'))).toBe(false);
    const bad = await sanbox(['scenario', 'run', join(FIXTURES, 'flaps.yaml'), '--runs', '0']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--runs must be an integer');
  });
});
