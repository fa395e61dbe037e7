/**
 * `sanbox vs state|wait|freeze`: volume-set states of a running lab (issue 14, docs/automation.md).
 * Exit codes: 0 ok (wait: reached), 1 refused (no such volume set, a freeze that cannot be done),
 * 2 usage, 3 the lab is not running or the primary cannot be reached; wait: 4 timed out,
 * 5 the set can never reach the state (src/automation/vs-wait.ts).
 */
import type { Command } from 'commander';
import { ARRAY_DEADLINE_MS, groupOfMirror, labVolumeSets, readVolumeSet, type LabVolumeSet } from '../../automation/client.js';
import { FreezeRefused, freezeVolumeSet } from '../../automation/freeze.js';
import { parseVsState, VS_STATES, type VsReading, type VsState } from '../../automation/vs-state.js';
import { waitVerdict } from '../../automation/vs-wait.js';
import { CliError, EXIT, nameArg, printJson, sleep, usage } from '../common.js';
import type { Run } from '../command-kit.js';
import type { LabState } from '../lab.js';
import { findLab } from '../target.js';
import { freezeText, readingLine, statesText } from './render.js';

/** `vs wait`: the state was not reached within --timeout; the set can never reach it. */
export const EXIT_WAIT = { TIMEOUT: 4, NEVER: 5 } as const;

/** Pause between two readings of `vs wait`. */
const WAIT_POLL_MS = 500;
/** `vs wait` repeats an unchanged state on stderr this often. */
const WAIT_REPEAT_MS = 5000;

interface VsFlags {
  lab?: string;
  json?: boolean;
}

interface WaitFlags extends VsFlags {
  timeout: string;
}

/** The volume set of the lab named `name`; a mirror of a group or an unknown name: undefined with why. */
function findSet(lab: LabState, name: string): { set?: LabVolumeSet; why: string } {
  const set = labVolumeSets(lab).find((s) => s.name === name);
  if (set) return { set, why: '' };
  const g = groupOfMirror(lab, name);
  const names = labVolumeSets(lab).map((s) => s.name);
  if (g) return { why: `mirror ${name} is a member of group ${g}: its volume set is ${g}` };
  return { why: `lab ${lab.lab} has no volume set ${name} (volume sets: ${names.join(', ') || 'none'})` };
}

function needSet(lab: LabState, name: string): LabVolumeSet {
  const { set, why } = findSet(lab, name);
  if (!set) throw new CliError(EXIT.ERROR, 'not-found', why);
  return set;
}

async function stateCommand(name: string | undefined, f: VsFlags): Promise<number> {
  if (name !== undefined) nameArg(name, 'volume set');
  const lab = await findLab({ ...(f.lab ? { lab: f.lab } : {}) });
  const sets = name !== undefined ? [needSet(lab, name)] : labVolumeSets(lab);
  const readings = await Promise.all(sets.map((s) => readVolumeSet(lab, s)));
  if (f.json) printJson({ lab: lab.lab, sets: readings });
  else process.stdout.write((readings.length ? statesText(readings) : `lab ${lab.lab} has no volume sets (no mirrors or groups)`) + '\n');
  return EXIT.OK;
}

/** --timeout: seconds, a positive number (fractions allowed), at most a day. */
function timeoutArg(text: string): number {
  const s = /^\d+(\.\d+)?s?$/.test(text) ? Number.parseFloat(text) : NaN;
  if (!(s > 0 && s <= 86_400)) throw usage(`--timeout must be seconds, more than 0 and at most 86400 (e.g. 30 or 2.5), not ${JSON.stringify(text)}`);
  return s * 1000;
}

function stateArg(text: string): VsState {
  const s = parseVsState(text);
  if (!s) throw usage(`unknown volume-set state ${JSON.stringify(text)} (states: ${VS_STATES.join(', ')})`);
  return s;
}

interface WaitOutcome {
  outcome: 'reached' | 'timeout' | 'never';
  reason?: string;
  detail?: string;
  reading: VsReading | null;
}

async function waitCommand(name: string, target: string, f: WaitFlags): Promise<number> {
  nameArg(name, 'volume set');
  const want = stateArg(target);
  const timeoutMs = timeoutArg(f.timeout);
  const lab = await findLab({ ...(f.lab ? { lab: f.lab } : {}) });
  const started = Date.now();
  const { set, why } = findSet(lab, name);
  const o: WaitOutcome = set ? await poll(lab, set, want, started + timeoutMs, f.json === true) : { outcome: 'never', reason: 'no-such-set', detail: why, reading: null };
  const code = o.outcome === 'reached' ? EXIT.OK : o.outcome === 'timeout' ? EXIT_WAIT.TIMEOUT : EXIT_WAIT.NEVER;
  const elapsedMs = Date.now() - started;
  if (f.json) printJson({ set: name, target: want, ...o, exitCode: code, elapsedMs });
  else if (o.outcome === 'reached') process.stdout.write(`${name} reached ${want} after ${(elapsedMs / 1000).toFixed(1)} s: ${o.reading ? readingLine(o.reading) : ''}\n`);
  else if (o.outcome === 'timeout') process.stderr.write(`sanbox: vs wait ${name}: ${want} not reached within ${f.timeout} s; now ${o.reading ? readingLine(o.reading) : '?'}\n`);
  else process.stderr.write(`sanbox: vs wait ${name}: can never reach ${want}: ${o.detail}\n`);
  return code;
}

/** Readings until the state, a never, or the deadline; progress on stderr (not with --json). */
async function poll(lab: LabState, set: LabVolumeSet, want: VsState, deadline: number, quiet: boolean): Promise<WaitOutcome> {
  let said = '';
  let saidAt = 0;
  for (;;) {
    const left = deadline - Date.now();
    const reading = await readVolumeSet(lab, set, { deadlineMs: Math.max(200, Math.min(ARRAY_DEADLINE_MS, left)) });
    const v = waitVerdict(reading, want);
    if (v.outcome === 'reached') return { outcome: 'reached', reading };
    if (v.outcome === 'never') return { outcome: 'never', reason: v.reason, detail: v.detail, reading };
    if (Date.now() >= deadline) return { outcome: 'timeout', reason: reading.reason, detail: reading.detail, reading };
    const line = readingLine(reading);
    if (!quiet && (line !== said || Date.now() - saidAt >= WAIT_REPEAT_MS)) {
      process.stderr.write(`vs wait ${set.name}: ${line}; waiting for ${want}, ${Math.ceil(left / 1000)} s left\n`);
      said = line;
      saidAt = Date.now();
    }
    await sleep(Math.min(WAIT_POLL_MS, Math.max(0, deadline - Date.now())));
  }
}

async function freezeCommand(name: string, f: VsFlags): Promise<number> {
  nameArg(name, 'volume set');
  const lab = await findLab({ ...(f.lab ? { lab: f.lab } : {}) });
  const set = needSet(lab, name);
  try {
    const r = await freezeVolumeSet(lab, set);
    if (f.json) printJson(r);
    else process.stdout.write(freezeText(r) + '\n');
    return EXIT.OK;
  } catch (e) {
    if (e instanceof FreezeRefused) throw new CliError(e.code === 'unreachable' ? EXIT.UNREACHABLE : EXIT.ERROR, e.code, e.message);
    throw e;
  }
}

export function addAutomationCommands(program: Command, run: Run): void {
  const vs = program.command('vs').description('volume sets of a lab (mirrors, consistency groups): state, wait for a state, freeze (docs/automation.md)');
  const opts = (c: Command) => c.option('--lab <name>', 'the lab (default: $SANBOX_LAB, else the only running lab)').option('--json', 'machine-readable output');
  opts(vs.command('state [set]').description('the state of every volume set of the lab, or of one, from all its arrays')).action(run((s: string | undefined, f: VsFlags) => stateCommand(s, f)));
  opts(
    vs
      .command('wait <set> <state>')
      .description(`wait until the set is in STATE (${VS_STATES.join(', ')}): exit 0 reached, 4 timed out, 5 never`)
      .requiredOption('--timeout <seconds>', 'give up after this many seconds (exit 4)'),
  ).action(run((s: string, t: string, f: WaitFlags) => waitCommand(s, t, f)));
  opts(vs.command('freeze <set>').description('stop replicating every member at one write boundary (mirror: fracture; group: pause)')).action(run((s: string, f: VsFlags) => freezeCommand(s, f)));
}
