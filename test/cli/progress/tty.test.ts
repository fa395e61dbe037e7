// A real long verb (`sanbox clone create --wait`, the built CLI in a child process) against a real
// array: under a pseudo-terminal (util-linux `script`) stderr is a terminal and gets one bar
// redrawn in place with rate and ETA, fitted to the terminal's width, and a final line; through a
// pipe it gets plain sentences; with --json stdout holds the JSON alone and no progress is drawn.
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningArray } from '../../../src/control/service.js';
import { hostDevice, MiB, startCloneArray, tempRoot } from '../../clone/helpers.js';
import { BIN, requireBuild } from '../../support/paths.js';

/** 12 MiB at 2 MiB/s: about 6 s, so that a pipe sees a line with a rate between the first and the last. */
const LUN_BYTES = 12 * MiB;
const RATE = '2M';

let root: ReturnType<typeof tempRoot>;
let run: RunningArray;
let clones = 0;

beforeAll(async () => {
  requireBuild('cli/index.js');
  root = tempRoot('sanbox-progress-tty-');
  ({ run } = await startCloneArray(root.path, [{ name: 'disk0', size: LUN_BYTES }]));
  await hostDevice(run, 'disk0').write(0, Buffer.alloc(LUN_BYTES, 0x5a)); // data everywhere: every region is copied at the rate
});
afterAll(async () => {
  await run?.close(200);
  root?.cleanup();
});

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const createArgs = (name: string, rate: string, ...more: string[]) => [BIN, 'clone', 'create', 'disk0', name, '--rate', rate, '--wait', '--api', run.apiUrl!, ...more];
/** For the runs that check there is no progress: no need to wait. */
const FAST = '256M';
const env = { ...process.env, SANBOX_API: undefined, SANBOX_LAB: undefined, SANBOX_TOKEN: undefined };

/** Runs `node ARGS` under a pseudo-terminal `columns` wide; `stdoutFile`: stdout goes there instead. What the terminal showed. */
function underTty(args: string[], columns: number, stdoutFile?: string): Promise<{ code: number; screen: string }> {
  const cmd = `stty cols ${columns} rows 30; exec ${[process.execPath, ...args].map(sh).join(' ')}${stdoutFile ? ` > ${sh(stdoutFile)}` : ''}`;
  return new Promise((resolve) => {
    execFile('script', ['-qfec', cmd, '/dev/null'], { env, maxBuffer: 16 << 20, timeout: 60_000 }, (e, out) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, screen: out }),
    );
  });
}

function piped(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env, maxBuffer: 16 << 20, timeout: 60_000 }, (e, out, err) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }));
  });
}

describe('progress of a long verb on a terminal and off it', () => {
  it('script(1) is here (util-linux)', () => {
    expect(execFileSync('script', ['--version']).toString()).toMatch(/util-linux/);
  });

  it('a terminal: one bar redrawn in place with rate and ETA, fitted to the width, a final line, then the result', async () => {
    const name = `t${++clones}`;
    const r = await underTty(createArgs(name, RATE), 72);
    expect(r.code, r.screen).toBe(0);
    // the terminal turns \n into \r\n; the redraws are \r + clear-line
    const screen = r.screen.replace(/\r\n/g, '\n');
    const draws = screen.split('\r\x1b[K').map((d) => d.replace(/\n.*$/s, '')).filter((d) => d.startsWith(`clone ${name}`));
    expect(draws.length, screen).toBeGreaterThan(4);
    for (const d of draws) expect(d.length, d).toBeLessThanOrEqual(71);
    // a bar with a measured rate and an ETA, not only `?`
    const measured = draws.filter((d) => /^clone t\d+ \[#*\.+\] \d+% [\d.]+ MiB\/12 MiB [\d.]+ [KM]iB\/s ETA \d+s$/.test(d));
    expect(measured.length, draws.join('\n')).toBeGreaterThan(2);
    const rates = measured.map((d) => Number(/ ([\d.]+) MiB\/s ETA/.exec(d)?.[1] ?? 'NaN')).filter((x) => !Number.isNaN(x));
    expect(Math.max(...rates)).toBeGreaterThan(1); // 2 MiB/s, measured over the last seconds
    expect(Math.max(...rates)).toBeLessThan(4);
    expect(screen).toMatch(new RegExp(`\\r\\x1b\\[Kclone ${name} \\[#+\\] 100% 12 MiB/12 MiB [\\d.]+ MiB/s done in [\\d.]+s\\n`));
    expect(screen).toMatch(new RegExp(`\\nclone ${name} of disk0@clone-${name} completed: 12 MiB in [\\d.]+s`));
  });

  it('a pipe: plain sentences with percent, rate and ETA, a few seconds apart, and the final one', async () => {
    const name = `p${++clones}`;
    const started = Date.now();
    const r = await piped(createArgs(name, RATE));
    expect(r.code, r.err).toBe(0);
    expect(r.err).not.toContain('\r');
    expect(r.err).not.toContain('\x1b');
    const lines = r.err.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^clone ${name}: [\\d.]+ [KM]?i?B of 12 MiB \\(\\d+%\\) after 0s, \\?/s, ETA \\?$`));
    const middle = lines.slice(1, -1);
    expect(middle.length, r.err).toBeGreaterThanOrEqual(1);
    expect(middle.length).toBeLessThanOrEqual(Math.ceil((Date.now() - started) / 5000));
    for (const l of middle) expect(l).toMatch(new RegExp(`^clone ${name}: [\\d.]+ MiB of 12 MiB \\(\\d+%\\) after \\d+s, [\\d.]+ MiB/s, ETA \\d+s$`));
    expect(lines.at(-1)).toMatch(new RegExp(`^clone ${name}: done, 12 MiB of 12 MiB \\(100%\\) in [\\d.]+s, [\\d.]+ MiB/s on average$`));
    expect(r.out).toMatch(/completed: 12 MiB in/);
  });

  it('--json on a terminal: stdout is the JSON alone, and no progress is drawn', async () => {
    const name = `j${++clones}`;
    const file = join(root.path, 'out.json');
    const r = await underTty(createArgs(name, FAST, '--json'), 80, file);
    expect(r.code, r.screen).toBe(0);
    expect(r.screen).toBe(''); // stderr is the terminal: nothing on it
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    expect(doc.clone).toMatchObject({ name, state: 'completed', percent: 100 });
  });

  it('-q on a terminal: no progress', async () => {
    const name = `q${++clones}`;
    const r = await underTty(createArgs(name, FAST, '-q'), 80);
    expect(r.code, r.screen).toBe(0);
    expect(r.screen.replace(/\r\n/g, '\n')).toMatch(new RegExp(`^clone ${name} of disk0@clone-${name} completed: 12 MiB in [\\d.]+s; LUN ${name} depends on nothing\\n$`));
  });
});
