/**
 * `sanbox mirror ...`: thin clients of the arrays' mirror routes (/v1/mirrors).
 *
 * Which array a verb talks to: --api URL / $SANBOX_API, or --array NAME of the lab; otherwise the
 * verb looks the mirror up on every array of the lab and takes the one that holds the right image:
 * the primary for most verbs, a secondary for `promote`, the survivor for `resolve`, the array of
 * `ARRAY:LUN` for `create` (default: the lab's first array). `status` without a mirror shows every
 * mirror of the lab once (from its primary when it answers).
 *
 * Every argument is checked before anything is sent: a bad size, rate, policy or number is a
 * usage error (exit 2).
 */
import { formatSize, isPlainName, parseSize } from '../array/index.js';
import { ApiClient, ClientError, type LunView } from '../control/index.js';
import type { MirrorView, VerifyReport } from '../replication/mirror/types.js';
import { clientError, labArrayClients, resolveTarget, type TargetFlags } from './target.js';
import { CliError, EXIT, nameArg, printJson, SPINNER_FRAME_MS, table, usage, watchStatus } from './common.js';
import { parseRate } from './lab.js';
import { ibytes, mirrorLine, mirrorText } from './mirror-render.js';

// ---- argument parsing (usage errors, nothing sent) ----

/** A positive rate in bytes per second: `64M`, `64M/s`, `1048576`. */
export function rateArg(text: string, what: string): number {
  const n = parseRate(text);
  if (!n) throw usage(`${what} must be a positive rate in bytes per second (e.g. 64M, 10M/s, 1048576), not ${JSON.stringify(text)}`);
  return n;
}

export function regionSizeArg(text: string): number {
  const n = parseSize(text);
  if (n === undefined || n < 4096 || n > 64 << 20 || (n & (n - 1)) !== 0) throw usage(`--region-size must be a power of two from 4K to 64M (e.g. 64K), not ${JSON.stringify(text)}`);
  return n;
}

/** -1 (no limit) or a count. */
export function limitArg(text: string, what: string): number {
  if (!/^-?\d+$/.test(text.trim()) || Number(text) < -1) throw usage(`${what} must be an integer >= -1 (-1: no limit), not ${JSON.stringify(text)}`);
  return Number(text);
}

function choice<T extends string>(text: string, what: string, values: readonly T[]): T {
  if (!values.includes(text as T)) {
    const list = values.length === 1 ? values[0] : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
    throw usage(`${what} must be ${list}, not ${JSON.stringify(text)}`);
  }
  return text as T;
}

function onOff(text: string, what: string): boolean {
  const t = text.toLowerCase();
  if (['on', 'true', 'yes', '1'].includes(t)) return true;
  if (['off', 'false', 'no', '0'].includes(t)) return false;
  throw usage(`${what} must be on or off, not ${JSON.stringify(text)}`);
}

/** `ARRAY:LUN` (the LUN by name, or by id when all digits). */
export function arrayLunArg(text: string, what: string): { array: string; lun: string | number } {
  const m = /^([^:]*):([^:]*)$/.exec(text);
  if (!m || !isPlainName(m[1]) || !isPlainName(m[2])) throw usage(`${what} must be ARRAY:LUN (e.g. bravo:disk0 or bravo:0), not ${JSON.stringify(text)}`);
  return { array: m[1]!, lun: /^\d+$/.test(m[2]!) ? Number(m[2]) : m[2]! };
}

function writePolicyArg(text: string): 'synchronous' {
  if (text === 'asynchronous' || text === 'near-synchronous') throw usage(`--write-policy ${text}: a mirror is synchronous; ${text} replication is a mode of a consistency group (sanbox group create NAME --members MIRROR --mode ${text})`);
  return choice(text, '--write-policy', ['synchronous'] as const);
}

// ---- finding the array ----

interface Located {
  client: ApiClient;
  /** The array's name when known (lab mode). */
  array?: string;
  /** The mirror as that array sees it, when the lookup fetched it. */
  view?: MirrorView;
}

function noDriver(e: unknown): boolean {
  return e instanceof ClientError && e.code === 'no-mirror-driver';
}

/**
 * The array to run a mirror verb on. `want`: primary (default), a secondary (promote), or a
 * named array (resolve --survivor).
 */
export async function locate(ref: string, f: TargetFlags, want: { role: 'primary' | 'secondary' } | { array: string }): Promise<Located> {
  nameArg(ref, 'mirror');
  try {
    const lab = await labArrayClients(f);
    if (!lab) return { client: await resolveTarget(f), ...(f.array ? { array: f.array } : {}) };
    if ('array' in want) {
      const a = lab.arrays.find((x) => x.name === want.array);
      if (a) return { client: a.client, array: a.name };
      return { client: await resolveTarget(f) };
    }
    const found = await Promise.all(
      lab.arrays.map(async (a) => {
        try {
          return { ...a, view: await a.client.getMirror(ref) };
        } catch (e) {
          return { ...a, error: e };
        }
      }),
    );
    const holders = found.filter((x): x is typeof x & { view: MirrorView } => 'view' in x && x.view !== undefined);
    const match = holders.filter((x) => x.view.local.role === want.role);
    if (match.length === 1) return { client: match[0]!.client, array: match[0]!.name, view: match[0]!.view };
    if (match.length > 1) {
      throw usage(`mirror ${ref} has ${want.role} images on ${match.map((x) => x.name).join(', ')}: say which array with --array NAME`);
    }
    const unreachable = found.filter((x) => 'error' in x && x.error instanceof ClientError && x.error.unreachable);
    if (holders.length) {
      const rec = holders[0]!.view.record;
      if (want.role === 'primary') {
        const p = rec.images.find((i) => i.role === 'primary');
        const down = p && unreachable.find((x) => x.name === p.array);
        if (down) throw new CliError(EXIT.UNREACHABLE, 'unreachable', `mirror ${ref}: its primary array ${p!.array} cannot be reached (${(down as { error: Error }).error.message})`);
        throw new CliError(EXIT.ERROR, 'not-primary', `mirror ${ref}: no array of lab ${lab.lab.lab} holds its primary image (${p ? `primary: ${p.imageId}` : 'none'}); give --array NAME`);
      }
      throw new CliError(
        EXIT.ERROR,
        'not-secondary',
        `mirror ${ref}: no array of lab ${lab.lab.lab} holds a secondary image (${holders.map((x) => `${x.name}: ${x.view.local.role}`).join(', ')}); promote runs on the array of the secondary to promote (--array NAME)`,
      );
    }
    if (unreachable.length === lab.arrays.length) throw clientError((unreachable[0] as { error: unknown }).error);
    const drivers = found.filter((x) => !('error' in x && noDriver(x.error)));
    if (drivers.length === 0) throw new CliError(EXIT.ERROR, 'no-mirror-driver', `no array of lab ${lab.lab.lab} runs a mirror driver (no remoteLink: in the lab file)`);
    const other = found.find((x) => 'error' in x && !(x.error instanceof ClientError && (x.error.code === 'not-found' || x.error.code === 'no-mirror-driver' || x.error.unreachable)));
    if (other) throw clientError((other as { error: unknown }).error);
    throw new CliError(
      EXIT.ERROR,
      'not-found',
      `no mirror ${JSON.stringify(ref)} on the arrays of lab ${lab.lab.lab} (${lab.arrays.map((a) => a.name).join(', ')})${unreachable.length ? `; unreachable: ${unreachable.map((x) => x.name).join(', ')}` : ''}`,
    );
  } catch (e) {
    throw clientError(e);
  }
}

export async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw clientError(e);
  }
}

/** LUN names of the lab's arrays (best effort), to print `bravo:disk0` instead of `bravo:0`. */
export async function lunNames(f: TargetFlags, views: MirrorView[]): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  for (const v of views) names.set(v.local.imageId, `${v.local.imageId.split(':')[0]}:${v.local.lunName}`);
  let lab;
  try {
    lab = await labArrayClients({ ...f, array: undefined });
  } catch {
    return names; // no lab to ask: the ids stay as the views name them
  }
  if (!lab) return names;
  const wanted = new Set(views.flatMap((v) => v.record.images.map((i) => i.array)));
  await Promise.all(
    lab.arrays
      .filter((a) => wanted.has(a.name))
      .map(async (a) => {
        try {
          const r = await a.client.listLuns<LunView>();
          for (const l of r.luns) names.set(`${a.name}:${l.id}`, `${a.name}:${l.name}`);
        } catch {
          /* unreachable: ids it is */
        }
      }),
  );
  return names;
}

// ---- rendering (mirror-render.ts; re-exported for existing importers) ----

export { ibytes, mirrorLine, mirrorText, resyncText } from './mirror-render.js';

export function done(f: TargetFlags, v: MirrorView, text: string, names?: Map<string, string>): number {
  if (f.json) printJson(v);
  else process.stdout.write(`${text}\n${mirrorText(v, names)}\n`);
  return EXIT.OK;
}

// ---- the verbs ----

export interface MirrorCreateFlags extends TargetFlags {
  name?: string;
  regionSize?: string;
  syncRate?: string;
  writePolicy?: string;
  activation?: string;
  minImages?: string;
  maxMissing?: string;
  secondaryReads?: boolean;
  syncPriority?: string;
  protectResync?: string;
  syncController?: string;
}

export async function mirrorCreateCommand(lun: string, f: MirrorCreateFlags): Promise<number> {
  let array: string | undefined;
  let lunRef: string | number = lun;
  if (lun.includes(':')) {
    const r = arrayLunArg(lun, 'LUN');
    if (f.array && f.array !== r.array) throw usage(`LUN ${lun} is on array ${r.array}, but --array says ${f.array}`);
    array = r.array;
    lunRef = r.lun;
  } else if (/^\d+$/.test(lun)) lunRef = Number(lun);
  const body: Parameters<ApiClient['createMirror']>[0] = { lun: lunRef };
  if (f.name !== undefined) body.name = f.name;
  if (f.regionSize !== undefined) body.regionSize = regionSizeArg(f.regionSize);
  const attributes: NonNullable<typeof body.attributes> = {};
  if (f.syncRate !== undefined) attributes.syncRate = rateArg(f.syncRate, '--sync-rate');
  if (f.writePolicy !== undefined) attributes.writePolicy = writePolicyArg(f.writePolicy);
  if (f.activation !== undefined) attributes.activationPolicy = choice(f.activation, '--activation', ['automatic', 'manual'] as const);
  if (f.minImages !== undefined) attributes.minImagesRequired = limitArg(f.minImages, '--min-images');
  if (f.maxMissing !== undefined) attributes.maxMissingImages = limitArg(f.maxMissing, '--max-missing');
  if (f.secondaryReads) attributes.allowSecondaryReads = true;
  if (f.syncPriority !== undefined) attributes.syncPriority = choice(f.syncPriority, '--sync-priority', ['low', 'medium', 'high'] as const);
  if (f.protectResync !== undefined) attributes.protectResync = onOff(f.protectResync, '--protect-resync');
  if (f.syncController !== undefined) attributes.syncController = choice(f.syncController, '--sync-controller', ['fixed', 'adaptive'] as const);
  if (Object.keys(attributes).length) body.attributes = attributes;
  const client = await call(() => resolveTarget({ ...f, array: f.array ?? array }));
  const v = await call(() => client.createMirror(body));
  // The image table names the LUNs as every later view does (ARRAY:NAME, not the image id ARRAY:ID).
  return done(f, v, `created mirror ${v.record.name} (id ${v.record.mirrorId}) on ${v.local.imageId.split(':')[0]}:${v.local.lunName}; add a secondary: sanbox mirror add-secondary ${v.record.name} --to ARRAY:LUN`, await lunNames(f, [v]));
}

export interface AddSecondaryFlags extends TargetFlags {
  to?: string;
  synchronized?: boolean;
  recovery?: string;
  syncRate?: string;
}

export async function mirrorAddSecondaryCommand(ref: string, f: AddSecondaryFlags): Promise<number> {
  if (f.to === undefined) throw usage('add-secondary needs --to ARRAY:LUN (the secondary image)');
  const to = arrayLunArg(f.to, '--to');
  const body: Parameters<ApiClient['addSecondary']>[1] = { array: to.array, lun: to.lun };
  if (f.synchronized) body.synchronized = true;
  if (f.recovery !== undefined) body.recoveryPolicy = choice(f.recovery, '--recovery', ['auto', 'manual'] as const);
  if (f.syncRate !== undefined) body.syncRate = rateArg(f.syncRate, '--sync-rate');
  const t = await locate(ref, f, { role: 'primary' });
  const v = await call(() => t.client.addSecondary(ref, body));
  return done(f, v, `added ${f.to} to mirror ${v.record.name}${body.synchronized ? ' (declared synchronized: no initial copy)' : ' (full synchronization starts when the mirror is active)'}`, await lunNames(f, [v]));
}

export async function mirrorRemoveSecondaryCommand(ref: string, image: string, f: TargetFlags & { force?: boolean }): Promise<number> {
  const t = await locate(ref, f, { role: 'primary' });
  const v = await call(() => t.client.removeSecondary(ref, image, { force: f.force === true }));
  return done(f, v, `removed ${image} from mirror ${v.record.name}${f.force ? ' (forced)' : ''}`, await lunNames(f, [v]));
}

/** A promote --from-snapshot rolls back every region changed since the snapshot first. */
const PROMOTE_TIMEOUT_MS = 600_000;

/**
 * Promote on the secondary's array. An image that is not a point in time (a resync was under way)
 * is refused by the array (exit 1, code `inconsistent`, naming its fallback snapshot and age);
 * --force promotes it as it is, --from-snapshot rolls it back to that snapshot first.
 */
export async function mirrorPromoteCommand(ref: string, f: TargetFlags & { force?: boolean; fromSnapshot?: boolean }): Promise<number> {
  if (f.force && f.fromSnapshot) throw usage('promote takes --force (the image as it is) or --from-snapshot (rolled back to its fallback snapshot), not both');
  const t = await locate(ref, f, { role: 'secondary' });
  const before = f.fromSnapshot ? (t.view ?? (await call(() => t.client.getMirror(ref)))) : undefined;
  const body = f.force ? { force: true } : f.fromSnapshot ? { fromSnapshot: true } : {};
  const v = await call(() => t.client.request<MirrorView>('POST', `/v1/mirrors/${encodeURIComponent(ref)}/promote`, body, { timeoutMs: PROMOTE_TIMEOUT_MS }));
  const fb = before?.protection?.fallback;
  const how = f.force ? ' (forced: the image as it was)' : fb ? `\nrolled back to snapshot ${fb.snapshot} first: the image as it was ${fb.ageSeconds.toFixed(1)} s before the promote, when the resync began (a consistent point; writes the old primary made after it are not in it)` : '';
  return done(f, v, `promoted ${v.local.imageId.split(':')[0]}:${v.local.lunName}: primary of mirror ${v.record.name}, epoch ${v.record.epoch}${how}`, await lunNames(f, [v]));
}

export async function mirrorFractureCommand(ref: string, image: string | undefined, f: TargetFlags): Promise<number> {
  const t = await locate(ref, f, { role: 'primary' });
  const v = await call(() => t.client.fractureMirror(ref, { image }));
  return done(f, v, `fractured ${image ?? 'every secondary'} of mirror ${v.record.name}: writes are tracked in the fracture log until "sanbox mirror sync ${v.record.name}"`, await lunNames(f, [v]));
}

export async function mirrorActivateCommand(ref: string, f: TargetFlags): Promise<number> {
  const t = await locate(ref, f, { role: 'primary' });
  const v = await call(() => t.client.activateMirror(ref));
  return done(f, v, `mirror ${v.record.name} is ${v.record.state}`, await lunNames(f, [v]));
}

export async function mirrorDeactivateCommand(ref: string, f: TargetFlags & { force?: boolean }): Promise<number> {
  const t = await locate(ref, f, { role: 'primary' });
  const v = await call(() => t.client.deactivateMirror(ref, { force: f.force === true }));
  return done(f, v, `mirror ${v.record.name} is ${v.record.state}`, await lunNames(f, [v]));
}

export async function mirrorDestroyCommand(ref: string, f: TargetFlags): Promise<number> {
  const t = await locate(ref, f, { role: 'primary' });
  const r = await call(() => t.client.destroyMirror(ref));
  if (f.json) printJson(r);
  else process.stdout.write(`destroyed mirror ${r.destroyed.name} (id ${r.destroyed.mirrorId}); the LUNs and their data stay\n`);
  return EXIT.OK;
}

export interface MirrorSetFlags extends TargetFlags {
  name?: string;
  syncRate?: string;
  syncPriority?: string;
  minImages?: string;
  maxMissing?: string;
  activation?: string;
  secondaryReads?: string;
  image?: string;
  recovery?: string;
  imageSyncRate?: string;
  protectResync?: string;
  resyncChecksums?: string;
  syncController?: string;
  imageResyncChecksums?: string;
}

export async function mirrorSetCommand(ref: string, f: MirrorSetFlags): Promise<number> {
  const body: Parameters<ApiClient['setMirrorAttributes']>[1] = {};
  if (f.name !== undefined) body.name = f.name;
  if (f.syncRate !== undefined) body.syncRate = rateArg(f.syncRate, '--sync-rate');
  if (f.syncPriority !== undefined) body.syncPriority = choice(f.syncPriority, '--sync-priority', ['low', 'medium', 'high'] as const);
  if (f.minImages !== undefined) body.minImagesRequired = limitArg(f.minImages, '--min-images');
  if (f.maxMissing !== undefined) body.maxMissingImages = limitArg(f.maxMissing, '--max-missing');
  if (f.activation !== undefined) body.activationPolicy = choice(f.activation, '--activation', ['automatic', 'manual'] as const);
  if (f.secondaryReads !== undefined) body.allowSecondaryReads = onOff(f.secondaryReads, '--secondary-reads');
  if (f.protectResync !== undefined) body.protectResync = onOff(f.protectResync, '--protect-resync');
  if (f.resyncChecksums !== undefined) body.resyncChecksums = choice(f.resyncChecksums, '--resync-checksums', ['auto', 'always', 'never'] as const);
  if (f.syncController !== undefined) body.syncController = choice(f.syncController, '--sync-controller', ['fixed', 'adaptive'] as const);
  const perImage = f.recovery !== undefined || f.imageSyncRate !== undefined || f.imageResyncChecksums !== undefined;
  if (perImage && f.image === undefined) throw usage('--recovery and --image-sync-rate are settings of one image: give --image IMAGE|ARRAY');
  if (f.image !== undefined && !perImage) throw usage('--image needs --recovery auto|manual or --image-sync-rate RATE');
  if (f.image !== undefined) body.image = f.image;
  if (f.recovery !== undefined) body.recoveryPolicy = choice(f.recovery, '--recovery', ['auto', 'manual'] as const);
  if (f.imageSyncRate !== undefined) body.imageSyncRate = f.imageSyncRate === 'default' ? null : rateArg(f.imageSyncRate, '--image-sync-rate');
  if (f.imageResyncChecksums !== undefined) body.imageResyncChecksums = f.imageResyncChecksums === 'default' ? null : choice(f.imageResyncChecksums, '--image-resync-checksums', ['auto', 'always', 'never'] as const);
  if (Object.keys(body).length === 0) {
    throw usage('nothing to set: give --sync-rate, --sync-priority, --min-images, --max-missing, --activation, --secondary-reads, --protect-resync, --resync-checksums, --sync-controller, --name, or --image with --recovery / --image-sync-rate');
  }
  const t = await locate(ref, f, { role: 'primary' });
  const v = await call(() => t.client.setMirrorAttributes(ref, body));
  return done(f, v, `mirror ${v.record.name}: set ${Object.keys(body).filter((k) => k !== 'image').join(', ')}${f.image ? ` of image ${f.image}` : ''}`, await lunNames(f, [v]));
}

export interface MirrorStatusFlags extends TargetFlags {
  watch?: boolean;
  count?: string;
  interval?: string;
}

/** Every mirror the target (or the lab's arrays) knows, once each: the primary's view first. */
async function collect(ref: string | undefined, f: TargetFlags): Promise<MirrorView[]> {
  if (ref !== undefined) {
    // The primary's view has the fracture logs and resync progress; fall back to any view.
    try {
      const t = await locate(ref, f, { role: 'primary' });
      return [t.view ?? (await call(() => t.client.getMirror(ref)))];
    } catch (e) {
      let lab;
      try {
        lab = await labArrayClients(f);
      } catch {
        throw e; // no lab to fall back on: the primary's lookup error is the one to report
      }
      if (!lab || !(e instanceof CliError) || e.code === 'not-found' || e.code === 'no-mirror-driver') throw e;
      for (const a of lab.arrays) {
        try {
          return [await a.client.getMirror(ref)];
        } catch {
          /* not on this array (or it is down): try the next one */
        }
      }
      throw e;
    }
  }
  const lab = await call(() => labArrayClients(f));
  if (!lab) {
    const c = await call(() => resolveTarget(f));
    return (await call(() => c.listMirrors())).mirrors;
  }
  const byId = new Map<string, MirrorView>();
  let reached = 0;
  let firstError: unknown;
  for (const a of lab.arrays) {
    let views: MirrorView[];
    try {
      views = (await a.client.listMirrors()).mirrors;
      reached++;
    } catch (e) {
      if (noDriver(e)) {
        reached++;
        continue;
      }
      firstError ??= e;
      continue;
    }
    for (const v of views) {
      const prev = byId.get(v.record.mirrorId);
      if (!prev || (prev.local.role !== 'primary' && v.local.role === 'primary')) byId.set(v.record.mirrorId, v);
    }
  }
  if (reached === 0 && firstError) throw clientError(firstError);
  return [...byId.values()].sort((x, y) => x.record.name.localeCompare(y.record.name));
}

export async function mirrorStatusCommand(ref: string | undefined, f: MirrorStatusFlags): Promise<number> {
  return watchStatus(f, () => collect(ref, f), {
    json: (views) => (ref !== undefined ? { once: views[0], line: { mirror: views[0] } } : { once: { mirrors: views }, line: { mirrors: views } }),
    text: async (views) => {
      const names = await lunNames(f, views);
      return views.length ? views.map((v) => mirrorText(v, names)).join('\n\n') : 'no mirrors (sanbox mirror create LUN, or mirrors: in the lab file)';
    },
  });
}

export async function mirrorVerifyCommand(ref: string, image: string | undefined, f: TargetFlags): Promise<number> {
  const t = await locate(ref, f, { role: 'primary' });
  const started = Date.now();
  const spinner = !f.json && process.stderr.isTTY;
  const frames = ['|', '/', '-', '\\'];
  let n = 0;
  const tick = spinner
    ? setInterval(() => {
        const s = Math.floor((Date.now() - started) / 1000);
        process.stderr.write(`\r${frames[n++ % 4]} verifying mirror ${ref}${image ? ` image ${image}` : ''}: ${s} s (every region is read on both arrays)`);
      }, SPINNER_FRAME_MS)
    : undefined;
  let r: VerifyReport;
  try {
    r = await call(() => t.client.verifyMirror(ref, { image }));
  } finally {
    if (tick) {
      clearInterval(tick);
      process.stderr.write('\r\x1b[K');
    }
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const bad = r.mismatched.length > 0;
  // (an array without `result`, an older build: identical unless regions differ or were skipped)
  const result = bad ? 'different' : (r.result ?? (r.skipped ? 'incomplete' : 'identical'));
  const why = r.incompleteReason ?? (r.skipped ? `${r.skipped} of ${r.regionsCompared + r.skipped} regions skipped` : undefined);
  if (f.json) printJson(r);
  else {
    const names = t.view ? await lunNames(f, [t.view]) : new Map<string, string>();
    const img = names.get(r.imageId) ?? r.imageId;
    const lines = [
      bad
        ? `mirror ${ref}: ${img} DIFFERS from the primary in ${r.mismatched.length} region${r.mismatched.length === 1 ? '' : 's'} (region size ${formatSize(r.regionSize)}):`
        : result === 'incomplete'
          ? `mirror ${ref}: ${img} INCOMPLETE: ${why ?? 'not every region was compared'}; nothing found to differ, run verify again once the image is in sync`
          : `mirror ${ref}: ${img} is identical to the primary`,
    ];
    if (bad) {
      lines.push(
        table(
          ['REGION', 'OFFSET', 'LENGTH'],
          r.mismatched.slice(0, 1000).map((m) => [String(m.region), String(m.offset), formatSize(m.length)]),
        )
          .split('\n')
          .map((l) => '  ' + l)
          .join('\n'),
      );
      if (r.mismatched.length > 1000) lines.push(`  ... and ${r.mismatched.length - 1000} more (--json lists all)`);
      if (why) lines.push(`  and the comparison is incomplete: ${why}`);
    }
    lines.push(`  ${r.regionsCompared} regions (${ibytes(r.bytesCompared)}) compared in ${secs} s${r.skipped ? `, ${r.skipped} skipped (marked in the fracture log)` : ''}`);
    process.stdout.write(lines.join('\n') + '\n');
  }
  // different and incomplete both exit 1: only `identical` is a verified copy
  return result === 'identical' ? EXIT.OK : EXIT.ERROR;
}

export async function mirrorResolveCommand(ref: string, f: TargetFlags & { survivor?: string }): Promise<number> {
  if (f.survivor === undefined) throw usage('resolve needs --survivor ARRAY: the array whose data is kept (the other becomes a resyncing secondary)');
  if (!isPlainName(f.survivor)) throw usage(`--survivor must be an array name, not ${JSON.stringify(f.survivor)}`);
  const survivor = f.survivor;
  const t = await locate(ref, f, { array: survivor });
  const v = await call(() => t.client.resolveSplitBrain(ref, { survivor }));
  return done(f, v, `split brain of mirror ${v.record.name} resolved: ${survivor} kept its data; the other side resynchronizes from it`, await lunNames(f, [v]));
}

/** The short mirrors section of `sanbox status` (nothing when the array has no mirror driver or no mirrors). */
export async function statusMirrorsSection(c: ApiClient, f: TargetFlags): Promise<string | undefined> {
  let views: MirrorView[];
  try {
    views = (await c.listMirrors()).mirrors;
  } catch {
    return undefined; // no mirror driver or no answer: status shows the array without the section
  }
  if (!views.length) return undefined;
  const names = await lunNames(f, views);
  return ['mirrors:', ...views.map((v) => '  ' + mirrorLine(v, names))].join('\n');
}
