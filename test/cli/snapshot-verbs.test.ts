// `sanbox snapshot rollback` and its progress, in process, against a stand-in API whose rollback
// takes a while and reports its bytes in the LUN's store (as the array does): plain lines off a
// terminal, nothing with -q or --json, and a progress poll that fails ends the progress only.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { captureCli } from '../support/cli.js';

const MiB = 2 ** 20;
const TOTAL = 64 * MiB;
/** How long the stand-in's rollback takes: a few progress polls (every 500 ms). */
const ROLLBACK_MS = 1600;

let server: Server;
let url: string;
let startedAt: number | undefined;
let failPolls = false;

beforeAll(async () => {
  server = createServer((req, res) => {
    const send = (status: number, body: unknown) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    if (req.method === 'POST' && req.url === '/v1/luns/disk0/snapshots/s1/rollback') {
      startedAt = Date.now();
      setTimeout(() => {
        startedAt = undefined;
        send(200, { rolledBack: { export: 'disk0@s1', created: '2026-01-01T00:00:00.000Z' } });
      }, ROLLBACK_MS);
      return;
    }
    if (req.method === 'GET' && req.url === '/v1/luns/disk0/snapshots') {
      if (failPolls) return send(500, { error: { code: 'internal', message: 'the store is busy' } });
      const doneBytes = startedAt === undefined ? 0 : Math.min(TOTAL, Math.floor(((Date.now() - startedAt) / ROLLBACK_MS) * TOTAL));
      return send(200, { snapshots: [], store: { storeBytes: TOTAL, usedBytes: TOTAL, policy: 'invalidate-oldest', regionSize: 65536, ...(startedAt !== undefined ? { rollback: { snapshot: 's1', doneBytes, totalBytes: TOTAL } } : {}) } });
    }
    send(404, { error: { code: 'not-found', message: `no route ${req.method} ${req.url}` } });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  failPolls = false;
});

const cli = (...args: string[]) => captureCli(['snapshot', 'rollback', 'disk0', 's1', '--api', url, ...args], { SANBOX_API: undefined, SANBOX_LAB: undefined });

describe('sanbox snapshot rollback: progress', () => {
  it('off a terminal: a plain line at the start and a final one on stderr; the result on stdout', async () => {
    const r = await cli();
    expect(r.code, r.err).toBe(0);
    const lines = r.err.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^rolling back disk0 to s1: [\d.]+ MiB of 64 MiB \(\d+%\) after 0s, \?\/s, ETA \?$/);
    expect(lines.at(-1)).toMatch(/^rolling back disk0 to s1: done, 64 MiB of 64 MiB \(100%\) in 1\.\ds, [\d.]+ MiB\/s on average$/);
    expect(lines).toHaveLength(2); // 1.6 s: no line between (one every few seconds at most)
    expect(r.out).toBe('rolled LUN disk0 back to disk0@s1 (taken 2026-01-01T00:00:00.000Z)\n');
  });

  it('-q and --json: no progress', async () => {
    const q = await cli('-q');
    expect(q.code).toBe(0);
    expect(q.err).toBe('');
    const j = await cli('--json');
    expect(j.code).toBe(0);
    expect(j.err).toBe('');
    expect(j.json.rolledBack.export).toBe('disk0@s1');
  });

  it('a failed progress poll ends the progress, says why, and the rollback\'s answer still counts', async () => {
    failPolls = true;
    const r = await cli();
    expect(r.code, r.err).toBe(0);
    expect(r.err).toBe("(no more progress: the store is busy; waiting for the rollback's answer)\n");
    expect(r.out).toMatch(/^rolled LUN disk0 back to disk0@s1/);
  });
});
