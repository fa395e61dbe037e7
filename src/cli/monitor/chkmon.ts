/**
 * chkmon ([0040]-[0043]): everything but adding. One operation per call:
 *
 *     chkmon [-n APP -g GROUP] -show       SHOW one / SHOWALL
 *     chkmon [-n APP -g GROUP] -t SECONDS  CHANGE one / CHANGEALL
 *     chkmon [-n APP -g GROUP] -remove [-force]   REMOVE one / REMOVEALL (also stops the daemon)
 *     chkmon -n APP -g GROUP -a yes|no     START / STOP autorecover
 *     chkmon -pid                          GETPID
 *
 * -remove without -force asks on a terminal and refuses otherwise. sanbox adds --state DIR,
 * --host HOST:PORT --token T (a monitor on another host) and --json. Return codes, the
 * source's Table 1.0, and only the codes that table allows for each operation (OPERATION_CODES).
 */
import { createInterface } from 'node:readline/promises';
import { RC, request, type MsgType, type Reply, type Request, type ReturnCode } from '../../monitor/index.js';
import { addressOf, type PlaceFlags } from './place.js';
import { parseDashOptions, type DashSpec } from './dash-options.js';
import { resourceDetail, resourceTable } from './render.js';
import { handleOutputErrors } from '../pipe.js';

const SPEC: DashSpec = { values: ['n', 'g', 't', 'a', '-state', '-host', '-token', '-token-file'], flags: ['show', 'remove', 'force', 'pid', '-json', 'h', '-help'] };

/** Table 1.0: the return codes each operation may give (GETPID is not in the table: 0, 3, 10). */
export const OPERATION_CODES: Readonly<Record<string, readonly ReturnCode[]>> = {
  SHOW: [0, 1, 2, 3, 10, 100],
  SHOWALL: [0, 3, 10],
  REMOVE: [0, 2, 3, 10],
  REMOVEALL: [0, 3, 10],
  CHANGE: [0, 2, 3, 10],
  CHANGEALL: [0, 3, 10],
  START: [0, 2, 3, 10],
  STOP: [0, 2, 3, 10],
  GETPID: [0, 3, 10],
};

const USAGE = `usage: chkmon [-n APP -g GROUP] -show | -t SECONDS | -remove [-force]
       chkmon -n APP -g GROUP -a yes|no
       chkmon -pid
  [--state DIR] [--host HOST:PORT --token-file FILE|--token T] [--json]
return codes: 0 successful or in PAIR state, 1 not in PAIR state, 2 not in the monitored list,
  3 prmd not running, 10 internal error, 100 the mirroring software reported an error`;

export async function chkmonMain(argv: string[]): Promise<number> {
  handleOutputErrors('chkmon', RC.INTERNAL);
  let o: Record<string, string | true>;
  let req: Request;
  try {
    o = parseDashOptions(argv, SPEC);
    if (o.h || o['-help']) {
      process.stdout.write(USAGE + '\n');
      return RC.OK;
    }
    req = requestOf(o);
  } catch (e) {
    process.stderr.write(`chkmon: ${(e as Error).message}\n${USAGE}\n`);
    return RC.INTERNAL;
  }
  const json = o['-json'] === true;
  const place: PlaceFlags = { state: o['-state'] as string | undefined, host: o['-host'] as string | undefined, token: o['-token'] as string | undefined, tokenFile: o['-token-file'] as string | undefined };
  try {
    if ((req.msgType === 'REMOVE' || req.msgType === 'REMOVEALL') && !o.force && !(await confirm(req))) {
      return finish(req, { ok: false, code: RC.INTERNAL, message: 'not removed: -remove needs -force when not confirmed on a terminal' }, json);
    }
    return finish(req, await request(await addressOf(place), req), json);
  } catch (e) {
    return finish(req, { ok: false, code: RC.INTERNAL, message: (e as Error).message }, json);
  }
}

function requestOf(o: Record<string, string | true>): Request {
  const ops = ['show', 't', 'a', 'remove', 'pid'].filter((k) => o[k] !== undefined);
  if (ops.length !== 1) throw new Error(ops.length ? `-${ops.join(', -')} are mutually exclusive: one operation per call` : 'give one operation: -show, -t, -a, -remove or -pid');
  const op = ops[0]!;
  if ((o.n === undefined) !== (o.g === undefined)) throw new Error('-n and -g go together');
  const one = o.n !== undefined;
  if (o.force && op !== 'remove') throw new Error('-force goes with -remove');
  const names = one ? { appName: o.n as string, deviceGroup: o.g as string } : {};
  const type = (single: MsgType, all: MsgType): MsgType => (one ? single : all);
  switch (op) {
    case 'show':
      return { msgType: type('SHOW', 'SHOWALL'), ...names };
    case 'remove':
      return { msgType: type('REMOVE', 'REMOVEALL'), ...names };
    case 't': {
      if (!/^\d{1,6}$/.test(o.t as string)) throw new Error(`-t must be the monitor interval in whole seconds, not ${JSON.stringify(o.t)}`);
      return { msgType: type('CHANGE', 'CHANGEALL'), ...names, interval: Number(o.t) };
    }
    case 'a':
      if (!one) throw new Error('-a needs -n APP -g GROUP');
      if (o.a !== 'yes' && o.a !== 'no') throw new Error(`-a must be yes or no, not ${JSON.stringify(o.a)}`);
      return { msgType: o.a === 'yes' ? 'START' : 'STOP', ...names };
    default:
      if (one) throw new Error('-pid takes no -n/-g');
      return { msgType: 'GETPID' };
  }
}

async function confirm(req: Request): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) return false;
  const what = req.msgType === 'REMOVE' ? `${req.appName}/${req.deviceGroup}` : 'every resource and stop the daemon';
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(`remove ${what}? [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

/** Prints the reply and returns its code, asserting that Table 1.0 allows it for the operation. */
function finish(req: Request, r: Reply, json: boolean): number {
  const allowed = OPERATION_CODES[req.msgType]!;
  if (!allowed.includes(r.code)) {
    r = { ok: false, code: RC.INTERNAL, message: `internal error: the daemon answered ${req.msgType} with code ${r.code} (${r.message ?? ''})` };
  }
  if (json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  else print(req, r);
  return r.code;
}

function print(req: Request, r: Reply): void {
  if (r.code === RC.NOT_RUNNING || r.code === RC.INTERNAL || r.code === RC.NOT_FOUND) {
    process.stderr.write(`chkmon: ${r.message ?? `code ${r.code}`}\n`);
    return;
  }
  if (req.msgType === 'GETPID') process.stdout.write(`${r.pid}\n`);
  else if (req.msgType === 'SHOW' && r.resource) process.stdout.write(resourceDetail(r.resource) + '\n');
  else if (r.resources) process.stdout.write(resourceTable(r.resources) + '\n');
  else if (r.resource) process.stdout.write(resourceTable([r.resource]) + '\n');
  if (r.code === RC.MIRROR_ERROR) process.stderr.write(`chkmon: the array reported an error: ${r.resource?.lastError}\n`);
}
