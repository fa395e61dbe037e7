/**
 * `sanbox check ...`: the workloads and checkers of src/check as verbs, against a lab or any NBD
 * server (docs/check.md). Exit codes: 0 the property holds (or the workload ran), 1 violated,
 * 2 usage error (bad flags, bad URI, unreadable or invalid state file: nothing was written),
 * 3 the server cannot be reached.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { ignoreOnClose } from '../errors/index.js';
import { BadNbdUri, ConnectionLost, NbdClient, parseNbdUri } from '../check/nbd-client/index.js';
import { formatVerifyReport, formatWriteReport, Ledger, LedgerFileError, LedgerWriter, verifyLedger, VerifyUnreachable, type WriteReport } from '../check/ledger/index.js';
import { formatPrefixReport, loadPrefixState, PREFIX_BLOCK, PrefixFileError, PrefixWriter, savePrefixState, verifyPrefix } from '../check/prefix/index.js';
import { checkFileSystem, FsCheckUnavailable } from '../check/fs/index.js';
import type { LatencyWindowSummary } from '../check/latency-window.js';
import { CliError, EXIT, intArg, printJson, usage } from './common.js';
import type { Run } from './command-kit.js';

const PROGRESS_MS = 1000;
const PROBE_TIMEOUT_MS = 3000;

// ---- arguments (each checked before anything is written) ----

function secondsArg(text: string | undefined, what: string, fallback: number, min = 0.001): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !Number.isFinite(n) || n < min) throw usage(`${what} must be seconds (a number >= ${min}), not ${JSON.stringify(text)}`);
  return n;
}

function ratioArg(text: string | undefined, what: string): number {
  if (text === undefined) return 0;
  const n = Number(text);
  if (!/^\d*\.?\d+$/.test(text.trim()) || n < 0 || n > 1) throw usage(`${what} must be a fraction from 0 to 1, not ${JSON.stringify(text)}`);
  return n;
}

/** --uri values: repeatable, and each may be a comma-separated list. */
function urisArg(values: string[] | undefined, what = '--uri'): string[] {
  const uris = (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  if (uris.length === 0) throw usage(`${what} is required (nbd://HOST[:PORT]/EXPORT)`);
  for (const u of uris) {
    try {
      parseNbdUri(u);
    } catch (e) {
      throw usage(`${what}: ${(e as Error).message}`);
    }
  }
  return uris;
}

/** A state file to write: its directory must exist, and it must not be a directory. */
function stateOutArg(path: string | undefined): string {
  if (!path) throw usage('--state FILE is required');
  const p = resolve(path);
  const dir = dirname(p);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw usage(`--state ${path}: directory ${dir} does not exist`);
  if (existsSync(p) && statSync(p).isDirectory()) throw usage(`--state ${path} is a directory`);
  return p;
}

function stateInArg(path: string | undefined): string {
  if (!path) throw usage('--state FILE is required');
  return resolve(path);
}

/** Maps what the checkers throw to the CLI's exit codes. */
function cliErrorOf(e: unknown): unknown {
  if (e instanceof CliError) return e;
  if (e instanceof BadNbdUri) return usage(e.message);
  if (e instanceof LedgerFileError || e instanceof PrefixFileError) return new CliError(EXIT.USAGE, 'bad-state-file', e.message);
  if (e instanceof FsCheckUnavailable) return new CliError(EXIT.USAGE, 'unavailable', e.message);
  if (e instanceof VerifyUnreachable || e instanceof ConnectionLost) return new CliError(EXIT.UNREACHABLE, 'unreachable', e.message);
  return e;
}

const guarded =
  <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
  async (...args: A): Promise<number> => {
    try {
      return await fn(...args);
    } catch (e) {
      throw cliErrorOf(e);
    }
  };

/** Connects to each URI once (exit 3 if one cannot be reached) and returns the export sizes. */
async function probeSizes(uris: string[]): Promise<number[]> {
  const sizes: number[] = [];
  for (const u of uris) {
    let c: NbdClient;
    try {
      c = await NbdClient.connect(u, { timeoutMs: PROBE_TIMEOUT_MS });
    } catch (e) {
      throw new CliError(EXIT.UNREACHABLE, 'unreachable', `cannot reach ${u}: ${(e as Error).message}`);
    }
    sizes.push(c.size);
    await ignoreOnClose(c.close(1000), 'closing a probe connection');
  }
  return sizes;
}

/** Stops `stop` on SIGINT/SIGTERM while `body` runs. */
async function withSignals<T>(stop: () => void, body: () => Promise<T>): Promise<T> {
  const on = () => stop();
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  try {
    return await body();
  } finally {
    process.off('SIGINT', on);
    process.off('SIGTERM', on);
  }
}

/** A periodic save that fails (disk full) is said on stderr; the final save, which must succeed, throws. */
function saveOrSay(save: () => void, path: string): void {
  try {
    save();
  } catch (e) {
    process.stderr.write(`sanbox check: cannot save ${path}: ${(e as Error).message}\n`);
  }
}

/**
 * One `--progress-json` line on stderr: a scenario runner starts the write verbs as children and
 * reads these, at the start, once per tick and once at the end, for the host's write latency of each second.
 * Independent of -q, which silences only the lines meant for people.
 */
function progressJson(kind: 'ledger' | 'prefix', counts: Record<string, number>, window: LatencyWindowSummary): void {
  process.stderr.write(`${JSON.stringify({ progress: kind, t: Date.now(), ...counts, window })}\n`);
}

// ---- sanbox check ledger write | verify ----

export interface LedgerWriteFlags {
  uri?: string[];
  blocks?: string;
  seconds?: string;
  seed?: string;
  state?: string;
  connections?: string;
  depth?: string;
  blockSize?: string;
  offset?: string;
  maxWrites?: string;
  fua?: string;
  reconnectTimeout?: string;
  runId?: string;
  json?: boolean;
  quiet?: boolean;
  progressJson?: boolean;
}

export async function ledgerWriteCommand(f: LedgerWriteFlags): Promise<number> {
  const endpoints = urisArg(f.uri);
  const state = stateOutArg(f.state);
  const blocks = intArg(f.blocks, '--blocks', 256, 1);
  const durationMs = secondsArg(f.seconds, '--seconds', 10) * 1000;
  const seed = intArg(f.seed, '--seed', 1, 0, 0xffffffff);
  const connections = intArg(f.connections, '--connections', 4, 1, 256);
  const depth = intArg(f.depth, '--depth', 4, 1, 256);
  const blockSize = intArg(f.blockSize, '--block-size', 4096, 512, 1 << 20);
  if (blockSize % 512 !== 0) throw usage(`--block-size must be a multiple of 512, not ${blockSize}`);
  const baseOffset = intArg(f.offset, '--offset', 0);
  if (baseOffset % 512 !== 0) throw usage(`--offset must be a multiple of 512, not ${baseOffset}`);
  const maxWrites = intArg(f.maxWrites, '--max-writes', Number.MAX_SAFE_INTEGER, 1);
  const fuaRatio = ratioArg(f.fua, '--fua');
  const reconnectTimeoutMs = secondsArg(f.reconnectTimeout, '--reconnect-timeout', 15, 0) * 1000;
  const runId = f.runId === undefined ? undefined : intArg(f.runId, '--run-id', 0, 1, 0xffffffff);
  const sizes = await probeSizes(endpoints);
  const region = baseOffset + blocks * blockSize;
  sizes.forEach((s, i) => {
    if (s < region) throw usage(`${endpoints[i]} is ${s} bytes; --offset ${baseOffset} + --blocks ${blocks} x --block-size ${blockSize} needs ${region}`);
  });
  const log = (m: string) => {
    if (!f.quiet) process.stderr.write(`${m}\n`);
  };
  const w = new LedgerWriter({ endpoints, blocks, durationMs, seed, connections, depth, blockSize, baseOffset, maxWrites, fuaRatio, reconnectTimeoutMs, runId });
  w.on('fault', (x: { uri: string; reason: string }) => log(`ledger: connection to ${x.uri} lost (${x.reason})`));
  w.on('reconnect', (x: { conn: number; uri: string }) => log(`ledger: connection ${x.conn} reconnected to ${x.uri}`));
  const progress = () => {
    if (f.progressJson) progressJson('ledger', { issued: w.stats.issued, acked: w.stats.acked, failed: w.stats.failed }, w.takeLatencyWindow());
  };
  progress(); // the series starts at 0: a run cut short by a fault still has a start and an end
  const tick = setInterval(() => {
    progress(); // first, so that `t` is the tick's time and not after a long save
    const s = w.stats;
    saveOrSay(() => w.ledger.save(state), state);
    log(`ledger: issued ${s.issued} acked ${s.acked} failed ${s.failed} in-flight-at-fault ${s.inflightAtFault} reconnects ${s.reconnects}`);
  }, PROGRESS_MS);
  let report: WriteReport;
  try {
    report = await withSignals(
      () => {
        log('ledger: stopping (signal)');
        w.stop();
      },
      () => w.run(),
    );
  } catch (e) {
    // Could not even start (the server went away after the probe): no state unless something was written.
    if (w.stats.issued > 0) w.ledger.save(state);
    throw e;
  } finally {
    clearInterval(tick);
    progress(); // the last, partial window
  }
  w.ledger.run.savedAt = new Date().toISOString();
  w.ledger.save(state);
  // The summary goes to stdout; with --json (the report on stdout) a person still sees it on stderr.
  if (f.json) {
    log(`${formatWriteReport(report)}\nledger: state saved to ${state}`);
    printJson({ ...report, state });
  } else process.stdout.write(`${formatWriteReport(report)}\nstate: ${state}\n`);
  return EXIT.OK;
}

export interface LedgerVerifyFlags {
  uri?: string[];
  state?: string;
  all?: boolean;
  allowReadErrors?: boolean;
  writerKilled?: boolean;
  reconnectTimeout?: string;
  json?: boolean;
}

export async function ledgerVerifyCommand(f: LedgerVerifyFlags): Promise<number> {
  const endpoints = urisArg(f.uri);
  const ledger = Ledger.load(stateInArg(f.state));
  const reconnectTimeoutMs = secondsArg(f.reconnectTimeout, '--reconnect-timeout', 15, 0) * 1000;
  await probeAny(endpoints);
  const v = await verifyLedger(ledger, { endpoints, all: f.all ?? false, allowReadErrors: f.allowReadErrors ?? false, writerKilled: f.writerKilled ?? false, reconnectTimeoutMs });
  if (f.json) printJson(v);
  else process.stdout.write(formatVerifyReport(v) + '\n');
  return v.ok ? EXIT.OK : EXIT.ERROR;
}

/** At least one of the endpoints answers (exit 3 otherwise, at once rather than after the reconnect timeout). */
async function probeAny(uris: string[]): Promise<void> {
  const errs: string[] = [];
  for (const u of uris) {
    try {
      const c = await NbdClient.connect(u, { timeoutMs: PROBE_TIMEOUT_MS });
      await ignoreOnClose(c.close(1000), 'closing a probe connection');
      return;
    } catch (e) {
      errs.push((e as Error).message);
    }
  }
  throw new CliError(EXIT.UNREACHABLE, 'unreachable', `no endpoint reachable: ${errs.join('; ')}`);
}

// ---- sanbox check prefix write | verify ----

export interface PrefixWriteFlags {
  uri?: string[];
  state?: string;
  seconds?: string;
  seed?: string;
  blocks?: string;
  depth?: string;
  maxWrites?: string;
  runId?: string;
  json?: boolean;
  quiet?: boolean;
  progressJson?: boolean;
}

export async function prefixWriteCommand(f: PrefixWriteFlags): Promise<number> {
  const uris = urisArg(f.uri);
  const state = stateOutArg(f.state);
  const durationMs = secondsArg(f.seconds, '--seconds', 10) * 1000;
  const seed = intArg(f.seed, '--seed', 1, 0, 0xffffffff);
  const depth = intArg(f.depth, '--depth', 4, 1, 256);
  const maxWrites = f.maxWrites === undefined ? undefined : intArg(f.maxWrites, '--max-writes', 0, 1);
  const run = f.runId === undefined ? undefined : intArg(f.runId, '--run-id', 0, 1, 0xffffffff);
  const requested = f.blocks === undefined ? undefined : intArg(f.blocks, '--blocks', 0, 1);
  const sizes = await probeSizes(uris);
  const fit = Math.min(...sizes.map((s) => Math.floor(s / PREFIX_BLOCK)));
  if (fit < 1) throw usage(`every LUN must hold at least one ${PREFIX_BLOCK}-byte block`);
  if (requested !== undefined && requested > fit) throw usage(`--blocks ${requested}: the smallest LUN holds ${fit} blocks of ${PREFIX_BLOCK} bytes`);
  const blocks = requested ?? fit;
  const log = (m: string) => {
    if (!f.quiet) process.stderr.write(`${m}\n`);
  };
  const w = new PrefixWriter({ run, blocks, seed, depth, maxWrites });
  const t0 = Date.now();
  await w.start(uris);
  const save = () => savePrefixState(state, w.state(seed));
  const progress = () => {
    if (f.progressJson) progressJson('prefix', { issued: w.stats.issued, acked: w.stats.acked, unknown: w.stats.unknown }, w.takeLatencyWindow());
  };
  progress(); // the series starts at 0 (see the ledger writer)
  const tick = setInterval(() => {
    progress(); // first, so that `t` is the tick's time and not after a long save
    saveOrSay(save, state);
    const s = w.stats;
    log(`prefix: issued ${s.issued} acked ${s.acked} unknown ${s.unknown} lost connections ${s.lostConnections}`);
  }, PROGRESS_MS);
  let timer: NodeJS.Timeout | undefined;
  try {
    await withSignals(
      () => {
        log('prefix: stopping (signal)');
        void w.stop();
      },
      () => Promise.race([w.finished(), new Promise<void>((r) => (timer = setTimeout(r, durationMs)))]),
    );
    await w.stop();
  } finally {
    clearTimeout(timer);
    clearInterval(tick);
    progress(); // the last, partial window
    save();
  }
  const report = { run: w.run, luns: uris, blocks, seed, elapsedMs: Date.now() - t0, ...w.stats, state };
  const line = `prefix run ${w.run}: ${report.issued} writes issued over ${uris.length} LUNs, ${report.acked} acknowledged, ${report.unknown} outcome unknown, ${report.lostConnections} connections lost, ${report.elapsedMs} ms`;
  if (f.json) {
    log(`${line}\nprefix: state saved to ${state}`);
    printJson(report);
  } else process.stdout.write(`${line}\nstate: ${state}\n`);
  return EXIT.OK;
}

export interface PrefixVerifyFlags {
  uri?: string[];
  state?: string;
  json?: boolean;
}

export async function prefixVerifyCommand(f: PrefixVerifyFlags): Promise<number> {
  const uris = urisArg(f.uri);
  const st = loadPrefixState(stateInArg(f.state));
  if (uris.length !== st.luns.length) throw usage(`--uri names ${uris.length} LUNs; the state file has ${st.luns.length} (${st.luns.map((l) => l.name).join(',')}), in that order`);
  const sizes = await probeSizes(uris);
  sizes.forEach((s, i) => {
    if (s < st.blocks * PREFIX_BLOCK) throw usage(`${uris[i]} is ${s} bytes, smaller than the ${st.blocks * PREFIX_BLOCK} bytes the workload wrote to each LUN`);
  });
  const r = await verifyPrefix(st, { uris });
  if (f.json) printJson(r);
  else process.stdout.write(formatPrefixReport(r) + '\n');
  return r.ok ? EXIT.OK : EXIT.ERROR;
}

// ---- sanbox check fs ----

export async function fsCheckCommand(f: { uri?: string[]; json?: boolean }): Promise<number> {
  const uris = urisArg(f.uri);
  if (uris.length !== 1) throw usage('check fs takes one --uri');
  const r = await checkFileSystem(uris[0]!);
  if (f.json) printJson(r);
  else process.stdout.write(`${r.output.trimEnd()}\nfs check ${r.uri}: ${r.ok ? 'clean' : `NOT CLEAN (e2fsck -fn exit ${r.e2fsckExitCode})`}\n`);
  return r.ok ? EXIT.OK : EXIT.ERROR;
}

// ---- the commands ----

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

export function addCheckCommands(program: Command, run: Run): void {
  const check = program
    .command('check')
    .description('workloads and checkers against a lab or any NBD server: acknowledged-write ledger, dependent-write prefix, file system')
    .addHelpText(
      'after',
      `
Exit codes: 0 the property holds (write: the workload ran), 1 violated (each violation listed),
2 usage error (bad flags or URI, unreadable state file: nothing written), 3 server unreachable.
See docs/check.md.`,
    );
  const uriOpt = (c: Command, desc: string) => c.option('--uri <uri>', desc, collect);

  const ledger = check.command('ledger').description('the acknowledged-write ledger: sequence-stamped blocks, every issue and ack recorded');
  uriOpt(ledger.command('write').description('write sequence-stamped blocks over several connections, recording every issue and ack in --state'), 'nbd://HOST:PORT/EXPORT (repeatable: connections spread over them and fail over)')
    .option('--state <file>', 'ledger state file to write (saved every second and at the end)')
    .option('--blocks <n>', 'blocks in the region (default 256)')
    .option('--seconds <s>', 'how long to write (default 10)')
    .option('--seed <n>', 'seed of the block choice (default 1)')
    .option('--connections <n>', 'NBD connections (default 4)')
    .option('--depth <n>', 'writes in flight per connection (default 4)')
    .option('--block-size <bytes>', 'bytes per block, a multiple of 512 (default 4096)')
    .option('--offset <bytes>', 'start of the region in the export (default 0)')
    .option('--max-writes <n>', 'stop after this many writes')
    .option('--fua <fraction>', 'fraction of writes sent with FUA (default 0)')
    .option('--reconnect-timeout <s>', 'how long a dead connection tries to come back (default 15)')
    .option('--run-id <n>', 'stamp of this run (default random)')
    .option('-q, --quiet', 'no progress lines for people on stderr (--progress-json lines still go)')
    .option('--progress-json', 'one JSON line of progress and ack latency on stderr at the start, every second and at the end (also with -q)')
    .option('--json', 'machine-readable report')
    .action(run(guarded((opts: LedgerWriteFlags) => ledgerWriteCommand(opts))));
  uriOpt(ledger.command('verify').description('every block holds its newest acknowledged version or a newer issued one; lists lost, stale, torn, foreign ... blocks'), 'nbd://HOST:PORT/EXPORT (repeatable: tried in order)')
    .option('--state <file>', 'ledger state file written by "check ledger write"')
    .option('--all', 'check every block of the region, not just the written ones')
    .option('--allow-read-errors', 'read errors (EIO of a cache-dirty LUN) do not fail the check')
    .option('--writer-killed', 'the writer was killed: versions newer than everything its last save knows are not phantoms')
    .option('--reconnect-timeout <s>', 'how long to retry a lost connection (default 15)')
    .option('--json', 'machine-readable report')
    .action(run(guarded((opts: LedgerVerifyFlags) => ledgerVerifyCommand(opts))));

  const prefix = check.command('prefix').description('dependent writes across the LUNs of a consistency group, and the prefix check of a copy');
  uriOpt(prefix.command('write').description('dependent writes across LUNs (each block written once), recorded in --state'), 'nbd://HOST:PORT/LUN,... one per LUN of the group, in order (repeatable)')
    .option('--state <file>', 'prefix state file to write (saved every second and at the end)')
    .option('--seconds <s>', 'how long to write (default 10; ends early when every connection is lost)')
    .option('--seed <n>', 'seed of the block order (default 1)')
    .option('--blocks <n>', 'blocks per LUN (default: all of the smallest LUN)')
    .option('--depth <n>', 'writes in flight per LUN (default 4)')
    .option('--max-writes <n>', 'stop after this many writes in all')
    .option('--run-id <n>', 'stamp of this run (default random)')
    .option('-q, --quiet', 'no progress lines for people on stderr (--progress-json lines still go)')
    .option('--progress-json', 'one JSON line of progress and ack latency on stderr at the start, every second and at the end (also with -q)')
    .option('--json', 'machine-readable report')
    .action(run(guarded((opts: PrefixWriteFlags) => prefixWriteCommand(opts))));
  uriOpt(prefix.command('verify').description('the copy holds a prefix of the acknowledged order; reports missing acknowledged writes and the lag (RPO)'), 'nbd://HOST:PORT/LUN,... of the copy, in the order written (repeatable)')
    .option('--state <file>', 'prefix state file written by "check prefix write"')
    .option('--json', 'machine-readable report')
    .action(run(guarded((opts: PrefixVerifyFlags) => prefixVerifyCommand(opts))));

  uriOpt(check.command('fs').description('e2fsck -fn of the file system on an export (nbdfuse + loop device; needs root and FUSE)'), 'nbd://HOST:PORT/EXPORT')
    .option('--json', 'machine-readable report')
    .action(run(guarded((opts: { uri?: string[]; json?: boolean }) => fsCheckCommand(opts))));

}
