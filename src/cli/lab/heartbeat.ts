/**
 * `heartbeat:` of a lab file: the heartbeat agents `sanbox up` starts (seed 004, docs/heartbeat.md).
 *
 *     heartbeat:
 *       cluster: default            # cluster name carried in every heartbeat; instance: its epoch
 *       instance: 1
 *       production: alpha           # site names (sites:, or an array's implicit site)
 *       standby: bravo
 *       interval: 500ms             # a heartbeat per interval on every enabled path
 *       timeout: 6                  # intervals without a valid heartbeat before a path is FAILED
 *       recoverAfter: 3             # consecutive valid heartbeats before a FAILED path is ENABLE again
 *       hosts:                      # one agent each; the first of a site is its master at start
 *         - { name: alpha-1, site: alpha, port: 8601 }
 *         - { name: bravo-1, site: bravo, port: 8611 }
 *       network: { latency: 1, api: { port: 8496 } }  # the agents' own link emulator (link hb-net)
 *       mirrors: [hb0, hb1]         # production -> standby heartbeat mirrors (at least two)
 *       reverseMirrors: [hb2]       # standby -> production (bi-directional heartbeats), optional
 *       witness: { port: 8620, latency: 1 }           # optional third-site witness
 *       failover: { promote: [m0, g0], automatic: yes }
 *       fence: yes                  # default: yes with a witness (a partitioned production fences itself)
 *       actions: { SYSTEM DOWN: "logger -t sanbox hb down", SERIOUS: ... }
 */
import { checkName } from '../../array/index.js';
import { HB_VOLUME_MIN_BYTES } from '../../heartbeat/index.js';
import { isObj, type LabArray, type LabGroup, type LabHeartbeat, type LabMirror, type LabSite } from './types.js';
import { parseDuration } from './values.js';

const KEYS = ['cluster', 'instance', 'production', 'standby', 'interval', 'timeout', 'recoverAfter', 'hosts', 'network', 'mirrors', 'reverseMirrors', 'witness', 'failover', 'fence', 'actions'];
export const NOTICE_LEVEL_NAMES = ['SYSTEM DOWN', 'SERIOUS', 'MODERATE', 'TEMPORALLY'] as const;
/** The heartbeat network's link emulator, as `sanbox link` names it. */
export const HB_NETWORK_LINK = 'hb-net';

/** The link emulators `up` starts for a lab's heartbeat: the agents' network, and one per site to the witness. */
export function heartbeatLinkNames(hb: LabHeartbeat): string[] {
  return [HB_NETWORK_LINK, ...(hb.witness ? [hb.production, hb.standby].map((s) => `hb-witness-${s}`) : [])];
}

interface Ctx {
  problems: string[];
  usePort(port: number, what: string): void;
}

function port(v: unknown, at: string, ctx: Ctx): number {
  if (v === undefined) return 0;
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) return (ctx.problems.push(`${at} must be an integer 0-65535 (0: any free port), not ${JSON.stringify(v)}`), 0);
  ctx.usePort(v as number, at);
  return v as number;
}

function ms(v: unknown, at: string, dflt: number, problems: string[]): number {
  if (v === undefined) return dflt;
  const n = typeof v === 'number' ? v : Number.NaN;
  if (Number.isFinite(n) && n >= 0 && n <= 60_000) return n;
  return (problems.push(`${at} must be milliseconds 0-60000, not ${JSON.stringify(v)}`), dflt);
}

function count(v: unknown, at: string, dflt: number, min: number, max: number, problems: string[]): number {
  if (v === undefined) return dflt;
  if (Number.isInteger(v) && (v as number) >= min && (v as number) <= max) return v as number;
  return (problems.push(`${at} must be an integer ${min}-${max}, not ${JSON.stringify(v)}`), dflt);
}

function yesNo(v: unknown, at: string, dflt: boolean, problems: string[]): boolean {
  if (v === undefined) return dflt;
  if (v === true || v === 'yes') return true;
  if (v === false || v === 'no') return false;
  return (problems.push(`${at} must be yes or no, not ${JSON.stringify(v)}`), dflt);
}

function names(v: unknown, at: string, problems: string[]): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) return (problems.push(`${at} must be a list of names like [hb0, hb1]`), []);
  if (new Set(v).size !== v.length) problems.push(`${at} lists a name twice`);
  return v as string[];
}

interface World {
  arrays: LabArray[];
  sites: LabSite[];
  mirrors: LabMirror[];
  groups: LabGroup[];
}

const siteOf = (w: World, array: string) => w.sites.find((s) => s.arrays.includes(array))?.name;

/** A heartbeat mirror must run from `from` to `to`, allow secondary reads, and stay out of every group. */
function checkHeartbeatMirror(w: World, name: string, from: string, to: string, at: string, problems: string[]): void {
  const m = w.mirrors.find((x) => x.name === name);
  if (!m) return void problems.push(`${at}: no mirror ${JSON.stringify(name)} in this lab (mirrors:)`);
  if (siteOf(w, m.primary.array) !== from) problems.push(`${at}: mirror ${name}'s primary ${m.primary.array} is not at site ${from}`);
  if (m.secondaries.length !== 1 || siteOf(w, m.secondaries[0]!.array) !== to) problems.push(`${at}: mirror ${name} must have exactly one secondary, at site ${to}`);
  if (m.allowSecondaryReads !== true) problems.push(`${at}: mirror ${name} needs secondaryReads: true (the other site reads heartbeats from its secondary)`);
  for (const ref of [m.primary, ...m.secondaries]) {
    const lun = w.arrays.find((a) => a.name === ref.array)?.luns.find((l) => l.name === String(ref.lun));
    if (lun && lun.size < HB_VOLUME_MIN_BYTES) problems.push(`${at}: LUN ${ref.array}:${ref.lun} is ${lun.size} bytes; a heartbeat volume needs at least ${HB_VOLUME_MIN_BYTES} (the heartbeat area and the status table)`);
  }
  const group = w.groups.find((g) => g.members.includes(name));
  if (group) problems.push(`${at}: mirror ${name} is a member of group ${group.name}; heartbeat mirrors stay out of data consistency groups (a split of the group would stop the heartbeats)`);
}

function parseHosts(v: unknown, sites: [string, string], known: string[], ctx: Ctx): LabHeartbeat['hosts'] {
  const { problems } = ctx;
  if (!Array.isArray(v) || v.length === 0) return (problems.push('heartbeat.hosts must list the agents, like [{ name: alpha-1, site: alpha }, { name: bravo-1, site: bravo }]'), []);
  const out: LabHeartbeat['hosts'] = [];
  v.forEach((h: unknown, i: number) => {
    const at = `heartbeat.hosts[${i}]`;
    if (!isObj(h)) return void problems.push(`${at} must be a mapping like { name: alpha-1, site: alpha, port: 8601 }`);
    for (const k of Object.keys(h)) if (!['name', 'site', 'bind', 'port'].includes(k)) problems.push(`${at}: unknown key "${k}" (expected name, site, bind, port)`);
    const bad = checkName(h.name, `${at}.name`);
    if (bad) return void problems.push(bad);
    if (out.some((x) => x.name === h.name)) problems.push(`${at}: host ${String(h.name)} is listed twice`);
    if (typeof h.site !== 'string' || !sites.includes(h.site)) return void problems.push(`${at}.site must be the production or the standby site (${sites.filter((s) => typeof s === 'string').join(' or ')}), not ${JSON.stringify(h.site)}`);
    const bind = h.bind === undefined ? '127.0.0.1' : h.bind;
    if (typeof bind !== 'string' || bind === '') return void problems.push(`${at}.bind must be an address`);
    out.push({ name: h.name as string, site: h.site, bind, port: port(h.port, `${at}.port`, ctx) });
  });
  // a missing or unknown production or standby is reported once, by parseHeartbeat
  for (const s of sites) if (known.includes(s) && !out.some((h) => h.site === s)) problems.push(`heartbeat.hosts: site ${s} has no host (each site needs an agent)`);
  return out;
}

function parseNetwork(v: unknown, ctx: Ctx): LabHeartbeat['network'] {
  const net: LabHeartbeat['network'] = { latencyMs: 0, jitterMs: 0, api: { bind: '127.0.0.1', port: 0 } };
  if (v === undefined) return net;
  if (!isObj(v)) return (ctx.problems.push('heartbeat.network must be a mapping like { latency: 1, api: { port: 8496 } }'), net);
  for (const k of Object.keys(v)) if (!['latency', 'jitter', 'api'].includes(k)) ctx.problems.push(`heartbeat.network: unknown key "${k}" (expected latency, jitter, api)`);
  net.latencyMs = ms(v.latency, 'heartbeat.network.latency', 0, ctx.problems);
  net.jitterMs = ms(v.jitter, 'heartbeat.network.jitter', 0, ctx.problems);
  if (v.api !== undefined) {
    if (!isObj(v.api)) ctx.problems.push('heartbeat.network.api must be a mapping like { port: 8496 }');
    else net.api.port = port(v.api.port, 'heartbeat.network.api.port', ctx);
  }
  return net;
}

function parseWitness(v: unknown, ctx: Ctx): LabHeartbeat['witness'] {
  if (v === undefined) return undefined;
  if (!isObj(v)) return void ctx.problems.push('heartbeat.witness must be a mapping like { port: 8620, latency: 1 }');
  for (const k of Object.keys(v)) if (!['port', 'latency'].includes(k)) ctx.problems.push(`heartbeat.witness: unknown key "${k}" (expected port, latency)`);
  return { bind: '127.0.0.1', port: port(v.port, 'heartbeat.witness.port', ctx), latencyMs: ms(v.latency, 'heartbeat.witness.latency', 0, ctx.problems) };
}

function parseFailover(v: unknown, w: World, hb: { production: string; standby: string; mirrors: string[] }, problems: string[]): LabHeartbeat['failover'] {
  const out: LabHeartbeat['failover'] = { mirrors: [], groups: [], automatic: true };
  if (v === undefined) return out;
  if (!isObj(v)) return (problems.push('heartbeat.failover must be a mapping like { promote: [m0, g0], automatic: yes }'), out);
  for (const k of Object.keys(v)) if (!['promote', 'automatic'].includes(k)) problems.push(`heartbeat.failover: unknown key "${k}" (expected promote, automatic)`);
  out.automatic = yesNo(v.automatic, 'heartbeat.failover.automatic', true, problems);
  for (const n of names(v.promote, 'heartbeat.failover.promote', problems)) {
    const at = `heartbeat.failover.promote: ${n}`;
    if (hb.mirrors.includes(n)) problems.push(`${at} is a heartbeat mirror, not data`);
    const m = w.mirrors.find((x) => x.name === n);
    const g = w.groups.find((x) => x.name === n);
    const primary = m?.primary.array ?? g?.primary;
    if (primary === undefined) problems.push(`${at}: no mirror or group of that name in this lab`);
    else if (siteOf(w, primary) !== hb.production) problems.push(`${at}: its primary array ${primary} is not at the production site ${hb.production}`);
    else if (m && w.groups.some((x) => x.members.includes(n))) problems.push(`${at} is a member of a group: promote the group`);
    else (m ? out.mirrors : out.groups).push(n);
  }
  return out;
}

function parseActions(v: unknown, problems: string[]): LabHeartbeat['actions'] {
  const out: LabHeartbeat['actions'] = {};
  if (v === undefined) return out;
  if (!isObj(v)) return (problems.push(`heartbeat.actions must be a mapping of a level (${NOTICE_LEVEL_NAMES.join(', ')}) to a shell command`), out);
  for (const [k, cmd] of Object.entries(v)) {
    if (!(NOTICE_LEVEL_NAMES as readonly string[]).includes(k)) problems.push(`heartbeat.actions: unknown level "${k}" (expected ${NOTICE_LEVEL_NAMES.join(', ')})`);
    else if (typeof cmd !== 'string' || cmd.trim() === '') problems.push(`heartbeat.actions.${k} must be a shell command`);
    else out[k as (typeof NOTICE_LEVEL_NAMES)[number]] = cmd;
  }
  return out;
}

/** The lab's heartbeat, or undefined when the file has none; every problem is listed. */
export function parseHeartbeat(v: unknown, w: World, ctx: Ctx): LabHeartbeat | undefined {
  const { problems } = ctx;
  if (v === undefined) return undefined;
  if (!isObj(v)) return void problems.push('"heartbeat" must be a mapping like { production: alpha, standby: bravo, hosts: [...], mirrors: [hb0, hb1] }');
  for (const k of Object.keys(v)) if (!KEYS.includes(k)) problems.push(`heartbeat: unknown key "${k}" (expected ${KEYS.join(', ')})`);
  const siteNames = w.sites.map((s) => s.name);
  const production = v.production as string;
  const standby = v.standby as string;
  for (const [k, s] of [['production', production], ['standby', standby]] as const) {
    if (s === undefined) problems.push(`heartbeat.${k} is required: a site of this lab (${siteNames.join(', ')})`);
    else if (typeof s !== 'string' || !siteNames.includes(s)) problems.push(`heartbeat.${k} must be a site of this lab (${siteNames.join(', ')}), not ${JSON.stringify(s)}`);
  }
  if (typeof production === 'string' && production === standby) problems.push('heartbeat: production and standby must be different sites');
  const cluster = v.cluster === undefined ? 'default' : v.cluster;
  const badCluster = checkName(cluster, 'heartbeat.cluster');
  if (badCluster) problems.push(badCluster);
  const intervalMs = v.interval === undefined ? 1000 : parseDuration(v.interval);
  if (intervalMs === undefined || intervalMs < 50 || intervalMs > 600_000) problems.push(`heartbeat.interval must be a duration from 50ms to 10m (500ms, 1s), not ${JSON.stringify(v.interval)}`);
  const mirrors = names(v.mirrors, 'heartbeat.mirrors', problems);
  if (v.mirrors !== undefined && mirrors.length < 2) problems.push('heartbeat.mirrors: install at least two heartbeat mirrors (one failed volume must not look like a dead site)');
  mirrors.forEach((m) => checkHeartbeatMirror(w, m, production, standby, `heartbeat.mirrors: ${m}`, problems));
  const reverseMirrors = names(v.reverseMirrors, 'heartbeat.reverseMirrors', problems);
  reverseMirrors.forEach((m) => checkHeartbeatMirror(w, m, standby, production, `heartbeat.reverseMirrors: ${m}`, problems));
  // An agent keeps the addresses it started with: an array on "any free port" comes back elsewhere after a restart.
  for (const site of [production, standby]) {
    for (const name of w.sites.find((s) => s.name === site)?.arrays ?? []) {
      const a = w.arrays.find((x) => x.name === name);
      if (a && (a.api.port === 0 || (a.nbd.port === 0 && !a.nbd.ports))) problems.push(`heartbeat: array ${name} needs fixed nbd and api ports (not 0): its heartbeat agents keep the addresses they start with, and a restarted array on any free port would come back elsewhere`);
    }
  }
  const witness = parseWitness(v.witness, ctx);
  const hb: LabHeartbeat = {
    cluster: cluster as string,
    instance: count(v.instance, 'heartbeat.instance', 1, 1, 0xffffffff, problems),
    production,
    standby,
    intervalMs: intervalMs ?? 1000,
    timeoutIntervals: count(v.timeout, 'heartbeat.timeout', 6, 2, 1000, problems),
    recoverAfter: count(v.recoverAfter, 'heartbeat.recoverAfter', 3, 1, 1000, problems),
    hosts: parseHosts(v.hosts, [production, standby], siteNames, ctx),
    network: parseNetwork(v.network, ctx),
    mirrors,
    reverseMirrors,
    ...(witness ? { witness } : {}),
    failover: parseFailover(v.failover, w, { production, standby, mirrors: [...mirrors, ...reverseMirrors] }, problems),
    fence: yesNo(v.fence, 'heartbeat.fence', witness !== undefined, problems),
    actions: parseActions(v.actions, problems),
  };
  if (hb.fence && !witness) problems.push('heartbeat.fence needs a witness: without one a partitioned production cannot tell a partition from a dead standby');
  return hb;
}
