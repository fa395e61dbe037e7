/**
 * Remote links of a lab: the supervisor side (start one link emulator with its control API per
 * `links:` entry) and the `sanbox link set|cut|restore|status` verbs, thin clients of that API.
 */
import { LinkApiServer, LinkEmulator, POLL_MS, type LinkStatus } from '../link/index.js';
import { formatSize } from '../array/index.js';
import { ignoreOnClose } from '../errors/index.js';
import { apiUrlArg, CliError, EXIT, nameArg, printJson, table, usage } from './common.js';
import { parseRate, readState, runningLabs, type Lab, type LabState, type LabStateLink } from './lab.js';
import { resolveToken } from './token-file.js';

export interface RunningLink {
  emulator: LinkEmulator;
  api: LinkApiServer;
  state: LabStateLink;
}

/** Starts the emulators of a lab (in this process); on failure stops those already started. */
export async function startLabLinks(lab: Lab, log: (t: string) => void): Promise<RunningLink[]> {
  const out: RunningLink[] = [];
  try {
    for (const l of lab.links) {
      const emulator = new LinkEmulator({
        name: l.name,
        a: l.a,
        b: l.b,
        routes: [
          { name: `to-${l.b}`, listen: { host: l.listen.bind, port: l.listen.toB }, target: l.targets.b, forward: 'a-to-b' },
          { name: `to-${l.a}`, listen: { host: l.listen.bind, port: l.listen.toA }, target: l.targets.a, forward: 'b-to-a' },
        ],
        settings: l.settings,
        cut: l.cut,
        queueBytes: l.queueBytes,
        cutResetMs: l.cutResetMs,
        pollMs: l.precise ? POLL_MS : 0,
      });
      emulator.on('event', (ev) => {
        const { seq, time: _t, link, type, ...rest } = ev;
        log(`[link ${link}] #${seq} ${type} ${JSON.stringify(rest)}`);
      });
      try {
        await emulator.start();
      } catch (e) {
        throw new CliError(EXIT.ERROR, 'start-failed', `link ${l.name}: cannot listen: ${(e as Error).message}`);
      }
      const api = new LinkApiServer({ emulator, host: l.api.bind, port: l.api.port, ...(l.api.token ? { token: l.api.token } : {}) });
      out.push({ emulator, api, state: undefined as unknown as LabStateLink });
      let url: string;
      try {
        url = (await api.listen()).url;
      } catch (e) {
        throw new CliError(EXIT.ERROR, 'start-failed', `link ${l.name}: cannot start its API: ${(e as Error).message}`);
      }
      out[out.length - 1]!.state = {
        name: l.name,
        a: l.a,
        b: l.b,
        api: { url, ...(l.api.token ? { token: l.api.token } : {}) },
        routes: emulator.status().routes,
      };
    }
    return out;
  } catch (e) {
    await stopLabLinks(out);
    throw e;
  }
}

export async function stopLabLinks(links: RunningLink[]): Promise<void> {
  // Shutdown: every link is stopped whatever the others answer; a failed close frees nothing more.
  for (const l of links) {
    await ignoreOnClose(l.api.close(), `closing the API of link ${l.emulator.name}`);
    await ignoreOnClose(l.emulator.stop(), `stopping the emulator of link ${l.emulator.name}`);
  }
}

// ---- the verbs ----

export interface LinkFlags {
  lab?: string;
  api?: string;
  token?: string;
  /** The token as the first line of this file (not shown in `ps`, unlike --token). */
  tokenFile?: string;
  json?: boolean;
}

interface Target {
  url: string;
  token?: string;
  name: string;
}

async function labState(f: LinkFlags): Promise<LabState> {
  const labName = f.lab ?? (process.env.SANBOX_LAB || undefined);
  if (labName) {
    const s = await readState(labName);
    if (!s) throw new CliError(EXIT.UNREACHABLE, 'unreachable', `lab ${labName} is not running (no state file); start it with "sanbox up"`);
    return s;
  }
  const labs = await runningLabs();
  if (labs.length === 0) throw new CliError(EXIT.UNREACHABLE, 'unreachable', 'no lab is running: start one with "sanbox up LAB.yaml" (or give --api URL)');
  if (labs.length > 1) throw usage(`several labs are running (${labs.map((l) => l.lab).join(', ')}): pick one with --lab NAME`);
  return labs[0]!;
}

/** The links to talk to: --api URL (one emulator), else the lab's links (all, or the named one). */
async function targets(name: string | undefined, f: LinkFlags): Promise<Target[]> {
  if (name !== undefined) nameArg(name, 'link name');
  const token = resolveToken({ token: f.token, file: f.tokenFile }, { token: '--token', file: '--token-file' }, 'SANBOX_LINK_TOKEN');
  if (f.api) return [{ url: apiUrlArg(f.api, '--api').replace(/\/+$/, ''), token, name: name ?? '' }];
  const s = await labState(f);
  const links = s.links ?? [];
  if (name === undefined) return links.map((l) => ({ url: l.api.url, token: token ?? l.api.token, name: l.name }));
  const l = links.find((x) => x.name === name);
  if (!l) {
    throw new CliError(EXIT.ERROR, 'not-found', `lab ${s.lab} has no link ${JSON.stringify(name)} (links: ${links.map((x) => x.name).join(', ') || 'none'})`);
  }
  return [{ url: l.api.url, token: token ?? l.api.token, name: l.name }];
}

async function call<T>(t: Target, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (t.token) headers.Authorization = `Bearer ${t.token}`;
  // JSON on every request but GET, body or not: the API refuses the others (src/http-guard).
  if (body !== undefined || method !== 'GET') headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(t.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause;
    throw new CliError(EXIT.UNREACHABLE, 'unreachable', `cannot reach the link emulator${t.name ? ` of ${t.name}` : ''} at ${t.url}: ${cause?.code ?? (e as Error).message}`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CliError(EXIT.ERROR, 'bad-response', `link emulator at ${t.url} answered ${res.status} with non-JSON`);
  }
  if (!res.ok) {
    const err = (json as { error?: { code?: string; message?: string } }).error;
    // 400: the request itself is invalid (a usage error, as with the arrays' APIs); else refused.
    throw new CliError(res.status === 400 ? EXIT.USAGE : EXIT.ERROR, err?.code ?? 'error', `link ${t.name}: ${err?.message ?? `HTTP ${res.status}`}`);
  }
  return json as T;
}

function ms(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) > 3_600_000) throw usage(`--${what} must be milliseconds >= 0 (at most 3600000), not ${JSON.stringify(v)}`);
  return Number(v);
}

/** `--loss 2.5` or `--loss 2.5%`: the share of chunks delayed by one RTO, percent 0-100. */
function percent(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)%?$/.exec(v);
  if (!m || Number(m[1]) > 100) throw usage(`--${what} must be a percentage 0-100 (2.5 or 2.5%), not ${JSON.stringify(v)}`);
  return Number(m[1]);
}

function direction(v: string | undefined): 'a-to-b' | 'b-to-a' | 'both' {
  if (v === undefined) return 'both';
  if (v === 'a-to-b' || v === 'b-to-a' || v === 'both') return v;
  throw usage(`--direction must be a-to-b, b-to-a or both, not ${JSON.stringify(v)}`);
}

const rate = (n: number) => (n === 0 ? 'unlimited' : `${formatSize(n)}/s`);
/** "1% (rto 200 ms)", or "-" without loss (or from an emulator that predates the setting). */
const loss = (s: { lossPercent?: number; rtoMs?: number }) => (s.lossPercent ? `${s.lossPercent}% (rto ${s.rtoMs} ms)` : '-');

function describe(st: LinkStatus): string {
  const lines = [`link ${st.link} (${st.a} <-> ${st.b})  ${st.state}`];
  lines.push(
    table(
      ['DIRECTION', 'LATENCY', 'JITTER', 'BANDWIDTH', 'LOSS', 'CUT', 'STALLED UNTIL', 'BYTES', 'QUEUED'],
      (['a-to-b', 'b-to-a'] as const).map((d) => [
        d === 'a-to-b' ? `${st.a} -> ${st.b}` : `${st.b} -> ${st.a}`,
        `${st.settings[d].latencyMs} ms`,
        `${st.settings[d].jitterMs} ms`,
        rate(st.settings[d].bandwidth),
        loss(st.settings[d]),
        st.cut[d] ? 'cut' : '-',
        st.stalledUntil[d] ?? '-',
        String(st.totals.bytes[d]),
        String(st.queued[d]),
      ]),
    )
      .split('\n')
      .map((x) => '  ' + x)
      .join('\n'),
  );
  for (const r of st.routes) lines.push(`  route ${r.name}: listen ${r.listen.host}:${r.listen.port} -> ${r.target.host}:${r.target.port} (${r.forward})`);
  lines.push(`  connections ${st.connections.length} open, ${st.totals.connections} total, ${st.totals.resets} reset; last event #${st.lastEventSeq}`);
  return lines.join('\n');
}

export interface LinkSetFlags extends LinkFlags {
  latency?: string;
  jitter?: string;
  bandwidth?: string;
  /** Loss-like stalls: percent of chunks delayed by one RTO. */
  loss?: string;
  /** The RTO a loss costs, ms. */
  rto?: string;
  direction?: string;
  stall?: string;
  reset?: boolean;
}

export async function linkSetCommand(name: string, f: LinkSetFlags): Promise<number> {
  const body: Record<string, unknown> = { direction: direction(f.direction) };
  const latencyMs = ms(f.latency, 'latency');
  const jitterMs = ms(f.jitter, 'jitter');
  const stallMs = ms(f.stall, 'stall');
  const lossPercent = percent(f.loss, 'loss');
  const rtoMs = ms(f.rto, 'rto');
  if (latencyMs !== undefined) body.latencyMs = latencyMs;
  if (jitterMs !== undefined) body.jitterMs = jitterMs;
  if (lossPercent !== undefined) body.lossPercent = lossPercent;
  if (rtoMs !== undefined) body.rtoMs = rtoMs;
  if (stallMs !== undefined) body.stallMs = stallMs;
  if (f.bandwidth !== undefined) {
    const n = parseRate(f.bandwidth);
    if (n === undefined) throw usage(`--bandwidth must be bytes per second like 10M, 512K/s or 1048576 (0 or unlimited: no cap), not ${JSON.stringify(f.bandwidth)}`);
    body.bandwidth = n;
  }
  if (f.reset) body.reset = true;
  if (Object.keys(body).length === 1) throw usage('nothing to set: give --latency, --jitter, --bandwidth, --loss, --rto, --stall or --reset');
  const [t] = await targets(name, f);
  const r = await call<{ events: { seq: number; type: string }[]; status: LinkStatus }>(t!, 'POST', '/v1/set', body);
  if (f.json) printJson(r);
  else process.stdout.write(`${r.events.map((e) => `#${e.seq} ${e.type}`).join(', ')}\n${describe(r.status)}\n`);
  return EXIT.OK;
}

export async function linkCutCommand(name: string, f: LinkFlags & { direction?: string; reset?: boolean }): Promise<number> {
  const body = { direction: direction(f.direction), ...(f.reset ? { reset: true } : {}) };
  const [t] = await targets(name, f);
  const r = await call<{ events: { seq: number; type: string }[]; status: LinkStatus }>(t!, 'POST', '/v1/cut', body);
  if (f.json) printJson(r);
  else process.stdout.write(`link ${r.status.link} cut (${body.direction})\n${describe(r.status)}\n`);
  return EXIT.OK;
}

export async function linkRestoreCommand(name: string, f: LinkFlags): Promise<number> {
  const [t] = await targets(name, f);
  const r = await call<{ events: { seq: number; type: string }[]; status: LinkStatus }>(t!, 'POST', '/v1/restore', {});
  if (f.json) printJson(r);
  else process.stdout.write(`link ${r.status.link} restored\n${describe(r.status)}\n`);
  return EXIT.OK;
}

export async function linkStatusCommand(name: string | undefined, f: LinkFlags & { events?: string }): Promise<number> {
  const n = f.events === undefined ? 20 : Number(f.events);
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw usage(`--events must be an integer 0-1000, not ${JSON.stringify(f.events)}`);
  const ts = await targets(name, f);
  const out: (LinkStatus & { events: unknown[] })[] = [];
  for (const t of ts) {
    const st = await call<LinkStatus>(t, 'GET', '/v1/status');
    const events = n === 0 ? [] : await readEvents(t, Math.max(0, st.lastEventSeq - n));
    out.push({ ...st, events });
  }
  if (f.json) printJson(name === undefined && !f.api ? { links: out } : out[0]);
  else if (out.length === 0) process.stdout.write('the lab has no links\n');
  else {
    for (const st of out) {
      process.stdout.write(describe(st) + '\n');
      for (const e of st.events as { seq: number; time: string; type: string }[]) {
        const { seq, time, type, link: _l, ...rest } = e as { seq: number; time: string; type: string; link: string };
        process.stdout.write(`  #${seq} ${time} ${type} ${JSON.stringify(rest)}\n`);
      }
    }
  }
  return EXIT.OK;
}

/** The kept events after `since` (the API's JSON form of /v1/events). */
async function readEvents(t: Target, since: number): Promise<unknown[]> {
  return (await call<{ events: unknown[] }>(t, 'GET', `/v1/events?since=${since}`)).events;
}
