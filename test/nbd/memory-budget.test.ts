/**
 * The server-wide NBD memory budget (issue 19, item 11): connections that ask for large reads
 * and never read the replies must not take the process's memory past the budget, and must not
 * starve a connection that reads its replies. The servers run in processes of their own (the
 * compiled dist/: build first), so their memory is measured alone.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBudget, type NbdMemoryStats } from '../../src/nbd/index.js';
import { RawClient } from './raw-client.js';

const MiB = 1 << 20;
const CMD_READ = 0;
const CMD_WRITE = 1;
const CMD_FLUSH = 3;

describe('MemoryBudget admission', () => {
  it('always admits up to the guarantee, then only fair shares and only while the budget has room', () => {
    const b = new MemoryBudget(64 * MiB);
    expect(b.guarantee).toBe(1 * MiB);
    b.holding = 2;
    // Fair share: 32 MiB each of two connections holding memory.
    expect(b.admits(0, 32 * MiB)).toBe(true);
    expect(b.admits(16 * MiB, 16 * MiB)).toBe(true);
    expect(b.admits(16 * MiB, 17 * MiB)).toBe(false);
    // One request larger than the share goes when the connection holds nothing and there is room.
    expect(b.admits(0, 48 * MiB)).toBe(true);
    b.charge(60 * MiB);
    expect(b.admits(0, 8 * MiB)).toBe(false); // no room
    expect(b.admits(512 * 1024, 512 * 1024)).toBe(true); // within the guarantee, whatever the others hold
    b.release(60 * MiB);
    expect(b.used).toBe(0);
    expect(b.peak).toBe(60 * MiB);
    // A request larger than the whole budget still goes when nothing else is charged.
    expect(b.admits(0, 100 * MiB)).toBe(true);
    expect(() => b.release(1)).toThrow(/released more than charged/);
  });
});

/** The server in its own process, so its memory is its own (VmRSS/VmHWM of /proc). */
class ServerProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(budget: number): Promise<ServerProcess> {
    const script = fileURLToPath(new URL('./memory-server.mjs', import.meta.url));
    const child = fork(script, [String(budget)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const first = await new Promise<{ port: number }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { port: number }));
      child.once('exit', (code) => reject(new Error(`server process exited with ${code} before listening`)));
    });
    return new ServerProcess(child, first.port);
  }

  stats(): Promise<{ rss: number; hwm: number; memory: NbdMemoryStats | null; error: string | null; sessions: number }> {
    return new Promise((resolve) => {
      this.child.once('message', (m) => resolve(m as never));
      this.child.send('stats');
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send('close');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('NBD memory budget across connections (real server process)', () => {
  const BUDGET = 128 * MiB;
  const HOARDERS = 16;
  const REQUESTS = 64;
  const READ = 32 * MiB; // the advertised maximum block size
  // Above the idle process: the budget, what each connection may always hold beyond it, and
  // slack for the heap, socket bookkeeping and the witness's buffers.
  const SLACK = 64 * MiB;
  let server: ServerProcess;
  const hoarders: RawClient[] = [];

  beforeAll(async () => {
    server = await ServerProcess.start(BUDGET);
  });

  afterAll(async () => {
    for (const h of hoarders) h.close();
    await server?.stop();
  });

  it('16 connections that never read 64 x 32 MiB reads stay within the budget; a witness keeps being served; closing them releases it all', async () => {
    const idle = await server.stats();
    const guarantee = Math.max(MiB, BUDGET / 64);
    const bound = idle.rss + BUDGET + (HOARDERS + 1) * guarantee + SLACK;

    for (let i = 0; i < HOARDERS; i++) {
      const c = await RawClient.connect(server.port);
      await c.handshake();
      c.socket.pause(); // never read a reply: they pile up in the server
      for (let r = 0; r < REQUESTS; r++) c.request(CMD_READ, { cookie: BigInt(r + 1), offset: (r % 2) * READ, length: READ });
      hoarders.push(c);
    }
    // Let the server do all it will do for them: until its memory stops changing (3 s at most).
    let last = '';
    let same = 0;
    for (let i = 0; i < 30 && same < 3; i++) {
      await sleep(100);
      const s = await server.stats();
      const now = `${s.rss} ${s.memory?.used}`;
      same = now === last ? same + 1 : 0;
      last = now;
    }
    const stuck = await server.stats();
    expect(stuck.error).toBeNull();
    expect(stuck.hwm, `peak RSS ${(stuck.hwm / MiB).toFixed(0)} MiB, bound ${(bound / MiB).toFixed(0)} MiB (idle ${(idle.rss / MiB).toFixed(0)} MiB)`).toBeLessThanOrEqual(bound);
    expect(stuck.memory, 'the server has a memory budget').not.toBeNull();
    const m = stuck.memory!;
    expect(m.used).toBeLessThanOrEqual(BUDGET + HOARDERS * m.guarantee);
    expect(m.peak).toBeLessThanOrEqual(BUDGET + HOARDERS * m.guarantee);
    expect(m.used).toBeGreaterThan(BUDGET / 2); // they did hoard: the budget is what stopped them
    expect(m.waiting).toBeGreaterThan(0);

    // The witness: writes and reads back 1 MiB blocks, flushes, within a bounded time.
    const started = Date.now();
    const w = await RawClient.connect(server.port);
    try {
      await w.handshake();
      for (let i = 0; i < 16; i++) {
        const data = Buffer.alloc(MiB, i + 1);
        w.request(CMD_WRITE, { cookie: BigInt(1000 + i), offset: i * MiB, payload: data });
        const wr = await w.simpleReply();
        expect(wr).toMatchObject({ error: 0, cookie: BigInt(1000 + i) });
        w.request(CMD_READ, { cookie: BigInt(2000 + i), offset: i * MiB, length: MiB });
        const rd = await w.simpleReply(MiB);
        expect(rd.error).toBe(0);
        expect(rd.data.equals(data)).toBe(true);
      }
      w.request(CMD_FLUSH, { cookie: 3000n });
      expect((await w.simpleReply()).error).toBe(0);
    } finally {
      w.close();
    }
    const took = Date.now() - started;
    expect(took, `witness took ${took} ms`).toBeLessThan(5000);
    const after = await server.stats();
    expect(after.error).toBeNull();
    expect(after.hwm).toBeLessThanOrEqual(bound);

    // The hoarders go: everything they held is released.
    for (const h of hoarders) h.close();
    hoarders.length = 0;
    let end = await server.stats();
    for (let i = 0; i < 50 && (end.memory!.used !== 0 || end.sessions !== 0); i++) {
      await sleep(100);
      end = await server.stats();
    }
    expect(end.error).toBeNull();
    expect(end.sessions).toBe(0);
    expect(end.memory).toMatchObject({ used: 0, connections: 0, waiting: 0 });
  }, 30_000);
});

describe('NBD memory budget of a two-SP array (sanbox serve --sps --nbd-memory)', () => {
  it('each SP process has the configured budget; hoarders on SP A are held to it, a witness is served, status shows it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sanbox-nbd-mem-sps-'));
    const bin = fileURLToPath(new URL('../../bin/sanbox.js', import.meta.url));
    const child = spawn(process.execPath, [bin, 'serve', '--dir', dir, '--lun', 'disk=64M', '--sps', '--port', '0', '--api-port', '0', '--json', '-q', '--nbd-memory', '64M'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const clients: RawClient[] = [];
    try {
      const ready = await new Promise<{ api: { url: string }; sps: { name: string; port: number }[] }>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          try {
            resolve(JSON.parse(out));
          } catch {
            /* not all of it yet */
          }
        });
        child.once('exit', (code) => reject(new Error(`sanbox serve exited with ${code}: ${out}`)));
      });
      const portA = ready.sps.find((s) => s.name === 'A')!.port;
      type SpView = { name: string; nbdMemory: NbdMemoryStats | null };
      const sps = async (): Promise<Record<string, NbdMemoryStats>> => {
        const st = (await (await fetch(`${ready.api.url}/v1/status`)).json()) as { sps: SpView[] };
        return Object.fromEntries(st.sps.map((s) => [s.name, s.nbdMemory!]));
      };
      expect((await sps()).B).toMatchObject({ budget: 64 * MiB, used: 0 });

      for (let i = 0; i < 4; i++) {
        const c = await RawClient.connect(portA);
        await c.handshake();
        c.socket.pause();
        for (let r = 0; r < 16; r++) c.request(CMD_READ, { cookie: BigInt(r + 1), offset: (r % 2) * 32 * MiB, length: 32 * MiB });
        clients.push(c);
      }
      let a = (await sps()).A!;
      for (let i = 0; i < 50 && a.waiting === 0; i++) {
        await sleep(100);
        a = (await sps()).A!;
      }
      expect(a.budget).toBe(64 * MiB);
      expect(a.waiting).toBeGreaterThan(0);
      expect(a.used).toBeGreaterThan(32 * MiB);
      expect(a.peak).toBeLessThanOrEqual(64 * MiB + 4 * a.guarantee);

      const w = await RawClient.connect(portA);
      clients.push(w);
      await w.handshake();
      const data = Buffer.alloc(MiB, 0x5a);
      w.request(CMD_WRITE, { cookie: 7n, offset: 0, payload: data });
      expect((await w.simpleReply()).error).toBe(0);
      w.request(CMD_READ, { cookie: 8n, offset: 0, length: MiB });
      const rd = await w.simpleReply(MiB);
      expect(rd.error).toBe(0);
      expect(rd.data.equals(data)).toBe(true);

      for (const c of clients) c.close();
      for (let i = 0; i < 50 && (a.used !== 0 || a.connections !== 0); i++) {
        await sleep(100);
        a = (await sps()).A!;
      }
      expect(a).toMatchObject({ used: 0, connections: 0, holding: 0 });
    } finally {
      for (const c of clients) c.close();
      const exited = new Promise((r) => child.once('exit', r));
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
