/**
 * The lab as the page draws it, gathered in one answer: the supervisor's view (arrays and their
 * supervision state, sites, links, the lab file's mirrors and groups), each running array's
 * `/v1/status`, `/v1/mirrors` (with each primary's region map) and `/v1/groups`, and each link
 * emulator's `/v1/status`. A part that cannot be read is null with the array marked unreachable:
 * the page shows it, it is no error. No token appears in it.
 */
import { arrayUp, monitorOf, readJson, type DashboardLab } from './lab.js';

type Json = Record<string, any>;

export interface TopologyArray {
  name: string;
  site?: string;
  /** supervision state (running, crashed, restarting...) */
  state: string;
  held: boolean;
  reachable: boolean;
  power?: string;
  sps: { name: string; state: string; cacheMode?: string; lunsOwned: number[] }[];
  luns: { id: number; name: string; size: number; state: string; owner?: string; sessions: number }[];
}

export interface TopologyLink {
  name: string;
  a: string;
  b: string;
  /** up, cut, partially-cut, stalled, stopped; unknown when unreadable */
  state: string;
  latencyMs?: number;
  cut: Record<string, boolean>;
}

export interface TopologyMirror {
  name: string;
  array: string;
  lun: string;
  state: string;
  images: { array: string; lun: number; role: string; state: string | null; reachability: string; fractured: boolean; fractureLogBytes: number; resync: { done: number; total: number; rate: number } | null }[];
  /** The primary's region map (GET /v1/mirrors/M/regions): null when it did not answer. */
  regions: Json | null;
}

/** Buckets of a mirror's heatmap rows on the page. */
export const HEATMAP_BUCKETS = 128;

export interface TopologyGroup {
  name: string;
  array: string;
  mode: string;
  role: string;
  paused: boolean;
  bypass: boolean;
  members: string[];
  secondaries: string[];
  backlogEntries: number;
  writelogPercent: number;
  lagMs: number;
}

/** A resource of the pair resync monitor (src/monitor): a mirror or group it watches. */
export interface TopologyMonitorResource {
  app: string;
  deviceGroup: string;
  instance: string;
  /** connected, resync, suspended, error-suspended, deleted, unknown */
  pair: string;
  reason: string;
  /** watching, resyncing, backoff, held */
  phase: string;
  autorecover: boolean;
  lastAutoResync: string | null;
}

export interface Topology {
  lab: string;
  state: string;
  time: string;
  sites: { name: string; arrays: string[]; failed?: boolean }[];
  arrays: TopologyArray[];
  links: TopologyLink[];
  mirrors: TopologyMirror[];
  groups: TopologyGroup[];
  /** The lab's monitor: null without one; `reachable: false` when it does not answer. */
  monitor: { reachable: boolean; resources: TopologyMonitorResource[] } | null;
  /** Which faults the page may offer (the supervisor's array crash/restart need its control API). */
  faults: { arrayCrash: boolean };
}

export async function gatherTopology(lab: DashboardLab): Promise<Topology> {
  const arrays = await Promise.all(
    lab.arrays.map(async (a) => {
      const up = arrayUp(a);
      const [status, mirrors, groups] = up ? await Promise.all([readJson<Json>(a.api, '/v1/status'), readJson<Json>(a.api, '/v1/mirrors'), readJson<Json>(a.api, '/v1/groups')]) : [];
      // each mirror once: as its primary sees it, with the logs only the primary holds
      const primaries = ((mirrors?.mirrors ?? []) as Json[]).filter((m) => m.local?.role === 'primary');
      const regionMaps = await Promise.all(primaries.map(async (m) => [m, await readJson<Json>(a.api, `/v1/mirrors/${encodeURIComponent(m.record.name)}/regions?buckets=${HEATMAP_BUCKETS}`)] as const));
      return { a, status, regionMaps, groups };
    }),
  );
  const links = await Promise.all((lab.links ?? []).map(async (l) => ({ l, status: await readJson<Json>(l.api, '/v1/status') })));
  const monitorApi = monitorOf(lab);
  const monitor = monitorApi ? await readJson<Json>(monitorApi, '/v1/resources') : undefined;
  const topo: Topology = {
    lab: lab.lab,
    state: lab.state,
    time: new Date().toISOString(),
    sites: lab.sites ?? [],
    arrays: [],
    links: [],
    mirrors: [],
    groups: [],
    monitor: monitorApi ? { reachable: monitor !== undefined, resources: ((monitor?.resources ?? []) as Json[]).map(monitorResource) } : null,
    faults: { arrayCrash: lab.control !== undefined },
  };
  for (const { a, status, regionMaps, groups } of arrays) {
    const lunName = new Map<number, string>();
    for (const l of (status?.luns ?? []) as Json[]) lunName.set(l.id, l.name);
    topo.arrays.push({
      name: a.name,
      ...(a.site ? { site: a.site } : {}),
      state: a.state ?? 'running',
      held: a.held === true,
      reachable: status !== undefined,
      ...(status?.power ? { power: String(status.power) } : {}),
      sps: ((status?.sps ?? a.sps ?? []) as Json[]).map((s) => ({ name: s.name, state: s.state ?? 'unknown', ...(s.cache?.mode ? { cacheMode: s.cache.mode } : {}), lunsOwned: s.lunsOwned ?? [] })),
      luns: ((status?.luns ?? []) as Json[]).map((l) => ({ id: l.id, name: l.name, size: l.size, state: l.state, ...(l.currentOwner ? { owner: l.currentOwner } : {}), sessions: l.sessions ?? 0 })),
    });
    for (const [m, regions] of regionMaps) {
      topo.mirrors.push({
        name: m.record.name,
        array: a.name,
        lun: m.local.lunName ?? String(m.local.lun),
        state: m.record.state,
        images: (m.images as Json[]).map((i) => ({
          array: i.array,
          lun: i.lun,
          role: i.role,
          state: i.state,
          reachability: i.reachability,
          fractured: i.fractured === true,
          fractureLogBytes: i.fractureLog?.bytes ?? 0,
          resync: i.resync ? { done: i.resync.bytesDone, total: i.resync.bytesTotal, rate: i.resync.rate } : null,
        })),
        regions: regions ?? null,
      });
    }
    for (const g of (groups?.groups ?? []) as Json[]) {
      if (g.role !== 'primary') continue;
      topo.groups.push({
        name: g.record.name,
        array: a.name,
        mode: g.record.mode,
        role: g.role,
        paused: g.record.paused === true,
        bypass: g.record.bypass?.on === true,
        members: (g.members as Json[]).map((x) => x.name),
        secondaries: [...new Set((g.members as Json[]).flatMap((x) => x.secondaries as string[]))],
        backlogEntries: g.metrics?.entriesWaiting ?? 0,
        writelogPercent: g.metrics?.pctwl ?? 0,
        lagMs: g.metrics?.oldestEntryAgeMs ?? 0,
      });
    }
  }
  for (const { l, status } of links) {
    topo.links.push({ name: l.name, a: l.a, b: l.b, state: status?.state ?? 'unknown', ...(status ? { latencyMs: status.settings?.['a-to-b']?.latencyMs } : {}), cut: status?.cut ?? {} });
  }
  return topo;
}

function monitorResource(r: Json): TopologyMonitorResource {
  return {
    app: r.appName,
    deviceGroup: r.deviceGroup,
    instance: withoutCredentials(String(r.instance)),
    pair: r.pair,
    reason: r.reason,
    phase: r.phase,
    autorecover: r.autorecover === true,
    lastAutoResync: r.lastAutoResync?.time ?? null,
  };
}

/** An instance given as an API URL may carry its token as the password: never to the page. */
function withoutCredentials(instance: string): string {
  if (!/^https?:\/\//.test(instance)) return instance;
  try {
    const u = new URL(instance);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(an API URL)';
  }
}
