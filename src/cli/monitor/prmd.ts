/**
 * prmd ([0039]): adds resources to the monitor's database, starting the daemon first when none
 * runs. Options exactly as the source's, one operation per call:
 *
 *     prmd -n APP -g GROUP -i INSTANCE -t SECONDS -r yes|no
 *     prmd -u FILE        add the resources listed in FILE
 *     prmd -d FILE        save the current database to FILE
 *
 * sanbox adds --state DIR (the daemon's state directory), --host HOST:PORT and --token (a daemon
 * on another host; never started from here) and --json. Return codes, the source's: 0 the
 * resource was added (or the file loaded or saved), 10 internal error (anything else, usage
 * included: check with chkmon).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { RC, decodeResourceFile, encodeResourceFile, request, specOf, type Reply, type Request } from '../../monitor/index.js';
import { addressOf, ensureLocalDaemon, type PlaceFlags } from './place.js';
import { parseDashOptions, type DashSpec } from './dash-options.js';
import { handleOutputErrors } from '../pipe.js';

const SPEC: DashSpec = { values: ['n', 'g', 'i', 't', 'r', 'u', 'd', '-state', '-host', '-token', '-token-file'], flags: ['-json', 'h', '-help'] };

const USAGE = `usage: prmd -n APP -g GROUP -i INSTANCE -t SECONDS -r yes|no
       prmd -u FILE
       prmd -d FILE
  [--state DIR] [--host HOST:PORT --token-file FILE|--token T] [--json]
return codes: 0 successful (resource added), 10 internal error (check with chkmon)`;

export async function prmdMain(argv: string[]): Promise<number> {
  handleOutputErrors('prmd', RC.INTERNAL);
  let o: Record<string, string | true>;
  try {
    o = parseDashOptions(argv, SPEC);
  } catch (e) {
    return fail(`prmd: ${(e as Error).message}\n${USAGE}`, false);
  }
  if (o.h || o['-help']) {
    process.stdout.write(USAGE + '\n');
    return RC.OK;
  }
  const json = o['-json'] === true;
  const place: PlaceFlags = { state: o['-state'] as string | undefined, host: o['-host'] as string | undefined, token: o['-token'] as string | undefined, tokenFile: o['-token-file'] as string | undefined };
  try {
    const req = await requestOf(o);
    const started = place.host === undefined ? await ensureLocalDaemon(place) : undefined;
    if (started && started.code !== RC.OK) return fail(`prmd: cannot start the monitor daemon: ${started.message}`, json, started);
    const r = await request(await addressOf(place), req.req);
    if (r.code !== RC.OK) return fail(`prmd: ${r.message ?? 'failed'}`, json, r);
    if (req.saveTo) await saveFile(req.saveTo, r);
    return done(req, r, json);
  } catch (e) {
    return fail(`prmd: ${(e as Error).message}`, json);
  }
}

async function requestOf(o: Record<string, string | true>): Promise<{ req: Request; saveTo?: string; what: string }> {
  const add = ['n', 'g', 'i', 't', 'r'].filter((k) => o[k] !== undefined);
  const ops = (add.length ? 1 : 0) + (o.u !== undefined ? 1 : 0) + (o.d !== undefined ? 1 : 0);
  if (ops !== 1) throw new Error(`give exactly one of: -n -g -i -t -r (add), -u FILE, -d FILE\n${USAGE}`);
  if (o.u !== undefined) {
    const file = o.u as string;
    return { req: { msgType: 'LOAD', resources: decodeResourceFile(await readFile(file, 'utf8'), file) }, what: `loaded ${file}` };
  }
  if (o.d !== undefined) return { req: { msgType: 'SAVE' }, saveTo: o.d as string, what: `saved to ${o.d}` };
  const lacking = ['n', 'g', 'i', 't', 'r'].filter((k) => o[k] === undefined);
  if (lacking.length) throw new Error(`adding a resource needs ${lacking.map((k) => '-' + k).join(' ')}\n${USAGE}`);
  const t = o.t as string;
  if (!/^\d{1,6}$/.test(t)) throw new Error(`-t must be the monitor interval in whole seconds, not ${JSON.stringify(t)}`);
  if (o.r !== 'yes' && o.r !== 'no') throw new Error(`-r must be yes or no, not ${JSON.stringify(o.r)}`);
  return { req: { msgType: 'ADD', appName: o.n as string, deviceGroup: o.g as string, instance: o.i as string, interval: Number(t), resync: o.r }, what: 'added' };
}

async function saveFile(path: string, r: Reply): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, encodeResourceFile((r.resources ?? []).map(specOf)), { mode: 0o600 });
  await rename(tmp, path);
}

function done(req: { req: Request; what: string }, r: Reply, json: boolean): number {
  if (json) process.stdout.write(JSON.stringify({ ...r, code: RC.OK }, null, 2) + '\n');
  else if (req.req.msgType === 'ADD') process.stdout.write(`${req.req.appName}/${req.req.deviceGroup} added to the monitored list (interval ${req.req.interval} s, autorecover ${req.req.resync})\n`);
  else process.stdout.write(`${r.message ?? req.what}${req.req.msgType === 'SAVE' ? `: ${r.resources?.length ?? 0} resources, ${req.what}` : ''}\n`);
  return RC.OK;
}

/** Every failure of prmd is its return code 10. */
function fail(message: string, json: boolean, r?: Reply): number {
  if (json) process.stdout.write(JSON.stringify({ code: RC.INTERNAL, message, ...(r ? { daemonCode: r.code } : {}) }, null, 2) + '\n');
  process.stderr.write(message + '\n');
  return RC.INTERNAL;
}
