/**
 * `sanbox events`: the events of a whole lab (arrays, links, supervisor, monitor) merged in time
 * order, one line each or JSON lines; `--follow` goes on with what happens next.
 */
import type { Command } from 'commander';
import { parseDuration } from '../lab.js';
import { apiUrlArg, CliError, EXIT, intArg, nameArg, usage } from '../common.js';
import type { Run } from '../command-kit.js';
import { findLab } from '../target.js';
import { resolveToken } from '../token-file.js';
import { follow, labSources, snapshot, SourceUnreachable, type EventSource, type SourcedEvent } from './sources.js';
import { eventLine, typeFilter } from './render.js';

export interface EventsFlags {
  lab?: string;
  api?: string;
  token?: string;
  tokenFile?: string;
  array?: string[];
  link?: string[];
  follow?: boolean;
  since?: string;
  type?: string;
  count?: string;
  json?: boolean;
}

/** --since: a sequence number (one source only), or how long ago (`10m`) / an ISO time (any). */
function sinceArg(text: string | undefined, sources: number): { seq: number; fromMs?: number } {
  if (text === undefined) return { seq: 0 };
  if (/^\d+$/.test(text)) {
    if (sources !== 1) throw usage(`--since ${text} is a sequence number of one source: pick one with --array or --link, or give a time (10m, 2026-12-02T10:00:00Z)`);
    return { seq: Number(text) };
  }
  const ago = parseDuration(text);
  if (ago !== undefined) return { seq: 0, fromMs: Date.now() - ago };
  const at = Date.parse(text);
  if (/^\d{4}-\d\d-\d\d/.test(text) && Number.isFinite(at)) return { seq: 0, fromMs: at };
  throw usage(`--since must be a sequence number, a duration like 10m or an ISO time, not ${JSON.stringify(text)}`);
}

async function pickSources(f: EventsFlags): Promise<EventSource[]> {
  for (const a of f.array ?? []) nameArg(a, 'array name');
  for (const l of f.link ?? []) nameArg(l, 'link name');
  const url = f.api ?? (process.env.SANBOX_API || undefined);
  if (url) {
    if (f.link?.length) throw usage('--link goes with a lab, not with --api (a link emulator is not an array API)');
    const token = resolveToken({ token: f.token, file: f.tokenFile }, { token: '--token', file: '--token-file' }, 'SANBOX_TOKEN');
    return [{ name: f.array?.[0] ?? 'array', kind: 'array', url: apiUrlArg(url, f.api !== undefined ? '--api' : '$SANBOX_API').replace(/\/+$/, ''), ...(token ? { token } : {}), sse: true }];
  }
  const lab = await findLab({ lab: f.lab });
  const pick = { arrays: f.array ?? [], links: f.link ?? [] };
  const sources = labSources(lab, pick);
  const missing = [...pick.arrays.filter((a) => !sources.some((s) => s.kind === 'array' && s.name === a)), ...pick.links.filter((l) => !sources.some((s) => s.kind === 'link' && s.name === l))];
  if (missing.length) throw new CliError(EXIT.ERROR, 'not-found', `lab ${lab.lab} has no ${missing.map((m) => JSON.stringify(m)).join(', ')} (arrays: ${lab.arrays.map((a) => a.name).join(', ')}; links: ${(lab.links ?? []).map((l) => l.name).join(', ') || 'none'})`);
  return sources;
}

export async function eventsCommand(f: EventsFlags): Promise<number> {
  const keep = typeFilter(f.type);
  const count = f.count === undefined ? Infinity : intArg(f.count, '--count', 0, 1);
  if (f.count !== undefined && !f.follow) throw usage('--count goes with --follow');
  const sources = await pickSources(f);
  const since = sinceArg(f.since, sources.length);
  const print = (e: SourcedEvent) => process.stdout.write((f.json ? JSON.stringify(e) : eventLine(e)) + '\n');
  const wanted = (e: SourcedEvent) => keep(e.type) && (since.fromMs === undefined || Date.parse(e.time) >= since.fromMs);

  const reads = await Promise.all(sources.map((s) => snapshot(s, since.seq).then((events) => ({ s, events }), (error: Error) => ({ s, error }))));
  const failed = reads.filter((r): r is { s: EventSource; error: Error } => 'error' in r);
  for (const r of failed) process.stderr.write(`sanbox: ${r.error.message}\n`);
  if (failed.length === sources.length) {
    const all = failed.every((r) => r.error instanceof SourceUnreachable);
    throw new CliError(all ? EXIT.UNREACHABLE : EXIT.ERROR, all ? 'unreachable' : 'error', `no event source could be read (${sources.map((s) => `${s.kind} ${s.name}`).join(', ')})`);
  }
  const kept = reads.flatMap((r) => ('events' in r ? r.events : []));
  kept.sort((a, b) => Date.parse(a.time) - Date.parse(b.time) || a.source.localeCompare(b.source) || a.seq - b.seq);
  for (const e of kept) if (wanted(e)) print(e);
  if (!f.follow) return EXIT.OK;

  const last = new Map<EventSource, number>(sources.map((s) => [s, since.seq]));
  for (const e of kept) {
    const s = sources.find((x) => x.name === e.source && x.kind === e.kind)!;
    last.set(s, Math.max(last.get(s)!, e.seq));
  }
  const stop = new AbortController();
  let printed = 0;
  const onInt = () => stop.abort();
  process.once('SIGINT', onInt);
  try {
    await Promise.all(
      sources.map((s) =>
        follow(
          s,
          last.get(s)!,
          (e) => {
            if (stop.signal.aborted || !wanted(e)) return;
            print(e);
            if (++printed >= count) stop.abort();
          },
          (why) => process.stderr.write(`sanbox: ${why}\n`),
          stop.signal,
        ),
      ),
    );
  } finally {
    process.off('SIGINT', onInt);
  }
  return EXIT.OK;
}

export function addEventsCommand(program: Command, run: Run): void {
  const collect = (v: string, prev: string[] = []) => [...prev, v];
  program
    .command('events')
    .description("the lab's events merged in time order: arrays, links, supervisor, monitor (--follow for what comes next)")
    .option('--lab <name>', 'lab (default: $SANBOX_LAB, else the only running lab)')
    .option('--array <name>', 'only this array (repeatable)', collect)
    .option('--link <name>', 'only this link (repeatable)', collect)
    .option('--api <url>', "one array's API instead of a lab (default: $SANBOX_API)")
    .option('--token-file <file>', 'with --api: the bearer token, the first line of FILE (default: $SANBOX_TOKEN)')
    .option('--token <token>', 'with --api: the token itself (visible in ps)')
    .option('--type <patterns>', "only these types: comma-separated, * matches within a type (e.g. 'mirror.*,link.cut')")
    .option('--since <seq|time>', 'after this sequence number (one source), or since a time: 10m ago, or an ISO time')
    .option('-f, --follow', 'go on printing events as they happen, until Ctrl-C')
    .option('--count <n>', 'with --follow: stop after N more events')
    .option('--json', 'one JSON object per line, with source and kind added')
    .action(run((opts: EventsFlags) => eventsCommand(opts)));
}
