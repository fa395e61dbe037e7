// The BlockDevice conformance suite (test/block/conformance.test.ts) run over the disk fault layer
// in lose-unflushed mode: writes held in memory must still read back, flush must put them below
// every layer (the suite's `below` reads the image after a flush), trims and zeroes must read as
// the model says, block status must not call held data a hole, close must refuse later I/O. Once
// with room for everything, once with a 64 KiB limit so the overlay also writes its oldest
// content down by itself during the suite.
//
// The suite loops over SUBJECTS when it is imported: this file puts its own subjects in that list
// first, then imports it (test/block runs the suite over every other device of the tree).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBackingStore } from '../../../src/block/index.js';
import { DiskFaultLayer, DiskFaultState, validateDiskFault, type DiskFaultInput } from '../../../src/fault/index.js';
import { SUBJECTS, SUBJECT_SIZE, type Opened, type Subject } from '../../block/subjects.js';

async function unflushedOver(input: DiskFaultInput): Promise<Opened> {
  const dir = await mkdtemp(join(tmpdir(), 'sanbox-conf-unflushed-'));
  const path = join(dir, 'lun.img');
  await FileBackingStore.create(path, SUBJECT_SIZE);
  const store = await FileBackingStore.open(path, { blockSize: 512 });
  const state = new DiskFaultState(0);
  const v = validateDiskFault(input, SUBJECT_SIZE);
  if (!v.spec) throw new Error(v.problems.join('; '));
  state.set(v.spec);
  const dev = new DiskFaultLayer(store, state);
  return {
    dev,
    ownsStore: true,
    below: async () => {
      await dev.flush();
      return store.read(0, store.size);
    },
    cleanup: async () => {
      await dev.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const mine: Subject[] = [
  { name: 'DiskFaultLayer (lose-unflushed)', open: () => unflushedOver({ loseUnflushed: true }) },
  { name: 'DiskFaultLayer (lose-unflushed, 64 KiB limit)', open: () => unflushedOver({ loseUnflushed: true, maxUnflushed: '64K' }) },
];
SUBJECTS.splice(0, SUBJECTS.length, ...mine);
await import('../../block/conformance.test.js');
