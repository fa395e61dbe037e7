/**
 * `sanbox lun fence` and `sanbox mirror heartbeat`: the two array-side switches of the heartbeat
 * service (issue 15): a fenced LUN refuses host writes; an installed heartbeat mirror refuses the
 * verbs that would stop its heartbeats (fracture, remove-secondary, deactivate, destroy, promote,
 * group membership). Thin clients of POST /v1/luns/REF/fence and POST /v1/mirrors/REF/heartbeat.
 */
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import type { LunView } from '../control/index.js';
import type { MirrorView } from '../replication/mirror/types.js';
import { targetOptions, type Run } from './command-kit.js';
import { EXIT, nameArg, printJson, usage } from './common.js';
import { call, done, locate, lunNames } from './mirror-verbs.js';
import { resolveTarget, type TargetFlags } from './target.js';

/** Who the array records as having fenced or installed, when --by is not given. */
function defaultBy(): string {
  let user = 'user';
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry: keep "user" */
  }
  return `sanbox-cli:${user}@${hostname()}`;
}

function byArg(by: string | undefined): string {
  if (by === undefined) return defaultBy();
  if (by === '' || by.length > 256) throw usage('--by must be 1 to 256 characters (an agent or operator id)');
  return by;
}

export interface LunFenceFlags extends TargetFlags {
  off?: boolean;
  reason?: string;
  by?: string;
}

export async function lunFenceCommand(ref: string, f: LunFenceFlags): Promise<number> {
  nameArg(ref, 'LUN');
  if (f.off && f.reason !== undefined) throw usage('--reason goes with fencing, not with --off');
  if (f.reason !== undefined && (f.reason === '' || f.reason.length > 256)) throw usage('--reason must be 1 to 256 characters');
  const by = byArg(f.by);
  const body = f.off ? { fenced: false, by } : { fenced: true, reason: f.reason ?? 'fenced by the operator (sanbox lun fence)', by };
  const r = await call(async () => (await resolveTarget(f)).request<{ lun: LunView }>('POST', `/v1/luns/${encodeURIComponent(ref)}/fence`, body));
  if (f.json) printJson(r);
  else process.stdout.write(`${fenceText(r.lun)}\n`);
  return EXIT.OK;
}

/** One line on a LUN's fence, for `lun fence`, `lun list` and `status`. */
export function fenceText(l: Pick<LunView, 'id' | 'name' | 'fenced'>): string {
  const x = l.fenced;
  if (!x) return `LUN ${l.id} ${l.name} is not fenced: host writes accepted`;
  return `LUN ${l.id} ${l.name} is FENCED since ${new Date(x.sinceMs).toISOString()} by ${x.by}: host writes refused (EPERM), reads served; reason: ${x.reason}`;
}

export interface MirrorHeartbeatFlags extends TargetFlags {
  install?: boolean;
  uninstall?: boolean;
  by?: string;
}

export async function mirrorHeartbeatCommand(ref: string, f: MirrorHeartbeatFlags): Promise<number> {
  if (f.install === f.uninstall) throw usage('give --install or --uninstall');
  const by = byArg(f.by);
  const t = await locate(ref, f, { role: 'primary' });
  const v = await call(() => t.client.request<MirrorView>('POST', `/v1/mirrors/${encodeURIComponent(ref)}/heartbeat`, { installed: f.install === true, by }));
  const h = v.record.heartbeat;
  const text = h
    ? `mirror ${v.record.name} is a heartbeat mirror, installed by ${h.by}: fracture, remove-secondary, deactivate, destroy, promote and group membership are refused until "sanbox mirror heartbeat ${v.record.name} --uninstall"`
    : `mirror ${v.record.name} is not a heartbeat mirror (uninstalled): every verb is allowed again`;
  return done(f, v, text, await lunNames(f, [v]));
}

/** Adds `lun fence` and `mirror heartbeat` to the `lun` and `mirror` commands. */
export function addFenceCommands(program: Command, run: Run): void {
  const find = (name: string): Command => {
    const c = program.commands.find((x) => x.name() === name);
    if (!c) throw new Error(`no ${name} command to add to`);
    return c;
  };
  targetOptions(
    find('lun')
      .command('fence')
      .description('fence a LUN: host writes, trims and zeroes refused with EPERM (reads served), on either SP, until --off; persisted')
      .argument('<lun>', 'LUN id or name')
      .option('--off', 'lift the fence: host writes accepted again')
      .option('--reason <text>', 'why (shown in lun list, status and the lun.fenced event)')
      .option('--by <id>', 'who fences (an agent or operator id; default sanbox-cli:USER@HOST)'),
  ).action(run((ref: string, opts: LunFenceFlags) => lunFenceCommand(ref, opts)));
  targetOptions(
    find('mirror')
      .command('heartbeat')
      .description('install or uninstall a heartbeat mirror (on its primary): while installed, fracture, remove-secondary, deactivate, destroy, promote and group membership are refused')
      .argument('<mirror>', 'mirror name or id')
      .option('--install', 'install: a synchronous mirror with a secondary, in no consistency group')
      .option('--uninstall', 'uninstall: every verb allowed again')
      .option('--by <id>', 'the heartbeat agent (default sanbox-cli:USER@HOST)'),
  ).action(run((ref: string, opts: MirrorHeartbeatFlags) => mirrorHeartbeatCommand(ref, opts)));
}
