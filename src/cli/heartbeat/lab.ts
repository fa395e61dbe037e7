/**
 * A lab's heartbeat (`heartbeat:` of the lab file): `sanbox up` starts the heartbeat network's
 * link emulator (`hb-net`: one route per host, so the agents' network can be cut apart from the
 * arrays' remote links), the witness and its links (`hb-witness-SITE`) when configured, then one
 * agent process per host (`sanbox hb serve --config`), each with its configuration resolved here.
 * A failed site takes its hosts down with its arrays (`fault site-fail`) and brings them back.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LinkApiServer, LinkEmulator, type RouteConfig } from '../../link/index.js';
import { Witness, getJson, pinMirror, type AgentConfig, type ArrayEndpoint, type VolumeEndpoint } from '../../heartbeat/agent/index.js';
import { CliError, EXIT, labsDir } from '../common.js';
import { freePort, spawnService, stopService } from '../service-process.js';
import { HB_NETWORK_LINK, type Lab, type LabHeartbeat, type LabState, type LabStateArray, type LabStateHeartbeat } from '../lab.js';
import type { RunningLink } from '../link-verbs.js';

const AGENT_READY_MS = 15_000;
const AGENT_STOP_MS = 5_000;


interface Host {
  name: string;
  site: string;
  url: string;
  config: string;
  proc?: ChildProcess;
}

async function startEmulator(name: string, a: string, b: string, routes: RouteConfig[], latencyMs: number, jitterMs: number, api: { bind: string; port: number }): Promise<RunningLink> {
  const settings = { latencyMs, jitterMs };
  const emulator = new LinkEmulator({ name, a, b, routes, settings: { 'a-to-b': settings, 'b-to-a': settings } });
  await emulator.start();
  const server = new LinkApiServer({ emulator, host: api.bind, port: api.port });
  const url = (await server.listen()).url;
  return { emulator, api: server, state: { name, a, b, api: { url }, routes: emulator.status().routes } };
}

const listenOf = (l: RunningLink, route: string) => {
  const r = l.state.routes.find((x) => x.name === route);
  if (!r) throw new Error(`link ${l.state.name} has no route ${route}`);
  return `http://${r.listen.host}:${r.listen.port}`;
};

/** An array of the running lab, or a clear error. */
export function stateArray(state: LabState, array: string): LabStateArray {
  const a = state.arrays.find((x) => x.name === array);
  if (!a) throw new CliError(EXIT.ERROR, 'not-found', `heartbeat: array ${array} is not in lab ${state.lab}`);
  return a;
}

/** The array's API as an agent calls it. */
export function arrayEndpoint(a: LabStateArray): ArrayEndpoint {
  return { name: a.name, url: a.api.url, ...(a.api.token ? { token: a.api.token } : {}) };
}

/** NBD URIs of a LUN: the array's port first, then its other SPs' (a LUN is served by its owner SP). */
export function lunUris(a: LabStateArray, lun: string): string[] {
  const scheme = a.nbd.tls ? 'nbds' : 'nbd';
  const eps = [{ host: a.nbd.host, port: a.nbd.port }, ...(a.sps ?? []).filter((s) => s.port !== a.nbd.port)];
  return eps.map((e) => `${scheme}://${e.host}:${e.port}/${encodeURIComponent(lun)}`);
}

export class LabHeartbeatRunner {
  readonly links: RunningLink[] = [];
  private witness: Witness | undefined;
  private witnessUrl: string | undefined;
  private readonly hosts: Host[] = [];
  private readonly dir: string;

  constructor(
    private readonly lab: Lab,
    private readonly hb: LabHeartbeat,
    private readonly log: (t: string) => void,
  ) {
    this.dir = join(labsDir(), `${lab.name}.hb`);
  }

  async start(state: LabState): Promise<LabStateHeartbeat> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const hb = this.hb;
    const ports = new Map<string, number>();
    for (const h of hb.hosts) ports.set(h.name, h.port || (await freePort()));
    const hostUrl = (name: string) => `http://${hb.hosts.find((h) => h.name === name)!.bind}:${ports.get(name)}`;
    // the agents' network: a = production, b = standby; a host is reached through its own route
    const routes: RouteConfig[] = hb.hosts.map((h) => ({ name: `to-${h.name}`, listen: { host: '127.0.0.1', port: 0 }, target: { host: h.bind, port: ports.get(h.name)! }, forward: h.site === hb.standby ? 'a-to-b' : 'b-to-a' }));
    const net = await startEmulator(HB_NETWORK_LINK, hb.production, hb.standby, routes, hb.network.latencyMs, hb.network.jitterMs, hb.network.api);
    this.links.push(net);
    const witnessUrl = new Map<string, string>();
    if (hb.witness) {
      this.witness = new Witness({ host: hb.witness.bind, port: hb.witness.port, cluster: hb.cluster, log: (l) => this.log(`[witness] ${l}`) });
      const wport = await this.witness.start();
      this.witnessUrl = `http://${hb.witness.bind}:${wport}`;
      for (const site of [hb.production, hb.standby]) {
        // named as heartbeatLinkNames (src/cli/lab/heartbeat.ts) says
        const link = await startEmulator(`hb-witness-${site}`, site, 'witness', [{ name: 'to-witness', listen: { host: '127.0.0.1', port: 0 }, target: { host: hb.witness.bind, port: wport }, forward: 'a-to-b' }], hb.witness.latencyMs, 0, { bind: '127.0.0.1', port: 0 });
        this.links.push(link);
        witnessUrl.set(site, listenOf(link, 'to-witness'));
      }
    }
    // Fig. 4: the lab's heartbeat mirrors are installed before the first heartbeat (no split from now on)
    for (const m of [...hb.mirrors, ...hb.reverseMirrors]) {
      const v = this.volume(state, m, 'primary');
      await pinMirror(v.array, m, true, `${this.lab.name}/${hb.cluster}`).catch((e: unknown) => {
        throw new CliError(EXIT.ERROR, 'start-failed', `heartbeat: cannot install heartbeat mirror ${m} on ${v.array.name}: ${(e as Error).message}`);
      });
    }
    for (const h of hb.hosts) {
      const cfg = this.agentConfig(h.name, state, { hostUrl, net, witnessUrl, port: ports.get(h.name)! });
      const path = join(this.dir, `${h.name}.config.json`);
      await writeFile(path, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
      this.hosts.push({ name: h.name, site: h.site, url: hostUrl(h.name), config: path });
    }
    await Promise.all(this.hosts.map((h) => this.spawn(h)));
    return this.state();
  }

  state(): LabStateHeartbeat {
    return {
      dir: this.dir,
      hosts: this.hosts.map((h) => ({ name: h.name, site: h.site, pid: h.proc?.pid ?? 0, url: h.url, config: h.config })),
      ...(this.witnessUrl ? { witness: { url: this.witnessUrl } } : {}),
      links: this.links.map((l) => l.state.name),
    };
  }

  private endpoint(state: LabState, array: string): ArrayEndpoint {
    return arrayEndpoint(stateArray(state, array));
  }

  private uris(state: LabState, array: string, lun: string): string[] {
    return lunUris(stateArray(state, array), lun);
  }

  private volume(state: LabState, mirror: string, side: 'primary' | 'secondary'): VolumeEndpoint {
    const m = this.lab.mirrors.find((x) => x.name === mirror)!;
    const s = m.secondaries[0]!;
    const ref = side === 'primary' ? m.primary : s;
    return { mirror, address: `${m.primary.array}:${m.primary.lun}>${s.array}:${s.lun}`, uris: this.uris(state, ref.array, String(ref.lun)), array: this.endpoint(state, ref.array) };
  }

  private agentConfig(host: string, state: LabState, x: { hostUrl: (n: string) => string; net: RunningLink; witnessUrl: Map<string, string>; port: number }): AgentConfig {
    const hb = this.hb;
    const me = hb.hosts.find((h) => h.name === host)!;
    const production = me.site === hb.production;
    const siteArrays = this.lab.sites.find((s) => s.name === me.site)?.arrays ?? [];
    const out = production ? hb.mirrors : hb.reverseMirrors;
    const inn = production ? hb.reverseMirrors : hb.mirrors;
    const secondaryOf = (arrays: string[]) => arrays.find((a) => this.lab.sites.find((s) => s.name === hb.standby)?.arrays.includes(a))!;
    return {
      lab: this.lab.name,
      cluster: hb.cluster,
      instance: hb.instance,
      host,
      site: me.site,
      production: hb.production,
      standby: hb.standby,
      intervalMs: hb.intervalMs,
      timeoutIntervals: hb.timeoutIntervals,
      recoverAfter: hb.recoverAfter,
      listen: { host: me.bind, port: x.port },
      siblings: hb.hosts.filter((h) => h.site === me.site).map((h) => ({ name: h.name, url: x.hostUrl(h.name) })),
      peers: hb.hosts.filter((h) => h.site !== me.site).map((h) => ({ name: h.name, url: listenOf(x.net, `to-${h.name}`) })),
      send: out.map((m) => this.volume(state, m, 'primary')),
      receive: inn.map((m) => this.volume(state, m, 'secondary')),
      ...(x.witnessUrl.has(me.site) ? { witness: { url: x.witnessUrl.get(me.site)! } } : {}),
      arrays: siteArrays.filter((a) => state.arrays.some((s) => s.name === a)).map((a) => this.endpoint(state, a)),
      failover: {
        automatic: hb.failover.automatic,
        mirrors: production ? [] : hb.failover.mirrors.map((n) => ({ name: n, array: this.endpoint(state, secondaryOf(this.lab.mirrors.find((m) => m.name === n)!.secondaries.map((s) => s.array))) })),
        groups: production ? [] : hb.failover.groups.map((n) => ({ name: n, array: this.endpoint(state, secondaryOf(this.lab.groups.find((g) => g.name === n)!.secondaries)) })),
      },
      fence: {
        enabled: production && hb.fence,
        luns: !production
          ? []
          : [...hb.failover.mirrors, ...hb.failover.groups.flatMap((g) => this.lab.groups.find((x) => x.name === g)!.members)].map((n) => {
              const m = this.lab.mirrors.find((x) => x.name === n)!;
              return { lun: String(m.primary.lun), array: this.endpoint(state, m.primary.array) };
            }),
      },
      actions: hb.actions,
      stateDir: this.dir,
    };
  }

  private async spawn(h: Host): Promise<void> {
    h.proc = await spawnService({
      what: `heartbeat agent ${h.name}`,
      args: ['hb', 'serve', '--config', h.config],
      logPath: join(this.dir, `${h.name}.log`),
      readyMs: AGENT_READY_MS,
      ready: async () => (await getJson(`${h.url}/v1/status`, 1000)).ok,
      onExit: (code, signal) => this.log(`heartbeat agent ${h.name} exited (code ${code}, signal ${signal})`),
    });
  }

  private async kill(h: Host, signal: NodeJS.Signals): Promise<number | undefined> {
    const pid = h.proc?.pid;
    return (await stopService(h.proc, signal, AGENT_STOP_MS)) ? pid : undefined;
  }

  /** A failed site: its hosts die at once (SIGKILL) and its heartbeat links are cut. */
  async siteFail(site: string): Promise<Record<string, unknown>> {
    const mine = this.hosts.filter((h) => h.site === site);
    if (!mine.length) return {};
    for (const l of this.links) if (l.state.a === site || l.state.b === site) l.emulator.cutLink('both');
    const killed = await Promise.all(mine.map((h) => this.kill(h, 'SIGKILL')));
    return { hostsKilled: mine.filter((_, i) => killed[i] !== undefined).map((h) => h.name) };
  }

  async siteRestore(site: string): Promise<Record<string, unknown>> {
    const mine = this.hosts.filter((h) => h.site === site);
    if (!mine.length) return {};
    for (const l of this.links) if (l.state.a === site || l.state.b === site) l.emulator.restore();
    await Promise.all(mine.map((h) => this.spawn(h)));
    return { hostsRestarted: mine.map((h) => h.name) };
  }

  async stop(): Promise<void> {
    await Promise.all(this.hosts.map((h) => this.kill(h, 'SIGTERM')));
    await this.witness?.stop();
    for (const l of this.links) {
      await l.api.close();
      await l.emulator.stop();
    }
  }
}
