import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CMI_HEADER_SIZE, CMI_VERSION, CmiClient, CmiError, CmiProtocolError, CmiServer, CmiCacheMirror, encodeFrame, FrameDecoder, KIND, decodeMirrorPages } from '../../../src/array/cmi/index.js';
import { PeerMirrorStore } from '../../../src/array/cache/index.js';

describe('CMI framing', () => {
  it('round-trips frames split at every byte boundary', () => {
    const a = encodeFrame({ kind: KIND.REQUEST, id: 7, json: { op: 'io', args: { lun: 3 } }, bin: Buffer.from('hello world') });
    const b = encodeFrame({ kind: KIND.REPLY, id: 8, json: { result: {} } });
    const all = Buffer.concat([a, b]);
    for (let cut = 0; cut <= all.length; cut++) {
      const d = new FrameDecoder();
      const frames = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
      expect(frames.map((f) => [f.kind, f.id, f.json, f.bin.toString()])).toEqual([
        [KIND.REQUEST, 7, { op: 'io', args: { lun: 3 } }, 'hello world'],
        [KIND.REPLY, 8, { result: {} }, ''],
      ]);
      expect(d.bufferedBytes).toBe(0);
    }
  });

  it('rejects a bad magic, a bad header checksum, another version, an unknown kind, oversize lengths, bad JSON', () => {
    const good = encodeFrame({ kind: KIND.REQUEST, id: 1, json: { op: 'x' } });
    const bad = (mut: (b: Buffer) => void, re: RegExp) => {
      const b = Buffer.from(good);
      mut(b);
      expect(() => new FrameDecoder().push(b)).toThrow(re);
    };
    bad((b) => b.writeUInt32LE(0xdeadbeef, 0), /magic/);
    bad((b) => b.writeUInt8(9, 8), /checksum/);
    expect(() => new FrameDecoder().push(encodeFrame({ kind: KIND.REQUEST, id: 1, json: {} }, CMI_VERSION + 1))).toThrow(/version 2 not supported/);
    const kind = Buffer.from(encodeFrame({ kind: 9 as 1, id: 1, json: {} }));
    expect(() => new FrameDecoder().push(kind)).toThrow(/kind 9/);
    expect(() => encodeFrame({ kind: KIND.REQUEST, id: 1, json: {}, bin: Buffer.alloc(64 * 1024 * 1024 + 1) })).toThrow(CmiProtocolError);
    const notJson = encodeFrame({ kind: KIND.REQUEST, id: 1, json: { a: 1 } });
    notJson.write('{', CMI_HEADER_SIZE);
    notJson.write('x', CMI_HEADER_SIZE + 1);
    expect(() => new FrameDecoder().push(notJson)).toThrow(/JSON/);
  });
});

describe('CMI over a real Unix socket', () => {
  let dir: string;
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function pair(handler: ConstructorParameters<typeof CmiServer>[1]['handler']) {
    dir = mkdtempSync(join(tmpdir(), 'cmi-'));
    const server = new CmiServer(join(dir, 'cmi.sock'), { array: 'alpha', expectFrom: 'A', handler });
    await server.listen();
    cleanups.push(() => server.close());
    const client = await CmiClient.connect(join(dir, 'cmi.sock'), { array: 'alpha', from: 'A', bootId: 'x' });
    cleanups.push(() => client.close());
    return { server, client };
  }

  it('answers requests with payloads, errors carry code and errno', async () => {
    const { client } = await pair(({ op, args, bin }) => {
      if (op === 'echo') return { result: { n: args.n }, bin: Buffer.concat([bin, bin]) };
      throw new CmiError('not-owner', 'nope', 'EIO');
    });
    const r = await client.call('echo', { n: 5 }, Buffer.from('ab'));
    expect(r.result).toEqual({ n: 5 });
    expect(r.bin.toString()).toBe('abab');
    await expect(client.call('other')).rejects.toMatchObject({ code: 'not-owner', errno: 'EIO' });
  });

  it('refuses a peer with the wrong SP name, array or version', async () => {
    const { server } = await pair(() => undefined);
    await expect(CmiClient.connect(server.path, { array: 'alpha', from: 'B', bootId: 'y' })).rejects.toMatchObject({ code: 'hello-refused' });
    await expect(CmiClient.connect(server.path, { array: 'beta', from: 'A', bootId: 'y' })).rejects.toThrow(/wrong array/);
    await expect(CmiClient.connect(server.path, { array: 'alpha', from: 'A', bootId: 'y', version: 99 })).rejects.toThrow(/version 99/);
  });

  it('pending calls fail with peer-gone when the connection ends', async () => {
    const { client, server } = await pair(() => new Promise(() => undefined));
    const p = client.call('hang');
    await server.close();
    await expect(p).rejects.toMatchObject({ code: 'peer-gone' });
    await expect(client.call('after')).rejects.toMatchObject({ code: 'peer-gone' });
  });

  it('CmiCacheMirror feeds a PeerMirrorStore in call order', async () => {
    const store = new PeerMirrorStore();
    const { client } = await pair(({ op, args, bin }) => {
      if (op === 'mirror.pages') store.mirror(Number(args.lun), decodeMirrorPages(args, bin));
      else if (op === 'mirror.release') store.release(Number(args.lun), (args.pages as [number, number][]).map(([index, generation]) => ({ index, generation })));
      else if (op === 'mirror.reset') store.reset(Number(args.lun));
      else if (op === 'mirror.discard') store.discard(Number(args.lun), Number(args.offset), Number(args.length), Number(args.generation));
    });
    const m = new CmiCacheMirror(client);
    const page = (b: number) => Buffer.alloc(4096, b);
    await Promise.all([
      m.mirror(1, [{ index: 0, generation: 1, data: page(1) }, { index: 1, generation: 1, data: page(2) }]),
      m.mirror(1, [{ index: 0, generation: 2, data: page(3) }]),
      m.release(1, [{ index: 1, generation: 1 }]),
    ]);
    expect(store.pages(1).map((p) => [p.index, p.generation, p.data[0]])).toEqual([[0, 2, 3]]);
    await m.discard(1, 0, 4096, 3);
    expect(store.pages(1)).toEqual([]);
    await m.mirror(2, [{ index: 5, generation: 9, data: page(7) }]);
    await m.reset(2);
    expect(store.bytes).toBe(0);
  });
});
