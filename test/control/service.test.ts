// The array service in process: StorageArray + the real NBD server + the management API, with
// real NBD sessions (a minimal EXPORT_NAME handshake) to check what the API does to open LUNs.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArray, provisionLuns, type RunningArray } from '../../src/control/service.js';
import { ArrayError } from '../../src/array/index.js';

let dir: string;
let run: RunningArray;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-svc-'));
  run = await startArray({
    name: 'alpha',
    dir,
    nbd: { bind: '127.0.0.1', port: 0 },
    api: { bind: '127.0.0.1', port: 0 },
    luns: [
      { name: 'disk0', size: 1 << 20 },
      { name: 'disk1', size: 1 << 20 },
    ],
    sync: false,
  });
});
afterEach(async () => {
  await run.close(500);
  await rm(dir, { recursive: true, force: true });
});

interface Session {
  socket: Socket;
  size: number;
  closed: Promise<void>;
}

/** Fixed-newstyle handshake with NBD_OPT_EXPORT_NAME; resolves in transmission phase. */
function open(port: number, name: string): Promise<Session> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    let buf = Buffer.alloc(0);
    let stage = 0;
    socket.on('error', () => undefined);
    socket.on('close', () => stage < 2 && reject(new Error(`server closed the connection during the handshake for ${JSON.stringify(name)}`)));
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (stage === 0 && buf.length >= 18) {
        expect(buf.subarray(0, 16).toString('latin1')).toBe('NBDMAGICIHAVEOPT');
        buf = buf.subarray(18);
        stage = 1;
        const n = Buffer.from(name);
        const opt = Buffer.alloc(4 + 16);
        opt.writeUInt32BE(3, 0); // client flags: FIXED_NEWSTYLE | NO_ZEROES
        opt.write('IHAVEOPT', 4, 'latin1');
        opt.writeUInt32BE(1, 12); // NBD_OPT_EXPORT_NAME
        opt.writeUInt32BE(n.length, 16);
        socket.write(Buffer.concat([opt, n]));
      }
      if (stage === 1 && buf.length >= 10) {
        stage = 2;
        resolve({ socket, size: Number(buf.readBigUInt64BE(0)), closed });
      }
    });
  });
}

function api(path: string, method = 'GET', body?: unknown) {
  return fetch(run.apiUrl + path, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    ...(body !== undefined || method !== 'GET' ? { headers: { 'Content-Type': 'application/json' } } : {}),
  }).then(async (r) => ({ status: r.status, json: (await r.json()) as any }));
}

async function until(fn: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('array service', () => {
  it('exports LUNs by name, and the empty name is the first LUN', async () => {
    const s = await open(run.nbd.port, 'disk1');
    expect(s.size).toBe(1 << 20);
    const d = await open(run.nbd.port, '');
    expect(d.size).toBe(1 << 20);
    await expect(open(run.nbd.port, 'nope')).rejects.toThrow(/closed/);
    s.socket.destroy();
    d.socket.destroy();
  });

  it('refuses to delete a LUN with open sessions, forces it by disconnecting them', async () => {
    const s = await open(run.nbd.port, 'disk0');
    await until(async () => (await api('/v1/luns/disk0')).json.lun.sessions === 1);
    const refused = await api('/v1/luns/disk0', 'DELETE');
    expect([refused.status, refused.json.error.code]).toEqual([409, 'busy']);
    expect(refused.json.error.message).toMatch(/1 open NBD session/);
    expect(run.array.getLun('disk0')).toBeDefined();

    const forced = await api('/v1/luns/disk0?force=true', 'DELETE');
    expect(forced.status).toBe(200);
    await s.closed; // the server ended the session
    expect(run.array.getLun('disk0')).toBeUndefined();
    await expect(open(run.nbd.port, 'disk0')).rejects.toThrow(/closed/);
    const types = run.array.eventsSince(0).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['session.opened', 'session.closed', 'lun.deleted']));
    expect(run.array.eventsSince(0).find((e) => e.type === 'lun.deleted')).toMatchObject({ forced: true, sessionsDisconnected: 1 });
  });

  it('grows an exported LUN: the shared device and new sessions see the new size', async () => {
    const s = await open(run.nbd.port, 'disk0');
    const r = await api('/v1/luns/disk0/grow', 'POST', { size: '4M' });
    expect([r.status, r.json.lun.size]).toEqual([200, 4 << 20]);
    expect(run.array.device('disk0')!.size).toBe(4 << 20);
    const s2 = await open(run.nbd.port, 'disk0');
    expect(s2.size).toBe(4 << 20);
    s.socket.destroy();
    s2.socket.destroy();
  });

  it('provisioning checks every spec before creating any', async () => {
    await expect(
      provisionLuns(run.array, [
        { name: 'new1', size: 4096 },
        { name: 'disk0', size: 2 << 20 },
      ]),
    ).rejects.toThrow(ArrayError);
    expect(run.array.getLun('new1')).toBeUndefined();
    expect(await provisionLuns(run.array, [{ name: 'disk0', size: 1 << 20 }, { name: 'new1', size: 4096 }])).toEqual(['new1']);
    await expect(provisionLuns(run.array, [{ name: 'disk1', size: 1 << 20, blockSize: 4096 }])).rejects.toThrow(/block size 512, not 4096/);
  });

  it('close() ends sessions, the API and releases the array', async () => {
    const s = await open(run.nbd.port, 'disk0');
    const url = run.apiUrl!;
    await run.close(500);
    await s.closed;
    await expect(fetch(url + '/v1/status')).rejects.toThrow();
    // The directory can be opened again at once.
    run = await startArray({ name: 'alpha', dir, nbd: { bind: '127.0.0.1', port: 0 }, api: false, luns: [], sync: false });
    expect(run.array.listLuns().map((l) => l.name)).toEqual(['disk0', 'disk1']);
    expect(run.apiUrl).toBeUndefined();
  });
});
