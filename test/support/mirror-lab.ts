// Two (or three) real arrays in this process, each with its remote-link port, joined by real link
// emulators (TCP proxies) so tests can cut, delay and restore the links.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArray, type RunningArray, type ArrayServiceConfig } from '../../src/control/service.js';
import { LinkEmulator } from '../../src/link/index.js';
import type { MirrorNode, MirrorTimers } from '../../src/replication/index.js';
import type { BlockDevice } from '../../src/block/index.js';
import { freePort, until } from './net.js';

export { freePort, until };

export interface Site {
  name: string;
  dir: string;
  linkPort: number;
  running: RunningArray | null;
  cfg: ArrayServiceConfig;
}

export interface Lab {
  sites: Record<string, Site>;
  links: Record<string, LinkEmulator>;
  node(name: string): MirrorNode;
  /** The host-facing device of a LUN (through the replication layer), as NBD sessions see it. */
  hostDevice(name: string, lun?: string): BlockDevice;
  start(name: string): Promise<RunningArray>;
  stop(name: string): Promise<void>;
  close(): Promise<void>;
  events(name: string, type?: string): Array<Record<string, unknown>>;
}

export const SECRET = 'test-secret-0123456789';

/**
 * A link emulator between two remote-link ports: `toB` is where alpha dials to reach bravo's
 * port `bPort`, `toA` where bravo dials to reach alpha's `aPort`.
 */
export async function linkBetween(aPort: number, bPort: number, opts: Partial<ConstructorParameters<typeof LinkEmulator>[0]> = {}): Promise<{ emu: LinkEmulator; toA: number; toB: number }> {
  const emu = new LinkEmulator({
    name: 'alpha-bravo',
    a: 'alpha',
    b: 'bravo',
    routes: [
      { name: 'to-b', listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: bPort }, forward: 'a-to-b' },
      { name: 'to-a', listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: aPort }, forward: 'b-to-a' },
    ],
    cutResetMs: 500,
    ...opts,
  });
  await emu.start();
  const st = emu.status();
  return { emu, toB: st.routes.find((r) => r.name === 'to-b')!.listen.port, toA: st.routes.find((r) => r.name === 'to-a')!.listen.port };
}

/** Arrays named `names`, each with LUNs `luns`; a link emulator between every pair. */
export async function makeLab(names: string[], luns: { name: string; size: number }[], opts: { latencyMs?: number; timers?: Partial<MirrorTimers> } = {}): Promise<Lab> {
  const root = await mkdtemp(join(tmpdir(), 'sanbox-mirror-'));
  const sites: Record<string, Site> = {};
  for (const n of names) {
    sites[n] = { name: n, dir: join(root, n), linkPort: await freePort(), running: null, cfg: undefined as unknown as ArrayServiceConfig };
  }
  const links: Record<string, LinkEmulator> = {};
  const peers: Record<string, { array: string; host: string; port: number; secret: string }[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < names.length; i++)
    for (let j = i + 1; j < names.length; j++) {
      const a = names[i]!;
      const b = names[j]!;
      const { emu, toA, toB } = await linkBetween(sites[a]!.linkPort, sites[b]!.linkPort, {
        name: `${a}-${b}`,
        a,
        b,
        settings: opts.latencyMs ? { 'a-to-b': { latencyMs: opts.latencyMs }, 'b-to-a': { latencyMs: opts.latencyMs } } : undefined,
      });
      links[`${a}-${b}`] = emu;
      peers[a]!.push({ array: b, host: '127.0.0.1', port: toB, secret: SECRET });
      peers[b]!.push({ array: a, host: '127.0.0.1', port: toA, secret: SECRET });
    }
  const evs: Record<string, Array<Record<string, unknown>>> = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) {
    sites[n]!.cfg = {
      name: n,
      dir: sites[n]!.dir,
      nbd: { bind: '127.0.0.1', port: 0 },
      api: false,
      luns,
      sync: false,
      remoteLink: { bind: '127.0.0.1', port: sites[n]!.linkPort, peers: peers[n]!, timers: opts.timers },
    };
  }
  const lab: Lab = {
    sites,
    links,
    node(name) {
      const m = sites[name]!.running?.mirrors;
      if (!m) throw new Error(`array ${name} is not running`);
      return m;
    },
    hostDevice(name, lun = luns[0]!.name) {
      const exp = sites[name]!.running!.array.catalog().lookup(lun);
      if (!exp) throw new Error(`no LUN ${lun} on ${name}`);
      return exp.device;
    },
    async start(name) {
      const s = sites[name]!;
      s.running = await startArray(s.cfg);
      s.running.array.on('event', (e: Record<string, unknown>) => evs[name]!.push(e));
      return s.running;
    },
    async stop(name) {
      const s = sites[name]!;
      await s.running?.close(100);
      s.running = null;
    },
    async close() {
      for (const n of names) await lab.stop(n).catch(() => undefined);
      for (const l of Object.values(links)) await l.stop().catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    },
    events(name, type) {
      return evs[name]!.filter((e) => !type || e.type === type);
    },
  };
  for (const n of names) await lab.start(n);
  return lab;
}

/** alpha and bravo with LUNs disk0 and disk1 mirrored as m-disk0, m-disk1, grouped as g0 and journaling. */
export async function groupLab(attributes: Record<string, unknown> = {}, size = 16 * 1024 * 1024): Promise<Lab> {
  const l = await makeLab(['alpha', 'bravo'], [
    { name: 'disk0', size },
    { name: 'disk1', size },
  ], { timers: { reconnectMaxMs: 300 } });
  const n = l.node('alpha');
  for (const lun of ['disk0', 'disk1']) {
    await n.create({ lun, name: `m-${lun}` });
    await n.addSecondary(`m-${lun}`, { array: 'bravo', lun, synchronized: true });
  }
  await until(() => n.list().every((m) => m.images[1]!.link === 'connected'), 10_000, 'links');
  await n.groups.create({ name: 'g0', members: ['m-disk0', 'm-disk1'], attributes: { mode: 'asynchronous', ...attributes } });
  await until(() => n.groups.get('g0').senders.every((s) => s.state === 'running') && (attributes.mode === 'synchronous' || !n.groups.get('g0').record.bypass.on), 10_000, 'group journaling');
  return l;
}
