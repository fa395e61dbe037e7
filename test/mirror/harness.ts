// Two (or three) real arrays in this process, each with its remote-link port, joined by real link
// emulators (TCP proxies) so tests can cut, delay and restore the links.
import { createServer, type AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArray, type RunningArray, type ArrayServiceConfig } from '../../src/control/service.js';
import { LinkEmulator } from '../../src/link/index.js';
import type { MirrorNode, MirrorTimers } from '../../src/replication/index.js';
import type { BlockDevice } from '../../src/block/index.js';

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

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
      const emu = new LinkEmulator({
        name: `${a}-${b}`,
        a,
        b,
        routes: [
          { name: 'to-b', listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: sites[b]!.linkPort }, forward: 'a-to-b' },
          { name: 'to-a', listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: sites[a]!.linkPort }, forward: 'b-to-a' },
        ],
        settings: opts.latencyMs ? { 'a-to-b': { latencyMs: opts.latencyMs }, 'b-to-a': { latencyMs: opts.latencyMs } } : undefined,
        cutResetMs: 500,
      });
      await emu.start();
      links[`${a}-${b}`] = emu;
      const st = emu.status();
      const toB = st.routes.find((r) => r.name === 'to-b')!.listen.port;
      const toA = st.routes.find((r) => r.name === 'to-a')!.listen.port;
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

/** Polls `fn` until it returns true (or throws after `ms`). */
export async function until(fn: () => boolean | Promise<boolean>, ms = 20_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}
