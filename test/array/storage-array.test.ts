import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm, stat, readdir, writeFile, truncate, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageArray, ArrayError, type ArrayEvent, type ArrayMetadata, parseSize, formatSize } from '../../src/array/index.js';
import { MetadataStore } from '../../src/metadata/index.js';

let dir: string;
const opened: StorageArray[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-array-'));
});
afterEach(async () => {
  for (const a of opened.splice(0)) await a.close();
  await rm(dir, { recursive: true, force: true });
});

async function open(opts: { name?: string; readOnly?: boolean } = {}): Promise<StorageArray> {
  const a = await StorageArray.open({ name: opts.name ?? 'alpha', dir, readOnly: opts.readOnly, noSync: true });
  opened.push(a);
  return a;
}
async function reopen(a: StorageArray, opts: { readOnly?: boolean } = {}): Promise<StorageArray> {
  await a.close();
  return open(opts);
}
function events(a: StorageArray): ArrayEvent[] {
  const evs: ArrayEvent[] = [];
  a.on('event', (e: ArrayEvent) => evs.push(e));
  return evs;
}
async function expectArrayError(p: Promise<unknown>, code: string, re?: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a failure').toBeInstanceOf(ArrayError);
  expect((err as ArrayError).code).toBe(code);
  if (re) expect((err as ArrayError).message).toMatch(re);
}

class FakeSessions extends EventEmitter {
  counts = new Map<string, number>();
  disconnected: string[] = [];
  sessionCount(name?: string): number {
    return name === undefined ? [...this.counts.values()].reduce((a, b) => a + b, 0) : (this.counts.get(name) ?? 0);
  }
  async disconnectExport(name: string): Promise<void> {
    this.disconnected.push(name);
    this.counts.delete(name);
  }
}

describe('sizes', () => {
  it('parses suffixes and rejects junk', () => {
    expect(parseSize('1G')).toBe(2 ** 30);
    expect(parseSize('256M')).toBe(256 * 2 ** 20);
    expect(parseSize('1GiB')).toBe(2 ** 30);
    expect(parseSize('4k')).toBe(4096);
    expect(parseSize('1.5K')).toBe(1536);
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize(512)).toBe(512);
    for (const bad of ['', 'G', '1X', '-1', '1.1', '1e3', '1 G G', '99999999999P']) expect(parseSize(bad), bad).toBeUndefined();
    expect(formatSize(2 ** 30)).toBe('1G');
    expect(formatSize(1536)).toBe('1.5K');
    expect(formatSize(1000)).toBe('1000');
  });
});

describe('StorageArray', () => {
  it('creates, lists, grows and deletes LUNs, persisting across reopen', async () => {
    let a = await open();
    const evs = events(a);
    const d0 = await a.createLun({ name: 'disk0', size: 1 << 20 });
    const d1 = await a.createLun({ name: 'disk1', size: 8 << 20, blockSize: 4096 });
    expect(d0).toMatchObject({ id: 0, name: 'disk0', size: 1 << 20, blockSize: 512, image: 'lun0.img', state: 'online' });
    expect(d1).toMatchObject({ id: 1, blockSize: 4096, imagePath: join(dir, 'lun1.img') });
    expect((await stat(d1.imagePath)).size).toBe(8 << 20);
    expect((await stat(d1.imagePath)).blocks).toBeLessThan(64); // sparse
    expect(a.listLuns().map((l) => l.name)).toEqual(['disk0', 'disk1']);

    const g = await a.growLun('disk0', 2 << 20);
    expect(g.size).toBe(2 << 20);
    expect(a.device(0)!.size).toBe(2 << 20);
    expect((await stat(d0.imagePath)).size).toBe(2 << 20);

    await a.deleteLun(1);
    expect(a.listLuns().map((l) => l.name)).toEqual(['disk0']);
    await expect(stat(d1.imagePath)).rejects.toThrow();
    expect(evs.map((e) => e.type)).toEqual(['lun.created', 'lun.created', 'lun.grown', 'lun.deleted']);
    expect(evs.map((e) => e.seq)).toEqual([...evs.map((e) => e.seq)].sort((x, y) => x - y));
    expect(evs[2]).toMatchObject({ array: 'alpha', type: 'lun.grown', lun: 0, oldSize: 1 << 20, size: 2 << 20 });

    a = await reopen(a);
    expect(a.listLuns()).toMatchObject([{ id: 0, name: 'disk0', size: 2 << 20, state: 'online' }]);
    // Ids are never reused.
    expect((await a.createLun({ name: 'disk2', size: 4096 })).id).toBe(2);
  });

  it('rejects bad input and changes nothing', async () => {
    const a = await open();
    await a.createLun({ name: 'disk0', size: 1 << 20 });
    const gen = a.metadataGeneration;
    const before = JSON.stringify(a.metadata());
    const files = (await readdir(dir)).sort();
    const evs = events(a);
    await expectArrayError(a.createLun({ name: 'bad name', size: 4096 }), 'invalid-argument', /invalid/);
    await expectArrayError(a.createLun({ name: 'x'.repeat(65), size: 4096 }), 'invalid-argument');
    await expectArrayError(a.createLun({ name: '', size: 4096 }), 'invalid-argument');
    await expectArrayError(a.createLun({ name: 'a/b', size: 4096 }), 'invalid-argument');
    await expectArrayError(a.createLun({ name: 'ok', size: 1000 }), 'invalid-argument', /multiple of the block size 512/);
    await expectArrayError(a.createLun({ name: 'ok', size: 0 }), 'invalid-argument', /greater than 0/);
    await expectArrayError(a.createLun({ name: 'ok', size: -512 }), 'invalid-argument');
    await expectArrayError(a.createLun({ name: 'ok', size: 1.5 }), 'invalid-argument');
    await expectArrayError(a.createLun({ name: 'ok', size: 2 ** 51 }), 'invalid-argument', /maximum/);
    await expectArrayError(a.createLun({ name: 'ok', size: '4096' as unknown as number }), 'invalid-argument');
    await expectArrayError(a.createLun({ name: 'ok', size: 4096, blockSize: 1024 }), 'invalid-argument', /512 or 4096/);
    await expectArrayError(a.createLun({ name: 'ok', size: 512 * 3, blockSize: 4096 }), 'invalid-argument', /4096/);
    await expectArrayError(a.createLun({ name: 'disk0', size: 4096 }), 'exists');
    await expectArrayError(a.growLun('disk0', 1 << 20), 'refused', /only grow/);
    await expectArrayError(a.growLun('disk0', 1 << 19), 'refused', /only grow/);
    await expectArrayError(a.growLun('disk0', (1 << 20) + 100), 'invalid-argument', /multiple/);
    await expectArrayError(a.growLun('nope', 2 << 20), 'not-found');
    await expectArrayError(a.growLun(7, 2 << 20), 'not-found');
    await expectArrayError(a.deleteLun('nope'), 'not-found');
    expect(a.metadataGeneration).toBe(gen);
    expect(JSON.stringify(a.metadata())).toBe(before);
    expect((await readdir(dir)).sort()).toEqual(files);
    expect(a.device('disk0')!.size).toBe(1 << 20);
    expect(evs).toEqual([]);
  });

  it('refuses the names . and .. for LUNs and arrays; .hidden is a name', async () => {
    const a = await open();
    const gen = a.metadataGeneration;
    const files = (await readdir(dir)).sort();
    for (const name of ['.', '..']) await expectArrayError(a.createLun({ name, size: 4096 }), 'invalid-argument', /\(not \. or \.\.\)/);
    expect(a.metadataGeneration).toBe(gen);
    expect(a.listLuns()).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual(files);
    expect((await a.createLun({ name: '.hidden', size: 4096 })).name).toBe('.hidden');
    // An array named . or .. is refused before its directory is made.
    const sub = join(dir, 'images', 'x');
    for (const name of ['.', '..']) await expectArrayError(StorageArray.open({ name, dir: sub, noSync: true }), 'invalid-argument', /array name .* \(not \. or \.\.\)/);
    await expect(stat(join(dir, 'images'))).rejects.toThrow();
  });

  it('still opens an array whose metadata holds a LUN named .. from before such names were refused', async () => {
    const a = await open();
    await a.createLun({ name: 'tmp', size: 4096 });
    await a.close();
    const store = new MetadataStore<ArrayMetadata>(dir, { noSync: true });
    const data = (await store.load()).data!;
    data.luns[0]!.name = '..';
    await store.save(data);
    const b = await open();
    expect(b.listLuns().map((l) => [l.id, l.name, l.state])).toEqual([[0, '..', 'online']]);
    await b.deleteLun(0);
    expect(b.listLuns()).toEqual([]);
  });

  it('refuses to delete an exported LUN with sessions unless forced', async () => {
    const a = await open();
    const s = new FakeSessions();
    a.attachSessions(s);
    const evs = events(a);
    await a.createLun({ name: 'disk0', size: 1 << 20 });
    s.counts.set('disk0', 2);
    s.emit('session-open', { id: 1, remote: '127.0.0.1:5000', export: 'disk0' });
    expect(a.getLun('disk0')!.sessions).toBe(2);
    await expectArrayError(a.deleteLun('disk0'), 'busy', /2 open NBD session/);
    expect(a.getLun('disk0')).toBeDefined();
    const del = await a.deleteLun('disk0', { force: true });
    expect(del.name).toBe('disk0');
    expect(s.disconnected).toEqual(['disk0']);
    expect(a.getLun('disk0')).toBeUndefined();
    expect(evs.map((e) => e.type)).toEqual(['lun.created', 'session.opened', 'lun.deleted']);
    expect(evs[2]).toMatchObject({ forced: true, sessionsDisconnected: 2 });
  });

  it('exports LUNs by name through its catalog, the lowest id as default', async () => {
    const a = await open();
    expect(a.catalog().lookup('')).toBeUndefined();
    await a.createLun({ name: 'first', size: 4096 });
    await a.createLun({ name: 'second', size: 8192 });
    const cat = a.catalog();
    expect(cat.lookup('')!.name).toBe('first');
    expect(cat.lookup('second')!.device.size).toBe(8192);
    expect(cat.lookup('third')).toBeUndefined();
    expect(cat.list().map((e) => e.name)).toEqual(['first', 'second']);
    // The same device object is shared by every lookup (one backing store per LUN).
    expect(cat.lookup('first')!.device).toBe(cat.lookup('first')!.device);
    await a.deleteLun('first');
    expect(cat.lookup('')!.name).toBe('second');
  });

  it('writes to an exported device land in the image and survive reopen', async () => {
    let a = await open();
    await a.createLun({ name: 'disk0', size: 1 << 20 });
    const data = Buffer.alloc(4096, 0xab);
    await a.device('disk0')!.write(8192, data, { fua: true });
    a = await reopen(a);
    expect((await a.device('disk0')!.read(8192, 4096)).equals(data)).toBe(true);
  });

  it('read-only arrays export read-only devices and refuse changes', async () => {
    let a = await open();
    await a.createLun({ name: 'disk0', size: 1 << 20 });
    a = await reopen(a, { readOnly: true });
    expect(a.device('disk0')!.readOnly).toBe(true);
    expect(a.catalog().lookup('disk0')!.readOnly).toBe(true);
    await expectArrayError(a.createLun({ name: 'x', size: 4096 }), 'read-only');
    await expectArrayError(a.growLun('disk0', 2 << 20), 'read-only');
    await expectArrayError(a.deleteLun('disk0'), 'read-only');
    // Startup provisioning may still create.
    expect((await a.createLun({ name: 'x', size: 4096, provision: true })).readOnly).toBe(true);
  });

  it('locks its directory against a second open', async () => {
    await open();
    await expectArrayError(StorageArray.open({ name: 'alpha', dir }), 'busy', /already open by process/);
  });

  it('takes over a stale lock of a dead process', async () => {
    await writeFile(join(dir, 'array.lock'), '999999999\n');
    const a = await open();
    expect(a.listLuns()).toEqual([]);
  });

  it('refuses a directory of another array', async () => {
    const a = await open({ name: 'alpha' });
    await a.close();
    await expectArrayError(StorageArray.open({ name: 'bravo', dir }), 'metadata-mismatch', /holds array "alpha"/);
  });

  it('survives a corrupt metadata copy, reports it and repairs it', async () => {
    let a = await open();
    await a.createLun({ name: 'disk0', size: 1 << 20 });
    await a.createLun({ name: 'disk1', size: 1 << 20 });
    await a.close();
    // The newest copy holds disk1; tear it.
    const copies = ['meta.A', 'meta.B'];
    const gens = await Promise.all(copies.map(async (c) => Number(/gen=(\d+)/.exec(await readFile(join(dir, c), 'utf8'))![1])));
    const newest = gens[0]! > gens[1]! ? copies[0]! : copies[1]!;
    await truncate(join(dir, newest), 50);
    a = await open();
    expect(a.openProblems.join('\n')).toMatch(/invalid/);
    // The older copy did not know disk1; its image is kept, not overwritten, and not reused.
    expect(a.listLuns().map((l) => l.name)).toEqual(['disk0']);
    const d = await a.createLun({ name: 'disk1', size: 1 << 20 });
    expect(d.id).toBe(2);
    expect((await readdir(dir)).filter((f) => f.endsWith('.img')).sort()).toEqual(['lun0.img', 'lun1.img', 'lun2.img']);
    expect((await readdir(dir)).some((f) => f.endsWith('.corrupt'))).toBe(true);
  });

  it('refuses to start when both metadata copies are corrupt', async () => {
    const a = await open();
    await a.createLun({ name: 'disk0', size: 1 << 20 });
    await a.close();
    await writeFile(join(dir, 'meta.A'), 'junk');
    await writeFile(join(dir, 'meta.B'), 'junk');
    await expectArrayError(StorageArray.open({ name: 'alpha', dir }), 'metadata-corrupt', /no valid metadata copy/);
    // The lock is released after a failed open.
    await expect(stat(join(dir, 'array.lock'))).rejects.toThrow();
  });

  it('refuses images without metadata instead of resetting', async () => {
    await writeFile(join(dir, 'lun0.img'), Buffer.alloc(4096));
    await expectArrayError(StorageArray.open({ name: 'alpha', dir }), 'metadata-corrupt', /image files .* but no metadata/);
  });

  it('reports a LUN whose image vanished as missing, and can delete it', async () => {
    let a = await open();
    await a.createLun({ name: 'disk0', size: 1 << 20 });
    await a.createLun({ name: 'disk1', size: 1 << 20 });
    await a.close();
    await rm(join(dir, 'lun0.img'));
    a = await open();
    expect(a.getLun('disk0')).toMatchObject({ state: 'missing' });
    expect(a.catalog().lookup('disk0')).toBeUndefined();
    expect(a.catalog().lookup('')!.name).toBe('disk1');
    await expectArrayError(a.growLun('disk0', 2 << 20), 'io', /missing/);
    await a.deleteLun('disk0');
    expect(a.listLuns().map((l) => l.name)).toEqual(['disk1']);
  });

  it('finishes a grow interrupted after the metadata commit', async () => {
    let a = await open();
    await a.createLun({ name: 'disk0', size: 1 << 20 });
    await a.growLun('disk0', 2 << 20);
    await a.close();
    await truncate(join(dir, 'lun0.img'), 1 << 20); // as if the crash hit before ftruncate
    a = await open();
    expect(a.getLun('disk0')!.size).toBe(2 << 20);
    expect(a.device('disk0')!.size).toBe(2 << 20);
  });

  it('serializes concurrent mutations', async () => {
    const a = await open();
    const rs = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => a.createLun({ name: i % 2 ? `d${i}` : 'same', size: 4096 })),
    );
    expect(rs.filter((r) => r.status === 'fulfilled')).toHaveLength(6);
    expect(new Set(a.listLuns().map((l) => l.id)).size).toBe(6);
  });

  it('replays recent events by sequence number', async () => {
    const a = await open();
    await a.createLun({ name: 'a', size: 4096 });
    await a.createLun({ name: 'b', size: 4096 });
    const all = a.eventsSince(0);
    expect(all.map((e) => e.type)).toContain('lun.created');
    const last = all[all.length - 1]!;
    expect(a.eventsSince(last.seq)).toEqual([]);
    expect(a.eventsSince(last.seq - 1)).toEqual([last]);
    expect(a.eventsSince(last.seq + 100)).toEqual(all); // a client from a previous run gets everything kept
  });
});
