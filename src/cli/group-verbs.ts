/**
 * `sanbox group ...`: thin clients of the arrays' consistency-group routes (/v1/groups).
 *
 * Which array a verb talks to: --api URL / $SANBOX_API, or --array NAME of the lab; otherwise the
 * verb looks the group up on every array of the lab and takes the one that holds the right side:
 * the primary for most verbs, a secondary for `promote`, and for `create` the array holding the
 * primary image of the first member mirror. `status` and `list` without a group show every group
 * of the lab once (as its primary sees it, with the secondaries' receivers).
 *
 * Every argument is checked before anything is sent: a bad size, count, duration, mode or
 * throttle file is a usage error (exit 2). Refresh and backfresh, which wait and show progress,
 * are in group-copy.ts.
 */
import { isPlainName } from '../array/index.js';
import { ApiClient, ClientError, type CreateGroupRequest, type GroupSettableRequest, type GroupView } from '../control/index.js';
import { clientError, labArrayClients, resolveTarget, type TargetFlags } from './target.js';
import { CliError, EXIT, nameArg, printJson, usage, watchStatus } from './common.js';
import { boundsArg, countArg, durationArg, freezeArg, modeArg, onOff, readThrottleFile, sizeArg, type BoundFlags } from './group-args.js';
import { groupText, listRows, type GroupStatus } from './group-render.js';

// ---- argument parsing: group-args.ts (re-exported for existing importers) ----

export { boundsArg, countArg, durationArg, modeArg, readThrottleFile, sizeArg, type BoundFlags } from './group-args.js';

// ---- finding the array ----

interface Located<V> {
  client: ApiClient;
  array?: string;
  view?: V;
}

const noDriver = (e: unknown) => e instanceof ClientError && e.code === 'no-mirror-driver';

/**
 * The array holding `what` in the role wanted, among the lab's arrays (or the target given by
 * --api / --array). `fetch` looks it up on one array; `roleOf` says which side that array holds.
 */
async function locate<V>(
  what: string,
  f: TargetFlags,
  fetch: (c: ApiClient) => Promise<V>,
  roleOf: (v: V) => 'primary' | 'secondary',
  want: 'primary' | 'secondary',
): Promise<Located<V>> {
  try {
    const lab = await labArrayClients(f);
    if (!lab) return { client: await resolveTarget(f), ...(f.array ? { array: f.array } : {}) };
    const found = await Promise.all(
      lab.arrays.map(async (a) => {
        try {
          return { ...a, view: await fetch(a.client) };
        } catch (e) {
          return { ...a, error: e };
        }
      }),
    );
    const holders = found.filter((x): x is typeof x & { view: V } => 'view' in x && x.view !== undefined);
    const match = holders.filter((x) => roleOf(x.view) === want);
    if (match.length === 1) return { client: match[0]!.client, array: match[0]!.name, view: match[0]!.view };
    if (match.length > 1) throw usage(`${what} has ${want} sides on ${match.map((x) => x.name).join(', ')}: say which array with --array NAME`);
    const unreachable = found.filter((x) => 'error' in x && x.error instanceof ClientError && x.error.unreachable);
    if (holders.length) {
      const others = holders.map((x) => `${x.name}: ${roleOf(x.view)}`).join(', ');
      if (want === 'primary') {
        const down = unreachable.map((x) => x.name);
        if (down.length) throw new CliError(EXIT.UNREACHABLE, 'unreachable', `${what}: no reachable array of lab ${lab.lab.lab} holds its primary side (${others}; unreachable: ${down.join(', ')})`);
        throw new CliError(EXIT.ERROR, 'not-primary', `${what}: no array of lab ${lab.lab.lab} holds its primary side (${others}); give --array NAME`);
      }
      throw new CliError(EXIT.ERROR, 'not-secondary', `${what}: no array of lab ${lab.lab.lab} holds a secondary side (${others}); promote runs on a secondary array (--array NAME)`);
    }
    if (unreachable.length === lab.arrays.length) throw clientError((unreachable[0] as { error: unknown }).error);
    const drivers = found.filter((x) => !('error' in x && noDriver(x.error)));
    if (drivers.length === 0) throw new CliError(EXIT.ERROR, 'no-mirror-driver', `no array of lab ${lab.lab.lab} runs a mirror driver (no remoteLink: in the lab file)`);
    const other = found.find((x) => 'error' in x && !(x.error instanceof ClientError && (x.error.code === 'not-found' || x.error.code === 'no-mirror-driver' || x.error.unreachable)));
    if (other) throw clientError((other as { error: unknown }).error);
    throw new CliError(
      EXIT.ERROR,
      'not-found',
      `no ${what} on the arrays of lab ${lab.lab.lab} (${lab.arrays.map((a) => a.name).join(', ')})${unreachable.length ? `; unreachable: ${unreachable.map((x) => x.name).join(', ')}` : ''}`,
    );
  } catch (e) {
    throw clientError(e);
  }
}

export const locateGroup = (ref: string, f: TargetFlags, want: 'primary' | 'secondary' = 'primary') =>
  locate(`group ${JSON.stringify(nameArg(ref, 'group'))}`, f, (c) => c.getGroup(ref), (v) => v.role, want);

export async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw clientError(e);
  }
}

export type { GroupStatus } from './group-render.js';

/** Every group the target (or the lab's arrays) knows, once each: the primary's view, with the receivers. */
async function collect(ref: string | undefined, f: TargetFlags): Promise<GroupStatus[]> {
  const lab = await call(() => labArrayClients(f));
  if (!lab) {
    const c = await call(() => resolveTarget(f));
    const views = ref !== undefined ? [await call(() => c.getGroup(ref))] : (await call(() => c.listGroups())).groups;
    return views.map((v) => ({ ...v, ...(f.array ? { array: f.array } : {}), receivers: v.receiver ? [{ array: f.array ?? 'this array', ...v.receiver }] : [] }));
  }
  const all: Array<{ array: string; view: GroupView }> = [];
  let reached = 0;
  let drivers = 0;
  let firstError: unknown;
  for (const a of lab.arrays) {
    try {
      const views = (await a.client.listGroups()).groups;
      reached++;
      drivers++;
      for (const view of views) all.push({ array: a.name, view });
    } catch (e) {
      if (noDriver(e)) {
        reached++;
        continue;
      }
      firstError ??= e;
    }
  }
  if (reached === 0 && firstError) throw clientError(firstError);
  if (reached > 0 && drivers === 0) throw new CliError(EXIT.ERROR, 'no-mirror-driver', `no array of lab ${lab.lab.lab} runs a mirror driver (no remoteLink: in the lab file)`);
  const byId = new Map<string, Array<{ array: string; view: GroupView }>>();
  for (const x of all) {
    if (ref !== undefined && x.view.record.name !== ref && x.view.record.groupId !== ref) continue;
    const list = byId.get(x.view.record.groupId) ?? [];
    list.push(x);
    byId.set(x.view.record.groupId, list);
  }
  if (ref !== undefined && byId.size === 0) {
    if (firstError) throw clientError(firstError);
    throw new CliError(EXIT.ERROR, 'not-found', `no group ${JSON.stringify(ref)} on the arrays of lab ${lab.lab.lab} (${lab.arrays.map((a) => a.name).join(', ')})`);
  }
  const out: GroupStatus[] = [];
  for (const list of byId.values()) {
    const main = list.find((x) => x.view.role === 'primary') ?? list[0]!;
    out.push({
      ...main.view,
      array: main.array,
      receivers: list.filter((x) => x.view.receiver).map((x) => ({ array: x.array, ...x.view.receiver! })),
    });
  }
  return out.sort((x, y) => x.record.name.localeCompare(y.record.name));
}

// ---- rendering: group-render.ts (re-exported for existing importers) ----

export { groupText, promotionText } from './group-render.js';

export function done(f: TargetFlags, v: GroupView, text: string, array?: string): number {
  if (f.json) printJson(v);
  else process.stdout.write(`${text}\n${groupText({ ...v, ...(array ? { array } : {}) })}\n`);
  return EXIT.OK;
}

// ---- the verbs ----

export interface GroupCreateFlags extends TargetFlags, BoundFlags {
  members?: string;
  mode?: string;
  writelog?: string;
  extensions?: string;
  extensionSize?: string;
  extendAt?: string;
  throttleEvery?: string;
  perfEvery?: string;
  perfMax?: string;
  throttles?: string;
  protectResync?: string;
  freeze?: string;
}

export async function groupCreateCommand(name: string, f: GroupCreateFlags): Promise<number> {
  if (!isPlainName(name)) throw usage(`group name ${JSON.stringify(name)} is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)`);
  if (f.members === undefined) throw usage('create needs --members m1,m2 (the member mirrors, primary on one array, replicating to the same arrays)');
  const members = f.members.split(',').map((m) => m.trim());
  if (members.some((m) => !isPlainName(m))) throw usage(`--members must be mirror names separated by commas, not ${JSON.stringify(f.members)}`);
  const dup = members.find((m, i) => members.indexOf(m) !== i);
  if (dup) throw usage(`--members lists mirror ${dup} twice`);
  const attributes: NonNullable<CreateGroupRequest['attributes']> = {};
  if (f.mode !== undefined) attributes.mode = modeArg(f.mode, '--mode');
  const nearSync = boundsArg(f);
  if (nearSync) attributes.nearSync = nearSync;
  const writelog: NonNullable<NonNullable<CreateGroupRequest['attributes']>['writelog']> = {};
  if (f.writelog !== undefined) writelog.capacity = sizeArg(f.writelog, '--writelog', 64 * 1024, 8);
  if (f.extensions !== undefined) writelog.extensions = countArg(f.extensions, '--extensions', 0, 128);
  if (f.extensionSize !== undefined) writelog.extensionCapacity = sizeArg(f.extensionSize, '--extension-size', 64 * 1024, 8);
  if (f.extendAt !== undefined) writelog.extendAtPercent = countArg(f.extendAt.replace(/%$/, ''), '--extend-at', 1, 100);
  if (Object.keys(writelog).length) attributes.writelog = writelog;
  if (f.throttleEvery !== undefined) attributes.throttleEveryMs = durationArg(f.throttleEvery, '--throttle-every');
  if (f.perfEvery !== undefined) attributes.perfEveryMs = durationArg(f.perfEvery, '--perf-every');
  if (f.perfMax !== undefined) attributes.perfMaxBytes = sizeArg(f.perfMax, '--perf-max', 4096);
  if (f.throttles !== undefined) attributes.throttles = readThrottleFile(f.throttles);
  if (f.protectResync !== undefined) (attributes as { protectResync?: boolean }).protectResync = onOff(f.protectResync, '--protect-resync');
  if (f.freeze !== undefined) attributes.freeze = freezeArg(f.freeze);
  const body: CreateGroupRequest = { name, members, ...(Object.keys(attributes).length ? { attributes } : {}) };
  // On the array that holds the first member's primary image.
  const t = await locate(`mirror ${JSON.stringify(members[0])}`, f, (c) => c.getMirror(members[0]!), (v) => v.local.role, 'primary');
  const v = await call(() => t.client.createGroup(body));
  const note = v.record.bypass.on ? ' (in bypass until every member\'s secondaries are in sync; then it journals)' : '';
  return done(f, v, `created group ${v.record.name} (id ${v.record.groupId})${t.array ? ` on ${t.array}` : ''}: ${members.join(', ')}, ${v.record.mode}${note}`, t.array);
}

export interface GroupStatusFlags extends TargetFlags {
  watch?: boolean;
  count?: string;
  interval?: string;
}

export async function groupListCommand(f: TargetFlags): Promise<number> {
  const vs = await collect(undefined, f);
  if (f.json) printJson({ groups: vs });
  else process.stdout.write((vs.length ? listRows(vs) : 'no consistency groups (sanbox group create NAME --members m1,m2, or groups: in the lab file)') + '\n');
  return EXIT.OK;
}

export async function groupStatusCommand(ref: string | undefined, f: GroupStatusFlags): Promise<number> {
  return watchStatus(f, () => collect(ref, f), {
    json: (vs) => (ref !== undefined ? { once: vs[0], line: { group: vs[0] } } : { once: { groups: vs }, line: { groups: vs } }),
    text: (vs) => (vs.length ? vs.map((v) => groupText(v)).join('\n\n') : 'no consistency groups (sanbox group create NAME --members m1,m2, or groups: in the lab file)'),
  });
}

/** qdsinfo: the primary's report of the group (state, writelog, backlog, rates, sender). */
export async function groupInfoCommand(ref: string, f: TargetFlags): Promise<number> {
  const t = await locateGroup(ref, f);
  const r = await call(() => t.client.groupInfo(ref));
  if (f.json) printJson(r);
  else process.stdout.write(r.text.endsWith('\n') ? r.text : r.text + '\n');
  return EXIT.OK;
}

export async function groupModeCommand(ref: string, mode: string, f: TargetFlags & BoundFlags): Promise<number> {
  const m = modeArg(mode);
  const nearSync = boundsArg(f);
  const t = await locateGroup(ref, f);
  const from = (t.view as GroupView | undefined)?.record.mode;
  const v = await call(() => t.client.setGroupMode(ref, m, nearSync));
  return done(f, v, `group ${v.record.name}: mode ${from && from !== v.record.mode ? `${from} -> ` : ''}${v.record.mode}${nearSync ? ' (bounds changed)' : ''}`, t.array);
}

export async function groupPauseCommand(ref: string, paused: boolean, f: TargetFlags): Promise<number> {
  const t = await locateGroup(ref, f);
  const v = await call(() => (paused ? t.client.pauseGroup(ref) : t.client.resumeGroup(ref)));
  return done(
    f,
    v,
    paused ? `group ${v.record.name}: sender paused (writes are journaled; the backlog grows until "sanbox group resume ${v.record.name}")` : `group ${v.record.name}: sender resumed`,
    t.array,
  );
}

export async function groupBypassCommand(ref: string, on: string, f: TargetFlags): Promise<number> {
  const b = onOff(on, 'bypass');
  const t = await locateGroup(ref, f);
  const v = await call(() => t.client.bypassGroup(ref, b));
  const text = b
    ? `group ${v.record.name}: bypass on (journaling stopped; changes go to the fracture logs; the secondaries are not a point-in-time copy until "sanbox group bypass ${v.record.name} off" and the resync)`
    : v.record.bypass.on
      ? `group ${v.record.name}: leaving bypass once the members' secondaries are resynchronized`
      : `group ${v.record.name}: bypass off, journaling`;
  return done(f, v, text, t.array);
}

export async function groupThrottleCommand(ref: string, f: TargetFlags & { file?: string; clear?: boolean }): Promise<number> {
  if ((f.file === undefined) === (f.clear !== true)) throw usage('throttle needs --file THROTTLES.yaml or --clear (one of them)');
  const throttles = f.clear ? [] : readThrottleFile(f.file!)!;
  const t = await locateGroup(ref, f);
  const v = await call(() => t.client.setGroupAttributes(ref, { throttles }));
  return done(f, v, f.clear ? `group ${v.record.name}: throttles cleared` : `group ${v.record.name}: ${throttles.length} throttle${throttles.length === 1 ? '' : 's'} set, evaluated every ${v.record.throttleEveryMs / 1000} s`, t.array);
}

export interface GroupSetFlags extends TargetFlags, BoundFlags {
  throttleEvery?: string;
  perfEvery?: string;
  perfMax?: string;
  protectResync?: string;
  freeze?: string;
}

export async function groupSetCommand(ref: string, f: GroupSetFlags): Promise<number> {
  const body: GroupSettableRequest = {};
  if (f.throttleEvery !== undefined) body.throttleEveryMs = durationArg(f.throttleEvery, '--throttle-every');
  if (f.perfEvery !== undefined) body.perfEveryMs = durationArg(f.perfEvery, '--perf-every');
  if (f.perfMax !== undefined) body.perfMaxBytes = sizeArg(f.perfMax, '--perf-max', 4096);
  if (f.protectResync !== undefined) (body as { protectResync?: boolean }).protectResync = onOff(f.protectResync, '--protect-resync');
  if (f.freeze !== undefined) body.freeze = freezeArg(f.freeze);
  const nearSync = boundsArg(f);
  if (nearSync) body.nearSync = nearSync;
  if (!Object.keys(body).length) throw usage('nothing to set: give --throttle-every, --perf-every, --perf-max, --protect-resync, --freeze or near-synchronous bounds (--max-entries, --max-bytes, --low-entries, --low-bytes); the mode: sanbox group mode; throttles: sanbox group throttle');
  const t = await locateGroup(ref, f);
  const v = await call(() => t.client.setGroupAttributes(ref, body));
  return done(f, v, `group ${v.record.name}: set ${Object.keys(body).join(', ')}`, t.array);
}

export async function groupDeleteCommand(ref: string, f: TargetFlags): Promise<number> {
  const t = await locateGroup(ref, f);
  const r = await call(() => t.client.deleteGroup(ref));
  if (f.json) printJson(r);
  else process.stdout.write(`deleted group ${r.deleted.name} (id ${r.deleted.groupId}); its mirrors go on as synchronous mirrors\n`);
  return EXIT.OK;
}
