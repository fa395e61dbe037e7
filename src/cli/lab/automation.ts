/**
 * `automation:` of a lab file: site automation (seed 001, docs/automation.md): resource groups of
 * volume sets and host resources, and one controller per site that `sanbox up` starts
 * (`sanbox automation serve`). Parsed to an `AutomationSpec` (src/automation/rg/types.ts).
 *
 *     automation:
 *       secret: sanbox-lab-automation-secret    # required, 16+ characters
 *       declareLostAfter: 6s                    # default 6s, 1s-10m
 *       controllers:                            # exactly two, at two sites of the lab
 *         - { site: east, bind: 127.0.0.1, port: 8701 }
 *         - { site: west, port: 8702 }
 *       resourceGroups:
 *         - name: rg0
 *           volumeSets: [m0, g0]                # groups, or mirrors in no group; each in one resource group
 *           preferredSite: east                 # default: the home site of the first volume set
 *           failover: automatic                 # automatic | manual (default)
 *           failback: manual
 *           usePitCopy: no
 *           storageTimeout: 120s                # default 120s, 1s-1h
 *           resources:
 *             - { name: fs, start: "...", stop: "...", monitor: "..." }
 *             - { name: app, start: "...", stop: "...", monitor: "...", after: [fs], startTimeout: 30s }
 *
 * Every problem is listed at once. A volume set must have an image at both controllers' sites and
 * no array elsewhere: a set whose arrays are all at one site cannot be moved.
 */
import { checkName } from '../../array/index.js';
import type { AutomationSpec, ControllerSpec, FailoverPolicy, HostResourceSpec, ResourceGroupSpec } from '../../automation/rg/types.js';
import { isObj, type LabArray, type LabGroup, type LabMirror, type LabSite } from './types.js';
import { MIN_SECRET, parseDuration } from './values.js';

const KEYS = ['secret', 'declareLostAfter', 'controllers', 'resourceGroups'];
const CONTROLLER_KEYS = ['site', 'bind', 'port'];
const GROUP_KEYS = ['name', 'volumeSets', 'preferredSite', 'failover', 'failback', 'usePitCopy', 'storageTimeout', 'resources'];
const RESOURCE_KEYS = ['name', 'start', 'stop', 'monitor', 'after', 'startTimeout', 'stopTimeout'];

export const DECLARE_LOST_AFTER_MS = 6000;
export const STORAGE_TIMEOUT_MS = 120_000;
export const RESOURCE_TIMEOUT_MS = 30_000;

interface Ctx {
  problems: string[];
  usePort(port: number, what: string): void;
}

interface World {
  arrays: LabArray[];
  sites: LabSite[];
  mirrors: LabMirror[];
  groups: LabGroup[];
}

/** The site of an array: its `sites:` entry (the lab lists implicit sites too), else its own name. */
const siteOf = (w: World, array: string): string => w.sites.find((s) => s.arrays.includes(array))?.name ?? array;

/** A volume set of the lab (src/automation/client.ts, labVolumeSets): its arrays, primary first. */
interface VolumeSet {
  name: string;
  arrays: string[];
}

function volumeSet(w: World, name: string): VolumeSet | { problem: string } {
  const g = w.groups.find((x) => x.name === name);
  if (g) return { name, arrays: [...new Set([g.primary, ...g.secondaries])] };
  const m = w.mirrors.find((x) => x.name === name);
  if (!m) return { problem: `no volume set ${JSON.stringify(name)} in this lab (a group of groups:, or a mirror of mirrors: in no group)` };
  const group = w.groups.find((x) => x.members.includes(name));
  if (group) return { problem: `mirror ${name} is a member of group ${group.name}: a group's members move with it, list the group` };
  return { name, arrays: [...new Set([m.primary.array, ...m.secondaries.map((s) => s.array)])] };
}

/** The relevant keys of a mapping and its unknown ones; undefined (and a problem) when it is not a mapping. */
function mapping(v: unknown, at: string, keys: string[], example: string, problems: string[]): Record<string, unknown> | undefined {
  if (!isObj(v)) return void problems.push(`${at} must be a mapping like ${example}`);
  for (const k of Object.keys(v)) if (!keys.includes(k)) problems.push(`${at}: unknown key "${k}" (expected ${keys.join(', ')})`);
  return v;
}

const fmt = (ms: number): string => (ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

function duration(v: unknown, at: string, dflt: number, min: number, max: number, problems: string[]): number {
  if (v === undefined) return dflt;
  const ms = parseDuration(v);
  if (ms !== undefined && ms >= min && ms <= max) return ms;
  return (problems.push(`${at} must be a duration from ${fmt(min)} to ${fmt(max)} (like 30s, 2m; a bare number is seconds), not ${JSON.stringify(v)}`), dflt);
}

function policy(v: unknown, at: string, problems: string[]): FailoverPolicy {
  if (v === undefined) return 'manual';
  if (v === 'automatic' || v === 'manual') return v;
  return (problems.push(`${at} must be automatic or manual, not ${JSON.stringify(v)}`), 'manual');
}

function yesNo(v: unknown, at: string, dflt: boolean, problems: string[]): boolean {
  if (v === undefined) return dflt;
  if (v === true || v === 'yes') return true;
  if (v === false || v === 'no') return false;
  return (problems.push(`${at} must be yes or no, not ${JSON.stringify(v)}`), dflt);
}

function command(v: unknown, at: string, problems: string[]): string {
  if (v === undefined) return (problems.push(`${at} is required: a shell command`), '');
  if (typeof v !== 'string' || v.trim() === '') return (problems.push(`${at} must be a non-empty shell command, not ${JSON.stringify(v)}`), '');
  return v;
}

function parseSecret(v: unknown, problems: string[]): string {
  if (v === undefined) return (problems.push(`automation.secret is required: a shared secret of at least ${MIN_SECRET} characters (the controllers and the CLI authenticate with it)`), '');
  if (typeof v !== 'string') return (problems.push('automation.secret must be a string (quote it if it looks like a number)'), '');
  if (v.length < MIN_SECRET) problems.push(`automation.secret must have at least ${MIN_SECRET} characters (has ${v.length})`);
  return v;
}

function parseControllers(v: unknown, w: World, ctx: Ctx): ControllerSpec[] {
  const { problems } = ctx;
  const siteNames = w.sites.map((s) => s.name);
  const example = '[{ site: east, port: 8701 }, { site: west, port: 8702 }]';
  if (v === undefined) return (problems.push(`automation.controllers is required: exactly two, one per site, like ${example}`), []);
  if (!Array.isArray(v)) return (problems.push(`automation.controllers must be a list of two controllers, one per site, like ${example}`), []);
  if (v.length !== 2) problems.push(`automation.controllers must list exactly two controllers, one per site (has ${v.length})`);
  const out: ControllerSpec[] = [];
  v.forEach((c: unknown, i: number) => {
    const at = `automation.controllers[${i}]`;
    const o = mapping(c, at, CONTROLLER_KEYS, '{ site: east, bind: 127.0.0.1, port: 8701 }', problems);
    if (!o) return;
    let siteOk = false;
    if (o.site === undefined) problems.push(`${at}.site is required: a site of this lab (${siteNames.join(', ')})`);
    else if (typeof o.site !== 'string' || !siteNames.includes(o.site)) problems.push(`${at}.site must be a site of this lab (${siteNames.join(', ')}), not ${JSON.stringify(o.site)}`);
    else if (out.some((x) => x.site === o.site)) problems.push(`${at}: a second controller at site ${o.site} (one controller per site)`);
    else siteOk = true;
    const bind = o.bind === undefined ? '127.0.0.1' : o.bind;
    if (typeof bind !== 'string' || bind === '') problems.push(`${at}.bind must be an address, not ${JSON.stringify(o.bind)}`);
    let port = 0;
    if (o.port !== undefined) {
      if (!Number.isInteger(o.port) || (o.port as number) < 0 || (o.port as number) > 65535) problems.push(`${at}.port must be an integer 0-65535 (0: any free port), not ${JSON.stringify(o.port)}`);
      else ctx.usePort((port = o.port as number), `${at}.port`);
    }
    // a bad bind or port is reported; the site still counts for the resource groups' checks
    if (siteOk) out.push({ site: o.site as string, bind: typeof bind === 'string' ? bind : '', port });
  });
  return out;
}

/** Each cycle of `after` among a group's resources, as a path that returns to its first name. */
function cycles(resources: HostResourceSpec[]): string[][] {
  const after = new Map(resources.map((r) => [r.name, r.after.filter((a) => a !== r.name && resources.some((x) => x.name === a))]));
  const state = new Map<string, 'open' | 'done'>();
  const found: string[][] = [];
  const seen = new Set<string>();
  const visit = (n: string, path: string[]): void => {
    state.set(n, 'open');
    for (const d of after.get(n) ?? []) {
      if (state.get(d) === 'open') {
        const cycle = [...path.slice(path.indexOf(d)), n, d];
        const key = [...new Set(cycle)].sort().join(' ');
        if (!seen.has(key)) (seen.add(key), found.push(cycle));
      } else if (!state.has(d)) visit(d, [...path, n]);
    }
    state.set(n, 'done');
  };
  for (const r of resources) if (!state.has(r.name)) visit(r.name, []);
  return found;
}

function parseResources(v: unknown, at: string, problems: string[]): HostResourceSpec[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) return (problems.push(`${at} must be a list of resources like [{ name: app, start: "...", stop: "...", monitor: "..." }]`), []);
  const out: HostResourceSpec[] = [];
  const afters: { at: string; after: unknown[]; resource: HostResourceSpec }[] = [];
  v.forEach((r: unknown, i: number) => {
    const rat = `${at}[${i}]`;
    const o = mapping(r, rat, RESOURCE_KEYS, '{ name: app, start: "...", stop: "...", monitor: "...", after: [fs] }', problems);
    if (!o) return;
    const bad = checkName(o.name, `${rat}.name`);
    const twice = !bad && out.some((x) => x.name === o.name);
    if (bad) problems.push(bad);
    else if (twice) problems.push(`${rat}: resource ${o.name as string} is listed twice in this group`);
    const resource: HostResourceSpec = {
      name: o.name as string,
      start: command(o.start, `${rat}.start`, problems),
      stop: command(o.stop, `${rat}.stop`, problems),
      monitor: command(o.monitor, `${rat}.monitor`, problems),
      after: [],
      startTimeoutMs: duration(o.startTimeout, `${rat}.startTimeout`, RESOURCE_TIMEOUT_MS, 1000, 3_600_000, problems),
      stopTimeoutMs: duration(o.stopTimeout, `${rat}.stopTimeout`, RESOURCE_TIMEOUT_MS, 1000, 3_600_000, problems),
    };
    if (o.after !== undefined && !Array.isArray(o.after)) problems.push(`${rat}.after must be a list of resource names of this group, like [fs]`);
    else if (o.after !== undefined) afters.push({ at: `${rat}.after`, after: o.after, resource });
    if (!bad && !twice) out.push(resource);
  });
  // after: names the group's resources, wherever they are listed
  const names = out.map((r) => r.name);
  for (const { at: aat, after, resource } of afters) {
    after.forEach((a, j) => {
      if (typeof a !== 'string' || !names.includes(a)) problems.push(`${aat}[${j}]: no resource ${JSON.stringify(a)} in this group (resources: ${names.join(', ') || 'none'})`);
      else if (a === resource.name) problems.push(`${aat}[${j}]: resource ${a} cannot come after itself`);
      else if (resource.after.includes(a)) problems.push(`${aat}[${j}]: ${a} is listed twice`);
      else resource.after.push(a);
    });
  }
  for (const c of cycles(out)) problems.push(`${at}: a cycle of after: ${c.join(' after ')} (none of them can start first)`);
  return out;
}

function parseResourceGroups(v: unknown, w: World, controllers: ControllerSpec[], problems: string[]): ResourceGroupSpec[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) return (problems.push('automation.resourceGroups must be a list of resource groups like [{ name: rg0, volumeSets: [m0, g0] }]'), []);
  // the controllers' sites, once the controllers are right (their own problems are reported already)
  const sites = controllers.length === 2 ? controllers.map((c) => c.site) : undefined;
  const owner = new Map<string, string>();
  const out: ResourceGroupSpec[] = [];
  v.forEach((g: unknown, i: number) => {
    const at = `automation.resourceGroups[${i}]`;
    const o = mapping(g, at, GROUP_KEYS, '{ name: rg0, volumeSets: [m0, g0], failover: automatic }', problems);
    if (!o) return;
    const bad = checkName(o.name, `${at}.name`);
    if (bad) problems.push(bad);
    else if (out.some((x) => x.name === o.name)) problems.push(`${at}: resource group ${o.name as string} is listed twice`);
    const name = o.name as string;
    const volumeSets: string[] = [];
    let home: string | undefined;
    if (o.volumeSets === undefined) problems.push(`${at}.volumeSets is required: the group's volume sets, like [m0, g0]`);
    else if (!Array.isArray(o.volumeSets) || o.volumeSets.length === 0) problems.push(`${at}.volumeSets must be a non-empty list of volume sets (groups, or mirrors in no group) like [m0, g0]`);
    else
      o.volumeSets.forEach((s: unknown, j: number) => {
        const sat = `${at}.volumeSets[${j}]`;
        if (typeof s !== 'string') return void problems.push(`${sat} must be the name of a volume set, not ${JSON.stringify(s)}`);
        if (volumeSets.includes(s)) return void problems.push(`${sat}: ${s} is listed twice`);
        const set = volumeSet(w, s);
        if ('problem' in set) return void problems.push(`${sat}: ${set.problem}`);
        const prev = owner.get(s);
        if (prev !== undefined) problems.push(`${sat}: volume set ${s} is already in resource group ${prev} (a set is in at most one resource group)`);
        else owner.set(s, bad ? `automation.resourceGroups[${i}]` : name);
        if (j === 0) home = siteOf(w, set.arrays[0]!);
        if (sites) {
          const at2 = set.arrays.map((a) => ({ array: a, site: siteOf(w, a) }));
          for (const x of at2) if (!sites.includes(x.site)) problems.push(`${sat}: ${s}'s array ${x.array} is at site ${x.site}, which has no controller (controllers at ${sites.join(' and ')})`);
          const held = [...new Set(at2.map((x) => x.site))];
          if (held.length === 1) problems.push(`${sat}: every array of ${s} is at site ${held[0]}: a set with no image at another site cannot be moved`);
          else for (const site of sites) if (!held.includes(site)) problems.push(`${sat}: ${s} has no image at site ${site} (it must have one at each controller's site)`);
        }
        volumeSets.push(s);
      });
    let preferredSite = home ?? '';
    if (o.preferredSite !== undefined) {
      const choices = sites ?? w.sites.map((s) => s.name);
      if (typeof o.preferredSite !== 'string' || !choices.includes(o.preferredSite)) problems.push(`${at}.preferredSite must be ${sites ? "a controller's site" : 'a site of this lab'} (${choices.join(', ')}), not ${JSON.stringify(o.preferredSite)}`);
      else preferredSite = o.preferredSite;
    }
    out.push({
      name,
      volumeSets,
      preferredSite,
      failover: policy(o.failover, `${at}.failover`, problems),
      failback: policy(o.failback, `${at}.failback`, problems),
      usePitCopy: yesNo(o.usePitCopy, `${at}.usePitCopy`, false, problems),
      storageTimeoutMs: duration(o.storageTimeout, `${at}.storageTimeout`, STORAGE_TIMEOUT_MS, 1000, 3_600_000, problems),
      resources: parseResources(o.resources, `${at}.resources`, problems),
    });
  });
  return out;
}

/** The lab's site automation, or undefined when the file has none; every problem is listed. */
export function parseAutomation(v: unknown, w: World, ctx: Ctx): AutomationSpec | undefined {
  const { problems } = ctx;
  if (v === undefined) return undefined;
  const o = mapping(v, 'automation', KEYS, '{ secret: ..., controllers: [{ site: east }, { site: west }], resourceGroups: [...] }', problems);
  if (!o) return undefined;
  const secret = parseSecret(o.secret, problems);
  const declareLostAfterMs = duration(o.declareLostAfter, 'automation.declareLostAfter', DECLARE_LOST_AFTER_MS, 1000, 600_000, problems);
  const controllers = parseControllers(o.controllers, w, ctx);
  const resourceGroups = parseResourceGroups(o.resourceGroups, w, controllers, problems);
  return { secret, declareLostAfterMs, controllers, resourceGroups };
}
