/**
 * The running lab as the runner sees it: API clients of its arrays, link emulators and
 * supervisor, read from the lab state file (re-read after a restart, since the supervisor
 * rewrites it), and the NBD URIs of its LUNs.
 */
import { ApiClient } from '../../control/index.js';
import type { LabState } from '../../cli/lab/index.js';
import { readLabState, type RunLab } from './lab.js';

export class LabApis {
  private state: LabState;

  constructor(
    readonly lab: RunLab,
    state: LabState,
    /** LUN names per array, from the lab file */
    private readonly luns: Map<string, string[]>,
  ) {
    this.state = state;
  }

  lunNames(array: string): string[] {
    return this.luns.get(array) ?? [];
  }

  refresh(): LabState {
    this.state = readLabState(this.lab);
    return this.state;
  }

  get current(): LabState {
    return this.state;
  }

  private arrayEntry(name: string): LabState['arrays'][number] {
    const a = this.state.arrays.find((x) => x.name === name);
    if (!a) throw new Error(`the lab has no array ${name} (arrays: ${this.state.arrays.map((x) => x.name).join(', ')})`);
    return a;
  }

  array(name: string, timeoutMs?: number): ApiClient {
    const a = this.arrayEntry(name);
    return new ApiClient({ url: a.api.url, token: a.api.token, timeoutMs });
  }

  arrayNames(): string[] {
    return this.state.arrays.map((a) => a.name);
  }

  /** running according to the supervisor (absent state: an older supervisor, running) */
  arrayRunning(name: string): boolean {
    const s = this.arrayEntry(name).state;
    return s === undefined || s === 'running';
  }

  link(name: string): ApiClient {
    const l = (this.state.links ?? []).find((x) => x.name === name);
    if (!l) throw new Error(`the lab has no link ${name}`);
    return new ApiClient({ url: l.api.url, token: l.api.token });
  }

  linkNames(): string[] {
    return (this.state.links ?? []).map((l) => l.name);
  }

  /** The heartbeat agents' APIs (their `/v1/events` are the sources `hb:HOST`). */
  heartbeatHostNames(): string[] {
    return (this.state.heartbeat?.hosts ?? []).map((h) => h.name);
  }

  heartbeat(host: string): ApiClient {
    const h = this.state.heartbeat?.hosts.find((x) => x.name === host);
    if (!h) throw new Error(`the lab has no heartbeat host ${host}`);
    return new ApiClient({ url: h.url });
  }

  /** The site automation controllers' APIs (their `/v1/events` are the sources `automation:SITE`); each request needs the lab's automation token. */
  automationSites(): string[] {
    return (this.state.automation?.controllers ?? []).map((c) => c.site);
  }

  automation(site: string): ApiClient {
    const a = this.state.automation;
    const c = a?.controllers.find((x) => x.site === site);
    if (!a || !c) throw new Error(`the lab has no automation controller at site ${site}`);
    return new ApiClient({ url: c.url, token: a.token });
  }

  control(timeoutMs?: number): ApiClient {
    const c = this.state.control;
    if (!c) throw new Error(`lab ${this.lab.name} has no control API in its state file`);
    return new ApiClient({ url: c.url, token: c.token, timeoutMs });
  }

  /** nbd://HOST:PORT/LUN through each of the array's SP ports (`sps` picks some), or its one port. */
  uris(array: string, lun: string, sps: string[] | null = null): string[] {
    const a = this.arrayEntry(array);
    const ports = a.sps?.length ? a.sps.filter((s) => sps === null || sps.includes(s.name)) : [{ name: '', host: a.nbd.host, port: a.nbd.port }];
    if (ports.length === 0) throw new Error(`array ${array} has no SP ${sps?.join(', ')} (SPs: ${a.sps?.map((s) => s.name).join(', ')})`);
    return ports.map((p) => `nbd://${hostPart(p.host)}:${p.port}/${encodeURIComponent(lun)}`);
  }
}

function hostPart(h: string): string {
  const host = h === '0.0.0.0' || h === '' ? '127.0.0.1' : h === '::' ? '::1' : h;
  return host.includes(':') ? `[${host}]` : host;
}
