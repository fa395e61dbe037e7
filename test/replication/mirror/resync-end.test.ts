// The end of a resync (src/replication/mirror/resync.ts): between the last copy and the record's
// sync-done the record still says SYNCHRONIZING, and neither the periodic check nor a record
// change may start a second run then (it found nothing to copy and ended in a spurious
// mirror.resync-stopped, seen by bench:mirror). Real arrays; the window is held open by holding
// the mirror's exclusive section, which the sync-done change waits for. And after the end, the
// image becomes SYNCHRONIZED once nothing was in flight for quiesceMs (docs/mirroring.md), with no
// host write needed to start that clock.
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { makeLab, until, type Lab } from '../../support/mirror-lab.js';
import { differingBlocks, imageFile } from '../../support/image-files.js';
import type { Entry } from '../../../src/replication/mirror/entry.js';

const MiB = 1024 * 1024;
const REGION = 64 * 1024;
/** How long the test holds the exclusive section: many periodic checks (every 50 ms here). */
const HOLD_MS = 600;
let lab: Lab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});

interface RecordsInside {
  find(ref: string): Entry;
  exclusive<T>(e: Entry, fn: () => Promise<T>): Promise<T>;
}

/** A lab whose mirror m0 (alpha -> bravo) was in sync and is fractured now. */
async function fracturedMirror(quiesceMs: number) {
  lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 8 * MiB }], { timers: { quiesceMs } });
  const n = lab.node('alpha');
  await n.create({ lun: 'disk0', name: 'm0' });
  await n.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
  await until(() => n.get('m0').images[1]!.link === 'connected', 10_000, 'link');
  await n.fracture('m0');
  return n;
}

describe('the end of a resync', () => {
  it('no second run starts while the first records its end', async () => {
    const n = await fracturedMirror(100);
    const dev = lab!.hostDevice('alpha');
    for (let r = 0; r < 8; r++) await dev.write(3 * r * REGION, randomBytes(REGION));
    await n.synchronize('m0');
    // white box: the node's record keeper, to hold the section the sync-done change needs
    const records = (n as unknown as { records: RecordsInside }).records;
    const e = records.find('m0');
    const copied = () => differingBlocks(imageFile(lab!.sites.alpha!.dir), imageFile(lab!.sites.bravo!.dir)) === 0;
    await records.exclusive(e, async () => {
      await until(copied, 10_000, 'every region copied');
      await new Promise((r) => setTimeout(r, HOLD_MS)); // the run waits for this section to record sync-done
    });
    await until(() => lab!.events('alpha', 'mirror.resync-done').length > 0, 10_000, 'resync done');
    await new Promise((r) => setTimeout(r, 200)); // a second run started late would show by now
    expect(lab!.events('alpha', 'mirror.resync-started')).toHaveLength(1);
    expect(lab!.events('alpha', 'mirror.resync-stopped')).toHaveLength(0);
    expect(lab!.events('alpha', 'mirror.resync-done')).toHaveLength(1);
  });

  it('a resync with no host write after it ends SYNCHRONIZED once quiesceMs passed (CONSISTENT until then)', async () => {
    const n = await fracturedMirror(1000); // long enough that the poll below sees CONSISTENT on a loaded machine
    await lab!.hostDevice('alpha').write(0, randomBytes(REGION));
    // the host write's quiesce passes while the image is fractured: no quiesce is pending at the
    // resync's start, so only the resync's end can start the clock (white box)
    const side = (n as unknown as { records: RecordsInside }).records.find('m0').primary!;
    await until(() => !side.wroteSinceQuiesce, 5_000, "the host write's quiesce check");
    await n.synchronize('m0');
    await until(() => lab!.events('alpha', 'mirror.resync-done').length > 0, 10_000, 'resync done');
    expect(n.get('m0').images[1]!.state).toBe('CONSISTENT');
    await until(() => n.get('m0').images[1]!.state === 'SYNCHRONIZED', 5_000, 'SYNCHRONIZED after the quiesce');
  });
});
