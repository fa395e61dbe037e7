// A two-SP array "alpha" (chassis + SP processes A and B) with a remote link, and a single-process
// array "bravo", mirroring to each other over a real remote link. alpha's chassis runs either in
// this process (its MirrorNode, Chassis and events at hand) or as its own process (`sanbox array
// serve --config`, SIGKILL-able like a crashing array). The SP processes run from dist/ (npm run
// build).
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SPS, type SpsConfig } from '../../src/array/chassis/index.js';
import { startArray, startChassisArray, type ArrayServiceConfig, type RunningArray } from '../../src/control/service.js';
import type { MirrorNode } from '../../src/replication/index.js';
import { freePort, until } from './net.js';
import { BIN } from './paths.js';
import { launchArray, stopProcess } from './launch.js';

export { BIN, freePort, until };

export const SECRET = 'test-secret-0123456789';
export const MiB = 1024 * 1024;

export interface AlphaChild {
  proc: ChildProcess;
  api: string;
  ports: { A: number; B: number };
  stderr: () => string;
}

export interface MirrorSpLab {
  root: string;
  alphaCfg: ArrayServiceConfig & { sps: SpsConfig };
  /** In-process alpha (mode 'in-process'). */
  alpha: RunningArray | null;
  /** alpha as its own process (mode 'child'). */
  child: AlphaChild | null;
  bravo: RunningArray;
  /** SP NBD ports of alpha. */
  ports: { A: number; B: number };
  uri: (sp: 'A' | 'B', lun?: string) => string;
  bravoUri: (lun?: string) => string;
  alphaNode: () => MirrorNode;
  bravoNode: () => MirrorNode;
  alphaEvents: (type?: string) => Array<Record<string, unknown>>;
  bravoEvents: (type?: string) => Array<Record<string, unknown>>;
  /** The management API of a child alpha. */
  api: (method: string, path: string, body?: unknown) => Promise<any>;
  close: () => Promise<void>;
}

export interface LabOptions {
  mode?: 'in-process' | 'child';
  luns?: { name: string; size: number }[];
  sps?: Partial<SpsConfig>;
}

export async function makeLab(o: LabOptions = {}): Promise<MirrorSpLab> {
  const root = await mkdtemp(join(tmpdir(), 'sanbox-mirror-sp-'));
  const luns = o.luns ?? [
    { name: 'disk0', size: 32 * MiB },
    { name: 'disk1', size: 32 * MiB },
  ];
  const [aLink, bLink] = [await freePort(), await freePort()];
  const cleanups: Array<() => Promise<unknown> | unknown> = [() => rm(root, { recursive: true, force: true })];
  const close = async () => {
    while (cleanups.length) await Promise.resolve(cleanups.pop()!()).catch(() => undefined);
  };
  try {
    const bravo = await startArray({
      name: 'bravo',
      dir: join(root, 'bravo'),
      nbd: { bind: '127.0.0.1', port: 0 },
      api: false,
      luns,
      sync: false,
      remoteLink: { bind: '127.0.0.1', port: bLink, peers: [{ array: 'alpha', host: '127.0.0.1', port: aLink, secret: SECRET }] },
    });
    cleanups.push(() => bravo.close(100));
    const bEvents: Array<Record<string, unknown>> = [];
    bravo.array.on('event', (e: Record<string, unknown>) => bEvents.push(e));
    const alphaCfg: ArrayServiceConfig & { sps: SpsConfig } = {
      name: 'alpha',
      dir: join(root, 'alpha'),
      nbd: { bind: '127.0.0.1', port: 0 },
      api: o.mode === 'child' ? { bind: '127.0.0.1', port: 0 } : false,
      luns,
      sync: false,
      sps: { ...structuredClone(DEFAULT_SPS), cacheBytes: 16 * MiB, ...(o.sps ?? {}) },
      remoteLink: { bind: '127.0.0.1', port: aLink, peers: [{ array: 'bravo', host: '127.0.0.1', port: bLink, secret: SECRET }] },
    };
    let alpha: RunningArray | null = null;
    let child: AlphaChild | null = null;
    const aEvents: Array<Record<string, unknown>> = [];
    if (o.mode === 'child') {
      child = await startAlphaChild(root, alphaCfg);
      const c = child;
      cleanups.push(() => stopChild(c));
    } else {
      alpha = await startChassisArray(alphaCfg, { exec: process.execPath, args: [BIN] });
      const a = alpha;
      cleanups.push(() => a.close());
      a.array.on('event', (e: Record<string, unknown>) => aEvents.push(e));
    }
    const ports = child ? child.ports : { A: alpha!.nbdAll.find((e) => e.sp === 'A')!.port, B: alpha!.nbdAll.find((e) => e.sp === 'B')!.port };
    const lab: MirrorSpLab = {
      root,
      alphaCfg,
      alpha,
      child,
      bravo,
      ports,
      uri: (sp, lun = 'disk0') => `nbd://127.0.0.1:${ports[sp]}/${lun}`,
      bravoUri: (lun = 'disk0') => `nbd://127.0.0.1:${bravo.nbd.port}/${lun}`,
      alphaNode: () => {
        if (!alpha?.mirrors) throw new Error('alpha runs no in-process mirror driver');
        return alpha.mirrors;
      },
      bravoNode: () => bravo.mirrors!,
      alphaEvents: (type) => aEvents.filter((e) => !type || e.type === type),
      bravoEvents: (type) => bEvents.filter((e) => !type || e.type === type),
      api: async (method, path, body) => {
        if (!child) throw new Error('alpha runs in this process');
        const r = await fetch(child.api + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
        const j = await r.json();
        if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
        return j;
      },
      close,
    };
    return lab;
  } catch (e) {
    await close();
    throw e;
  }
}

async function startAlphaChild(root: string, cfg: ArrayServiceConfig): Promise<AlphaChild> {
  const l = await launchArray(join(root, 'alpha.json'), cfg, 'alpha');
  return { proc: l.proc, api: l.ready.api.url, ports: l.ports, stderr: l.stderr };
}

const stopChild = (c: AlphaChild) => stopProcess(c.proc);

/** alpha's view of image `img` of mirror `m` (in-process alpha). */
export function imageOf(node: MirrorNode, m: string, img: string) {
  return node.get(m).images.find((i) => i.imageId === img);
}

/** Creates mirror `name` on `primary` (LUN `lun`) with the same LUN of `secondary` and waits for it to be in sync. */
export async function mirrorLun(primary: MirrorNode, secondaryArray: string, lun: string, name: string, synchronized = false): Promise<void> {
  await primary.create({ lun, name, regionSize: 64 * 1024 });
  await primary.addSecondary(name, { array: secondaryArray, lun, synchronized });
  const id = `${secondaryArray}:${primary.get(name).images[1]!.lun}`;
  await until(
    () => {
      const i = imageOf(primary, name, id);
      return i?.link === 'connected' && (i.state === 'SYNCHRONIZED' || i.state === 'CONSISTENT') && !i.resync;
    },
    30_000,
    `mirror ${name} in sync`,
  );
}
