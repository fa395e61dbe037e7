import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MetadataStore } from '../../../src/metadata/index.js';
import type { RemoteLinkClient } from '../../../src/link/protocol/index.js';
import { applyOp, type MirrorDbRecord } from '../../../src/replication/state/index.js';
import { BitmapFile } from '../../../src/replication/mirror/bitmap-file.js';
import { DataPath, type GroupRouting } from '../../../src/replication/mirror/data-path.js';
import { newEntry, type Entry } from '../../../src/replication/mirror/entry.js';
import { MirrorLayer } from '../../../src/replication/mirror/layer.js';
import { PrimarySide, SecondaryPeer } from '../../../src/replication/mirror/primary.js';
import { MirrorRecords } from '../../../src/replication/mirror/records.js';
import { DEFAULT_TIMERS, type MirrorLun } from '../../../src/replication/mirror/types.js';
import { FileBackingStore } from '../../../src/block/index.js';

/**
 * The data path builds every remote request of a host modification (MirrorLayer only hands it a
 * HostModify): writes split at 8 MiB with FUA passed on, trims and zeroes as zero requests, all
 * with the record's epoch; a secondary that cannot take the write gets a fracture-log mark.
 */
const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Sent {
  /** a remote request's op, or 'local' for a write of the primary's own device */
  op: string;
  args: Record<string, unknown>;
  bytes: number;
  timeoutMs: number | undefined;
}

async function fixture() {
  const dir = mkdtempSync(join(tmpdir(), 'sanbox-data-path-'));
  dirs.push(dir);
  let db: MirrorDbRecord = applyOp(null, { op: 'create', mirrorId: 'm', name: 'm', primary: { imageId: 'alpha:0', array: 'alpha', lun: 0, size: SIZE } }).db!;
  db = applyOp(db, { op: 'add-secondary', image: { imageId: 'bravo:0', array: 'bravo', lun: 0, size: SIZE }, initialState: 'SYNCHRONIZED' }).db!;
  await FileBackingStore.create(join(dir, 'lun0.img'), SIZE);
  const device = await FileBackingStore.open(join(dir, 'lun0.img'));
  const lun: MirrorLun = { id: 0, name: 'lun0', size: SIZE, blockSize: 4096, device };
  const e: Entry = newEntry(db, dir, new MetadataStore<MirrorDbRecord>(dir, { basename: 'db', noSync: true }), lun, 'alpha:0');
  const wil = await BitmapFile.open(join(dir, 'wil.bitmap'), SIZE, MiB, { sync: false });
  e.primary = new PrimarySide(wil.file);
  const fr = await BitmapFile.open(join(dir, 'fracture.bitmap'), SIZE, db.regionSize, { sync: false });
  const peer = new SecondaryPeer('bravo:0', 'bravo', 0, fr.file);
  peer.link = 'connected';
  const sent: Sent[] = [];
  peer.client = {
    connected: true,
    request: async (op: string, args: Record<string, unknown>, bin?: Buffer, opts?: { timeoutMs?: number }) => {
      sent.push({ op, args, bytes: bin?.length ?? 0, timeoutMs: opts?.timeoutMs });
      return { result: {}, bin: Buffer.alloc(0) };
    },
  } as unknown as RemoteLinkClient;
  e.primary.peers.set(peer.imageId, peer);
  const events: string[] = [];
  const records = new MirrorRecords({ array: 'alpha', event: (t) => events.push(t), afterChange: () => {}, propagate: () => {} });
  records.entries.set(e.id, e);
  const groups: GroupRouting = { groupOf: () => undefined, route: () => 'direct', journal: async () => 'done', flush: async () => {}, offline: () => false };
  const path = new DataPath(records, { timers: DEFAULT_TIMERS, groups, pushInBackground: () => {}, noteUnreachable: () => {}, resyncIfDirty: async () => {} });
  const layer = new MirrorLayer(path, 0, device);
  const close = async () => {
    for (const t of e.primary!.timers) clearInterval(t);
    await wil.file.close();
    await fr.file.close();
    await device.close();
  };
  return { e, peer, sent, events, layer, device, close };
}

describe('the data path builds the remote requests', () => {
  it('a 20 MiB FUA write goes as three writes of at most 8 MiB, with the epoch and FUA', async () => {
    const f = await fixture();
    const data = Buffer.alloc(20 * MiB, 7);
    await f.layer.write(4 * MiB, data, { fua: true });
    expect(f.sent.map((s) => [s.op, s.args.offset, s.bytes, s.args.flags, s.args.epoch, s.timeoutMs])).toEqual([
      ['write', 4 * MiB, 8 * MiB, { fua: true }, 1, DEFAULT_TIMERS.remoteWriteTimeoutMs],
      ['write', 12 * MiB, 8 * MiB, { fua: true }, 1, DEFAULT_TIMERS.remoteWriteTimeoutMs],
      ['write', 20 * MiB, 4 * MiB, { fua: true }, 1, DEFAULT_TIMERS.remoteWriteTimeoutMs],
    ]);
    expect((await f.device.read(4 * MiB, 4096))[0]).toBe(7);
    await f.close();
  });

  it('a write without FUA carries no flags; trims and zeroes are zero requests', async () => {
    const f = await fixture();
    await f.layer.write(0, Buffer.alloc(4096, 1));
    await f.layer.trim(MiB, 64 * 1024);
    await f.layer.writeZeroes(2 * MiB, 64 * 1024);
    expect(f.sent.map((s) => ({ op: s.op, ...s.args }))).toEqual([
      { op: 'write', mirrorId: 'm', imageId: 'bravo:0', offset: 0, epoch: 1 },
      { op: 'zero', mirrorId: 'm', imageId: 'bravo:0', offset: MiB, length: 64 * 1024, trim: true, epoch: 1 },
      { op: 'zero', mirrorId: 'm', imageId: 'bravo:0', offset: 2 * MiB, length: 64 * 1024, trim: false, epoch: 1 },
    ]);
    await f.close();
  });

  it('a fractured secondary gets no request, only a fracture-log mark', async () => {
    const f = await fixture();
    f.e.db = applyOp(f.e.db, { op: 'fracture', imageId: 'bravo:0' }).db!;
    await f.layer.write(MiB, Buffer.alloc(4096, 1));
    expect(f.sent).toEqual([]);
    expect(f.peer.fracture.bitmap.test(MiB, 4096)).toBe(true);
    await f.close();
  });

  it('host writes in flight together: every remote request leaves before the local writes after the first', async () => {
    const f = await fixture();
    const write = f.device.write.bind(f.device);
    f.device.write = (offset, data, flags) => {
      f.sent.push({ op: 'local', args: { offset }, bytes: data.length, timeoutMs: undefined });
      return write(offset, data, flags);
    };
    await Promise.all([0, 1, 2, 3].map((i) => f.layer.write(i * MiB, Buffer.alloc(4096, i + 1))));
    // the first is alone (nothing to overlap, as at QD1): its local write starts at once; the others' wait for the link's flush
    expect(f.sent.map((s) => `${s.op}@${(s.args.offset as number) / MiB}`)).toEqual(['write@0', 'local@0', 'write@1', 'write@2', 'write@3', 'local@1', 'local@2', 'local@3']);
    for (const i of [0, 1, 2, 3]) expect((await f.device.read(i * MiB, 1))[0]).toBe(i + 1);
    await f.close();
  });

  it('a local write that fails among writes in flight: that host write gets the error, the range goes into the fracture log', async () => {
    const f = await fixture();
    const write = f.device.write.bind(f.device);
    f.device.write = (offset, data, flags) => (offset === 2 * MiB ? Promise.reject(Object.assign(new Error('EIO: injected'), { code: 'EIO' })) : write(offset, data, flags));
    const results = await Promise.allSettled([0, 1, 2, 3].map((i) => f.layer.write(i * MiB, Buffer.alloc(4096, 1))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(((results[2] as PromiseRejectedResult).reason as Error).message).toMatch(/EIO: injected/);
    expect(f.events).toContain('local-write-failed');
    expect(f.peer.fracture.bitmap.test(2 * MiB, 4096)).toBe(true);
    expect(f.peer.fracture.bitmap.countRegions()).toBe(1);
    await f.close();
  });

  it('a failed secondary is skipped, and so is one whose socket closed before its event', async () => {
    const f = await fixture();
    f.peer.failed = true;
    await f.layer.write(0, Buffer.alloc(4096, 1));
    f.peer.failed = false;
    (f.peer.client as unknown as { connected: boolean }).connected = false;
    await f.layer.write(MiB, Buffer.alloc(4096, 1));
    expect(f.sent).toEqual([]);
    expect(f.peer.fracture.bitmap.countRegions()).toBe(2);
    await f.close();
  });
});
