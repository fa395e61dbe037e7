/**
 * Scenario files: a lab, workloads, a timeline of steps, random faults drawn from a seed, and
 * checks — run, rerun by seed, replayed from a report, summarized over many seeds
 * (`sanbox scenario run`, docs/scenario.md). spec/ parses and validates the file, schedule/ draws
 * the nemesis's trace, runner/ runs it against a fresh lab, report/ renders what happened.
 */
export type { ScenarioSpec } from './spec/types.js';
export { loadScenario, parseScenario, ScenarioSpecError } from './spec/parse.js';
export { drawSchedule } from './schedule/index.js';
export { runScenario, type RunOptions } from './runner/run.js';
export { REPORT_FORMAT, type ScenarioReport, type TraceFault } from './report/types.js';
export { renderReportHtml } from './report/html.js';
export { summarize, formatSummary, type RunsSummary } from './summary.js';
