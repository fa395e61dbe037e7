// The crash test's child (crash.test.ts): a snapshot manager over a LUN image, with data and
// metadata synced (noSync false), changing the LUN through its copy-on-write layer until it is
// SIGKILLed.
//   node crash-child.mjs DIR SEED SIZE REGION_SIZE MODE
// MODE 'changes': snapshot s0, then changes from crash-plan.mjs forever, a new snapshot s<K>
//   after every EVERY changes (K changes made before it), up to 6 snapshots.
// MODE 'rollback': snapshot s0, overwrite the whole LUN, snapshot s1, then roll back to s0.
// Prints one line per event: "snap NAME", "changes K", "rolling", "rolled".
import { join } from 'node:path';
import { FileBackingStore } from '../../dist/block/index.js';
import { SnapshotManager } from '../../dist/snapshot/index.js';
import { changes, pattern } from './crash-plan.mjs';

const [dir, seedArg, sizeArg, rsArg, mode] = process.argv.slice(2);
const seed = Number(seedArg);
const size = Number(sizeArg);
const regionSize = Number(rsArg);
const EVERY = 40;

const store = await FileBackingStore.open(join(dir, 'disk0.img'), { blockSize: 512 });
const host = {
  lun: (ref) => (ref === 0 || ref === '0' || ref === 'disk0' ? { id: 0, name: 'disk0', size, blockSize: 512 } : undefined),
  base: (id) => (id === 0 ? store : undefined),
  rollbackGuard: () => undefined,
  sessionCount: () => 0,
  disconnect: async () => undefined,
  event: () => undefined,
};
const m = new SnapshotManager(dir, host, { storeBytes: 8 * size, regionSize, policy: 'refuse-writes' }, false);
await m.open();
const lun = m.layer(0, store);
const say = (line) => process.stdout.write(line + '\n');

await m.create(['disk0'], 's0');
say('snap s0');
if (mode === 'rollback') {
  await lun.write(0, pattern(seed & 0xff, 0, size));
  await m.create(['disk0'], 's1');
  say('snap s1');
  say('rolling');
  await m.rollback('disk0', 's0');
  say('rolled');
  setInterval(() => undefined, 1000); // wait for the kill
} else {
  const plan = changes(seed, size, regionSize);
  for (let k = 0; ; k++) {
    if (k > 0 && k % EVERY === 0 && k / EVERY < 6) {
      await m.create(['disk0'], `s${k}`);
      say(`snap s${k}`);
    }
    const c = plan.next();
    if (c.kind === 'write') await lun.write(c.offset, c.data);
    else if (c.kind === 'trim') await lun.trim(c.offset, c.length);
    else await lun.writeZeroes(c.offset, c.length);
    if (k % 20 === 0) say(`changes ${k + 1}`);
  }
}
