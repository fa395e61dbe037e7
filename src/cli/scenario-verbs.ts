/**
 * `sanbox scenario run FILE`: a scenario file run against a fresh lab (docs/scenario.md).
 * Exit codes: 0 every run passed, 1 a run failed (a step, a fault action, a check, the timeout;
 * each failure prints its seed and the command that reruns it), 2 usage error or an invalid
 * scenario file (every problem listed with its path; nothing started).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { formatSummary, loadScenario, renderReportHtml, REPORT_FORMAT, runScenario, ScenarioSpecError, summarize, type ScenarioReport, type ScenarioSpec, type TraceFault } from '../scenario/index.js';
import { CliError, EXIT, intArg, printJson, usage } from './common.js';
import type { Run } from './command-kit.js';

export interface ScenarioRunFlags {
  seed?: string;
  runs?: string;
  report?: string;
  replay?: string;
  keepImages?: boolean;
  json?: boolean;
  quiet?: boolean;
}

function load(file: string): ScenarioSpec {
  if (!existsSync(file)) throw usage(`no scenario file ${file}`);
  try {
    return loadScenario(file);
  } catch (e) {
    if (e instanceof ScenarioSpecError) throw new CliError(EXIT.USAGE, 'invalid-scenario', `${file} is not a valid scenario:\n  ${e.problems.join('\n  ')}`);
    throw e;
  }
}

/** The trace (and seed) of a report to replay; the file must be a report of the same scenario. */
function replayOf(path: string, spec: ScenarioSpec): { seed: number; trace: TraceFault[] } {
  let r: Partial<ScenarioReport>;
  try {
    r = JSON.parse(readFileSync(path, 'utf8')) as Partial<ScenarioReport>;
  } catch (e) {
    throw usage(`--replay ${path}: cannot read a report: ${(e as Error).message}`);
  }
  if (r.format !== REPORT_FORMAT || !Array.isArray(r.trace) || typeof r.seed !== 'number') throw usage(`--replay ${path}: not a scenario report (format ${REPORT_FORMAT})`);
  if (r.scenario !== spec.name) throw usage(`--replay ${path}: a report of scenario ${r.scenario}, not ${spec.name}`);
  return { seed: r.seed, trace: r.trace };
}

function writeReport(r: ScenarioReport): void {
  writeFileSync(join(r.runDir, 'report.json'), JSON.stringify(r, null, 1) + '\n');
  writeFileSync(join(r.runDir, 'report.html'), renderReportHtml(r));
}

function runLine(r: ScenarioReport): string {
  const rpo = r.rpoSeconds === null ? '' : `, RPO ${r.rpoSeconds.toFixed(3)} s`;
  const rto = r.rtoSeconds === null ? '' : `, RTO ${r.rtoSeconds.toFixed(3)} s`;
  const head = `scenario ${r.scenario} seed ${r.seed}: ${r.ok ? 'PASS' : 'FAIL'} in ${(r.durationMs / 1000).toFixed(1)} s${rpo}${rto}; report ${join(r.runDir, 'report.html')}`;
  return r.ok ? head : `${head}\n  ${r.failure}\n  rerun: ${r.rerun}\n  replay: ${r.replay}`;
}

export async function scenarioRunCommand(file: string, f: ScenarioRunFlags): Promise<number> {
  const path = resolve(file);
  const spec = load(path);
  const runs = intArg(f.runs, '--runs', 1, 1, 100_000);
  if (f.replay && f.runs) throw usage('--replay runs one recorded trace: it takes no --runs');
  if (f.replay && f.seed) throw usage('--replay takes the seed of the report: give no --seed');
  const replay = f.replay ? replayOf(resolve(f.replay), spec) : null;
  const first = replay?.seed ?? intArg(f.seed, '--seed', spec.seed, 0, 0xffffffff);
  const base = f.report ? resolve(f.report) : mkdtempSync(join(tmpdir(), `sanbox-scenario-${spec.name}-`));
  mkdirSync(base, { recursive: true });
  const fileArg = relative(process.cwd(), path) || path;
  const reports: ScenarioReport[] = [];
  // Ctrl-C ends the run in progress as a failed run (faults undone, lab stopped, report written).
  const interrupt = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => interrupt.abort(sig);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    for (let i = 0; i < runs && !interrupt.signal.aborted; i++) {
      const seed = (first + i) >>> 0;
      const runDir = runs === 1 ? base : join(base, `seed-${seed}`);
      const r = await runScenario(spec, { seed, runDir, trace: replay?.trace, keepImages: f.keepImages, progressOut: f.quiet ? null : process.stderr, fileArg, signal: interrupt.signal });
      writeReport(r);
      reports.push(r);
      if (!f.json) process.stdout.write(runLine(r) + '\n');
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const summary = summarize(reports);
  if (runs > 1) writeFileSync(join(base, 'summary.json'), JSON.stringify(summary, null, 1) + '\n');
  if (f.json) printJson(runs === 1 ? reportDigest(reports[0]) : { summary, runs: reports.map(reportDigest) });
  else if (runs > 1) process.stdout.write(formatSummary(summary) + '\n');
  return summary.failed.length === 0 ? EXIT.OK : EXIT.ERROR;
}

/** The report without the bulky parts (events, samples): the full one is report.json. */
function reportDigest(r: ScenarioReport) {
  return {
    scenario: r.scenario,
    seed: r.seed,
    ok: r.ok,
    failure: r.failure,
    durationMs: r.durationMs,
    rpoSeconds: r.rpoSeconds,
    rtoSeconds: r.rtoSeconds,
    checks: r.checks.map(({ kind, label, ok, skipped, summary }) => ({ kind, label, ok, skipped, summary })),
    faults: r.trace.length,
    events: r.events.length,
    report: join(r.runDir, 'report.json'),
    html: join(r.runDir, 'report.html'),
    rerun: r.rerun,
    replay: r.replay,
  };
}

export async function scenarioValidateCommand(file: string, f: { json?: boolean }): Promise<number> {
  const spec = load(resolve(file));
  if (f.json) printJson({ ok: true, scenario: spec.name, lab: spec.labFile, workloads: spec.workloads.length, steps: spec.steps.length, nemesis: spec.nemesis.length, checks: spec.checks.length });
  else process.stdout.write(`${file}: valid scenario ${spec.name} (${spec.workloads.length} workloads, ${spec.steps.length} steps, ${spec.nemesis.length} nemeses, ${spec.checks.length} checks)\n`);
  return EXIT.OK;
}

export function addScenarioCommands(program: Command, run: Run): void {
  const scenario = program
    .command('scenario')
    .description('seeded fault-injection scenarios: a lab, workloads, a timeline, random faults, checks and a report')
    .addHelpText('after', '\nExit codes: 0 every run passed, 1 a run failed (seed and rerun command printed), 2 usage error or invalid scenario file.\nSee docs/scenario.md.');
  scenario
    .command('run')
    .description('run a scenario file against a fresh lab of its own')
    .argument('<file>', 'scenario file (YAML)')
    .option('--seed <n>', "seed of the fault schedule and the workloads (default: the file's seed:)")
    .option('--runs <k>', 'run seeds N..N+K-1 and summarize (default 1)')
    .option('--report <dir>', 'where the run directory, report.json and report.html go (default: a new temporary directory)')
    .option('--replay <report.json>', "run again the exact fault trace and seed of a report")
    .option('--keep-images', 'keep the image files of the run (default: removed after the lab stops)')
    .option('-q, --quiet', 'no progress on stderr')
    .option('--json', 'machine-readable result on stdout')
    .action(run((file: string, opts: ScenarioRunFlags) => scenarioRunCommand(file, opts)));
  scenario
    .command('validate')
    .description('check a scenario file (every problem listed with its path); starts nothing')
    .argument('<file>', 'scenario file (YAML)')
    .option('--json', 'machine-readable result')
    .action(run((file: string, opts: { json?: boolean }) => scenarioValidateCommand(file, opts)));
}
