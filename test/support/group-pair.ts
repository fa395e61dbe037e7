// Two arrays joined by a link emulator for the crash tests of the asynchronous groups: bravo in
// this process (the secondary), alpha as a child process (SIGKILL-able and started again from its
// config and setup), LUNs disk0 and disk1 (32 MiB by default) mirrored as m0 and m1 in the
// asynchronous group g0, whose writelog (128 MiB by default) holds every write a test makes: 2 x
// 8192 fresh 4 KiB blocks of records of 4160 bytes, so it never overflows into bypass, even with
// the link cut throughout. Children run dist/.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArray, type RunningArray } from '../../src/control/service.js';
import type { Cleanups } from './crash-pair.js';
import { freePort, linkBetween, SECRET } from './mirror-lab.js';

const MiB = 1024 * 1024;
export const GROUP_LUN_SIZE = 32 * MiB;

/** bravo started, alpha's config and setup written (start alpha with startChild(cfgPath, setupPath)). */
export async function asyncGroupPair(cleanups: Cleanups, prefix: string, opts: { link?: Parameters<typeof linkBetween>[2]; lunSize?: number; writelogBytes?: number } = {}) {
  const lunSize = opts.lunSize ?? GROUP_LUN_SIZE;
  const root = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const [aLink, bLink] = [await freePort(), await freePort()];
  const { emu, toA, toB } = await linkBetween(aLink, bLink, opts.link ?? {});
  cleanups.push(() => emu.stop());
  const luns = [
    { name: 'disk0', size: lunSize },
    { name: 'disk1', size: lunSize },
  ];
  const timers = { reconnectInitialMs: 50, reconnectMaxMs: 200 };
  const bravo: RunningArray = await startArray({
    name: 'bravo',
    dir: join(root, 'bravo'),
    nbd: { bind: '127.0.0.1', port: 0 },
    api: false,
    luns,
    sync: false,
    remoteLink: { bind: '127.0.0.1', port: bLink, peers: [{ array: 'alpha', host: '127.0.0.1', port: toA, secret: SECRET }], timers },
  });
  cleanups.push(() => bravo.close(100));
  const cfgPath = join(root, 'alpha.json');
  const setupPath = join(root, 'setup.json');
  // alpha with fsync on (the default): what an acknowledgement promises is what is on disk at a kill
  await writeFile(cfgPath, JSON.stringify({ name: 'alpha', dir: join(root, 'alpha'), nbd: { bind: '127.0.0.1', port: 0 }, api: false, luns, remoteLink: { bind: '127.0.0.1', port: aLink, peers: [{ array: 'bravo', host: '127.0.0.1', port: toB, secret: SECRET }], timers } }));
  await writeFile(
    setupPath,
    JSON.stringify({
      mirrors: [
        { name: 'm0', lun: 'disk0', to: { array: 'bravo', lun: 'disk0' } },
        { name: 'm1', lun: 'disk1', to: { array: 'bravo', lun: 'disk1' } },
      ],
      groups: [{ name: 'g0', members: ['m0', 'm1'], attributes: { mode: 'asynchronous', writelog: { capacity: opts.writelogBytes ?? 128 * MiB } } }],
    }),
  );
  /** Both of bravo's LUNs, read whole. */
  const images = async (): Promise<Buffer[]> => [await bravo.array.device('disk0')!.read(0, lunSize), await bravo.array.device('disk1')!.read(0, lunSize)];
  return { root, emu, bravo, cfgPath, setupPath, images };
}
