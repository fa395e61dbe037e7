/**
 * A heartbeat agent's configuration: one host of one site, everything resolved (URLs, NBD URIs of
 * the heartbeat volumes, the arrays to promote or fence). `sanbox up` writes it as JSON for each
 * host of a lab's `heartbeat:`; `sanbox hb serve --config FILE` reads it. Every field is checked
 * on load: a bad file is refused whole with the list of problems.
 */
import { readFileSync } from 'node:fs';
import type { SiteRole } from '../message.js';

/** One heartbeat volume as this agent sees it: the image it writes or the image it reads. */
export interface VolumeEndpoint {
  /** the heartbeat mirror's name */
  mirror: string;
  /** `ARRAY:LUN>ARRAY:LUN`, the table's device address */
  address: string;
  /** NBD URIs of the LUN, tried in order (a two-SP array serves a LUN on its owner SP's port) */
  uris: string[];
  /** the array holding this image and its API (to pin the mirror while installed) */
  array: { name: string; url: string; token?: string };
}

export interface ArrayEndpoint {
  name: string;
  url: string;
  token?: string;
}

export interface AgentConfig {
  lab: string;
  cluster: string;
  instance: number;
  host: string;
  site: string;
  production: string;
  standby: string;
  intervalMs: number;
  timeoutIntervals: number;
  recoverAfter: number;
  /** where this agent's API listens (the peers' heartbeats arrive here too) */
  listen: { host: string; port: number };
  /** the hosts of this site in master-preference order (this one included): direct URLs */
  siblings: { name: string; url: string }[];
  /** the other site's hosts, reached through the heartbeat network's link emulator */
  peers: { name: string; url: string }[];
  /** heartbeat volumes this site writes (their primaries are here) */
  send: VolumeEndpoint[];
  /** heartbeat volumes this site reads (their secondaries are here) */
  receive: VolumeEndpoint[];
  /** the witness through this site's witness link */
  witness?: { url: string };
  /** this site's arrays (failure notices watch them) */
  arrays: ArrayEndpoint[];
  /** standby only: what a failover promotes, and on which array */
  failover: { automatic: boolean; mirrors: { name: string; array: ArrayEndpoint }[]; groups: { name: string; array: ArrayEndpoint }[] };
  /** production only: the LUNs a partitioned master fences */
  fence: { enabled: boolean; luns: { lun: string; array: ArrayEndpoint }[] };
  /** a shell command per notice level */
  actions: Partial<Record<string, string>>;
  /** the agent's own directory: its status table and log */
  stateDir: string;
}

export class AgentConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid heartbeat agent configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Checks a parsed configuration; throws AgentConfigError listing every problem. */
export function checkAgentConfig(v: unknown): AgentConfig {
  const problems: string[] = [];
  if (!isObj(v)) throw new AgentConfigError(['the configuration must be a JSON object']);
  const str = (k: string) => (typeof v[k] === 'string' && v[k] !== '' ? undefined : problems.push(`${k} must be a non-empty string`));
  const int = (k: string, min: number, max: number) => (Number.isInteger(v[k]) && (v[k] as number) >= min && (v[k] as number) <= max ? undefined : problems.push(`${k} must be an integer ${min}-${max}`));
  ['lab', 'cluster', 'host', 'site', 'production', 'standby', 'stateDir'].forEach(str);
  int('instance', 1, 0xffffffff);
  int('intervalMs', 10, 600_000);
  int('timeoutIntervals', 2, 1000);
  int('recoverAfter', 1, 1000);
  if (v.site !== v.production && v.site !== v.standby) problems.push(`site ${String(v.site)} is neither the production (${String(v.production)}) nor the standby (${String(v.standby)})`);
  if (!isObj(v.listen) || typeof v.listen.host !== 'string' || !Number.isInteger(v.listen.port)) problems.push('listen must be { host, port }');
  for (const k of ['siblings', 'peers', 'send', 'receive', 'arrays']) if (!Array.isArray(v[k])) problems.push(`${k} must be a list`);
  if (Array.isArray(v.siblings) && !v.siblings.some((s) => isObj(s) && s.name === v.host)) problems.push(`siblings must include this host ${String(v.host)}`);
  if (!isObj(v.failover) || !Array.isArray(v.failover.mirrors) || !Array.isArray(v.failover.groups)) problems.push('failover must be { automatic, mirrors: [], groups: [] }');
  if (!isObj(v.fence) || typeof v.fence.enabled !== 'boolean' || !Array.isArray(v.fence.luns)) problems.push('fence must be { enabled, luns: [] }');
  if (!isObj(v.actions)) problems.push('actions must be an object');
  if (problems.length) throw new AgentConfigError(problems);
  return v as unknown as AgentConfig;
}

export function loadAgentConfig(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new AgentConfigError([`cannot read ${path}: ${(e as Error).message}`]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new AgentConfigError([`${path} is not JSON: ${(e as Error).message}`]);
  }
  return checkAgentConfig(parsed);
}

/** The site's role, and the other site's. */
export function roleOf(c: AgentConfig): SiteRole {
  return c.site === c.production ? 'production' : 'standby';
}

export function timeoutMsOf(c: AgentConfig): number {
  return c.intervalMs * c.timeoutIntervals;
}
