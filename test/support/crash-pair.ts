// Two arrays joined by a link emulator for the crash tests: bravo in this process (the
// secondary), alpha as a child process (so it can be SIGKILLed and started again from its
// config), a synchronous mirror m0 of disk0 between them, connected. Children run dist/.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArray, type RunningArray } from '../../src/control/service.js';
import { freePort, linkBetween, until, SECRET } from './mirror-lab.js';
import { kill, startChild } from './workload.js';

const MiB = 1024 * 1024;

export type Cleanups = Array<() => Promise<unknown> | unknown>;
export type Child = Awaited<ReturnType<typeof startChild>> & { api: string };

/** A JSON request to an array's API; a refusal throws with its answer. */
export async function api(base: string, method: string, path: string, body?: unknown): Promise<any> {
  const r = await fetch(base + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

export async function crashPair(cleanups: Cleanups, prefix: string) {
  const root = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const [aLink, bLink, aApi] = [await freePort(), await freePort(), await freePort()];
  const { emu, toA, toB } = await linkBetween(aLink, bLink);
  cleanups.push(() => emu.stop());
  const luns = [{ name: 'disk0', size: 64 * MiB }];
  const bravo: RunningArray = await startArray({
    name: 'bravo',
    dir: join(root, 'bravo'),
    nbd: { bind: '127.0.0.1', port: 0 },
    api: false,
    luns,
    remoteLink: { bind: '127.0.0.1', port: bLink, peers: [{ array: 'alpha', host: '127.0.0.1', port: toA, secret: SECRET }] },
  });
  cleanups.push(() => bravo.close(100));
  const bEvents: Array<Record<string, unknown>> = [];
  bravo.array.on('event', (e: Record<string, unknown>) => bEvents.push(e));
  const cfgPath = join(root, 'alpha.json');
  await writeFile(
    cfgPath,
    JSON.stringify({
      name: 'alpha',
      dir: join(root, 'alpha'),
      nbd: { bind: '127.0.0.1', port: 0 },
      api: { bind: '127.0.0.1', port: aApi },
      luns,
      remoteLink: { bind: '127.0.0.1', port: aLink, peers: [{ array: 'bravo', host: '127.0.0.1', port: toB, secret: SECRET }] },
    }),
  );
  /** alpha's process, started (again) from its config. */
  const child = async (): Promise<Child> => {
    const c = await startChild(cfgPath);
    cleanups.push(() => kill(c.proc));
    return { ...c, api: c.apiUrl! };
  };
  const alpha = await child();
  await api(alpha.api, 'POST', '/v1/mirrors', { lun: 'disk0', name: 'm0' });
  await api(alpha.api, 'POST', '/v1/mirrors/m0/secondaries', { array: 'bravo', lun: 'disk0', synchronized: true });
  await until(async () => (await api(alpha.api, 'GET', '/v1/mirrors/m0')).images[1].link === 'connected', 10_000, 'link up');
  return { root, cfgPath, alpha, bravo, bEvents, emu, child };
}
