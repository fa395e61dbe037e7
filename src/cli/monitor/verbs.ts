/**
 * `sanbox monitor add|list|show|set|remove|pid|save|load|wait|events|stop`: the same operations
 * as prmd and chkmon with sanbox's conventions (--json everywhere, exit codes of docs/cli.md:
 * 0 ok, 1 refused (not in the list, bad value), 2 usage, 3 the daemon is not running, and for
 * `wait` 4 when the timeout passed first).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { RC, decodeResourceFile, encodeResourceFile, followEvents, formatEvent, request, specOf, type Reply, type Request } from '../../monitor/index.js';
import { CliError, EXIT, printJson, usage } from '../common.js';
import { addressOf, ensureLocalDaemon, type PlaceFlags } from './place.js';
import { resourceDetail, resourceTable } from './render.js';

export const EXIT_WAIT_TIMEOUT = 4;

export interface VerbFlags extends PlaceFlags {
  json?: boolean;
}

/** Sends a request; a reply other than OK becomes a CliError (NOT_RUNNING: exit 3). */
async function call(f: VerbFlags, req: Request, okCodes: number[] = [RC.OK], timeoutMs?: number): Promise<Reply> {
  let addr;
  try {
    addr = await addressOf(f);
  } catch (e) {
    throw usage((e as Error).message);
  }
  const r = await request(addr, req, timeoutMs);
  if (okCodes.includes(r.code)) return r;
  if (r.code === RC.NOT_RUNNING) throw new CliError(EXIT.UNREACHABLE, 'not-running', r.message ?? 'the monitor daemon is not running');
  throw new CliError(EXIT.ERROR, r.code === RC.NOT_FOUND ? 'not-found' : 'refused', r.message ?? `code ${r.code}`);
}

function out(f: VerbFlags, r: Reply, text: string): number {
  if (f.json) printJson(r);
  else process.stdout.write(text + '\n');
  return EXIT.OK;
}

const yesNo = (v: string | undefined, what: string): 'yes' | 'no' | undefined => {
  if (v === undefined) return undefined;
  if (v !== 'yes' && v !== 'no') throw usage(`${what} must be yes or no, not ${JSON.stringify(v)}`);
  return v;
};
const seconds = (v: string | undefined, what: string): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d{1,6}$/.test(v)) throw usage(`${what} must be whole seconds, not ${JSON.stringify(v)}`);
  return Number(v);
};

export interface AddFlags extends VerbFlags {
  interval?: string;
  autorecover?: string;
  adminFractures?: string;
}

export async function monitorAddCommand(app: string, group: string, instance: string, f: AddFlags): Promise<number> {
  const req: Request = { msgType: 'ADD', appName: app, deviceGroup: group, instance, interval: seconds(f.interval, '--interval') ?? 30, resync: yesNo(f.autorecover, '--autorecover') ?? 'yes' };
  const admin = yesNo(f.adminFractures, '--admin-fractures');
  if (admin) req.resyncAdminFractures = admin;
  if (f.host === undefined) await ensureLocalDaemon(f);
  const r = await call(f, req);
  return out(f, r, resourceTable([r.resource!]));
}

export async function monitorListCommand(f: VerbFlags): Promise<number> {
  const r = await call(f, { msgType: 'SHOWALL' });
  return out(f, r, resourceTable(r.resources ?? []));
}

export async function monitorShowCommand(app: string, group: string, f: VerbFlags): Promise<number> {
  const r = await call(f, { msgType: 'SHOW', appName: app, deviceGroup: group }, [RC.OK, RC.NOT_PAIR, RC.MIRROR_ERROR]);
  return out(f, r, resourceDetail(r.resource!));
}

export async function monitorSetCommand(app: string, group: string, f: AddFlags & { instance?: string }): Promise<number> {
  const req: Request = { msgType: 'SET', appName: app, deviceGroup: group };
  if (f.instance !== undefined) req.instance = f.instance;
  const interval = seconds(f.interval, '--interval');
  if (interval !== undefined) req.interval = interval;
  const auto = yesNo(f.autorecover, '--autorecover');
  if (auto) req.resync = auto;
  const admin = yesNo(f.adminFractures, '--admin-fractures');
  if (admin) req.resyncAdminFractures = admin;
  if (Object.keys(req).length === 3) throw usage('give at least one of --instance, --interval, --autorecover, --admin-fractures');
  const r = await call(f, req);
  return out(f, r, resourceTable([r.resource!]));
}

export async function monitorRemoveCommand(app: string | undefined, group: string | undefined, f: VerbFlags & { all?: boolean }): Promise<number> {
  if (f.all ? app !== undefined : group === undefined) throw usage('give APP GROUP, or --all (removes every resource and stops the daemon)');
  const r = await call(f, f.all ? { msgType: 'REMOVEALL' } : { msgType: 'REMOVE', appName: app, deviceGroup: group });
  return out(f, r, f.all ? `removed ${r.resources?.length ?? 0} resources; the daemon stops` : `removed ${app}/${group}`);
}

export async function monitorPidCommand(f: VerbFlags): Promise<number> {
  const r = await call(f, { msgType: 'GETPID' });
  return out(f, r, String(r.pid));
}

export async function monitorStopCommand(f: VerbFlags): Promise<number> {
  const r = await call(f, { msgType: 'SHUTDOWN' });
  return out(f, r, `monitor daemon ${r.pid} stops (the database stays)`);
}

export async function monitorSaveCommand(file: string, f: VerbFlags): Promise<number> {
  const r = await call(f, { msgType: 'SAVE' });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, encodeResourceFile((r.resources ?? []).map(specOf)), { mode: 0o600 });
  await rename(tmp, file);
  return out(f, { ok: true, code: RC.OK, message: `saved ${r.resources?.length ?? 0} resources to ${file}` }, `saved ${r.resources?.length ?? 0} resources to ${file}`);
}

export async function monitorLoadCommand(file: string, f: VerbFlags): Promise<number> {
  let resources;
  try {
    resources = decodeResourceFile(await readFile(file, 'utf8'), file);
  } catch (e) {
    throw usage((e as Error).message);
  }
  if (f.host === undefined) await ensureLocalDaemon(f);
  const r = await call(f, { msgType: 'LOAD', resources });
  return out(f, r, r.message ?? 'loaded');
}

export async function monitorWaitCommand(app: string, group: string, f: VerbFlags & { state?: string; timeout?: string; for?: string }): Promise<number> {
  const states = (f.for ?? 'connected').split(',').map((s) => s.trim());
  const timeout = seconds(f.timeout, '--timeout') ?? 60;
  const r = await call(f, { msgType: 'WAIT', appName: app, deviceGroup: group, states: states as Request['states'], timeout }, [RC.OK, RC.NOT_PAIR], timeout * 1000 + 30_000);
  out(f, r, r.timedOut ? `timed out: ${r.message}` : `${app}/${group} is ${r.resource!.pair} (${r.resource!.sourceState})`);
  return r.timedOut ? EXIT_WAIT_TIMEOUT : EXIT.OK;
}

export async function monitorEventsCommand(f: VerbFlags & { since?: string; follow?: boolean }): Promise<number> {
  const since = f.since === undefined ? 0 : Number(seconds(f.since, '--since'));
  const ctl = new AbortController();
  let n = 0;
  const stop = () => ctl.abort();
  process.once('SIGINT', stop);
  try {
    await followEvents(
      await addressOf(f),
      since,
      (e) => {
        n++;
        process.stdout.write((f.json ? JSON.stringify(e) : formatEvent(e)) + '\n');
      },
      ctl.signal,
      !f.follow,
    );
  } catch (e) {
    throw new CliError(EXIT.UNREACHABLE, 'not-running', `the monitor daemon is not running: ${(e as Error).message}`);
  } finally {
    process.off('SIGINT', stop);
  }
  if (!f.follow && !f.json && n === 0) process.stdout.write('no events kept\n');
  return EXIT.OK;
}
