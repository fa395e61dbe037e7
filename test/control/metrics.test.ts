// GET /metrics of a single-process array (in process: StorageArray, the real NBD server, the
// management API on real sockets): the text is parsed by a strict parser (test/support/prom-text),
// and the LUN counters must move by exactly what a raw NBD client sent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArray, type RunningArray } from '../../src/control/service.js';
import { CMD } from '../../src/nbd/index.js';
import { RawClient } from '../nbd/raw-client.js';
import { parsePrometheusText, sampleValue, samplesOf, scrape, type Family } from '../support/prom-text.js';

let dir: string;
let run: RunningArray;
let url: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-metrics-'));
  run = await startArray({
    name: 'alpha',
    dir,
    nbd: { bind: '127.0.0.1', port: 0 },
    api: { bind: '127.0.0.1', port: 0 },
    luns: [
      { name: 'disk0', size: 4 << 20 },
      { name: 'disk1', size: 4 << 20 },
    ],
    sync: false,
  });
  url = `${run.apiUrl!}/metrics`;
});
afterAll(async () => {
  await run.close(500);
  await rm(dir, { recursive: true, force: true });
});

const lun = (name: string, op: string) => ({ array: 'alpha', lun: name, op });
const v = (f: Map<string, Family>, metric: string, name: string, op: string) => sampleValue(f, metric, lun(name, op));

async function session(name: string): Promise<RawClient> {
  const c = await RawClient.connect(run.nbd.port);
  await c.handshake({ name });
  return c;
}

async function putFault(ref: string, spec: Record<string, unknown>): Promise<void> {
  const r = await fetch(`${run.apiUrl!}/v1/luns/${ref}/disk-fault`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(spec) });
  expect(r.status, await r.text()).toBe(200);
}
async function clearFault(ref: string): Promise<void> {
  const r = await fetch(`${run.apiUrl!}/v1/luns/${ref}/disk-fault`, { method: 'DELETE', headers: { 'Content-Type': 'application/json' } });
  expect(r.status, await r.text()).toBe(200);
}

describe('GET /metrics of a single-process array', () => {
  it('is the Prometheus text format with every LUN, op and the NBD sessions', async () => {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const f = parsePrometheusText(await res.text());
    expect(f.get('sanbox_lun_ops_total')?.type).toBe('counter');
    expect(f.get('sanbox_lun_latency_seconds')?.type).toBe('histogram');
    expect(f.get('sanbox_nbd_sessions')?.type).toBe('gauge');
    expect(sampleValue(f, 'sanbox_lun_size_bytes', { array: 'alpha', lun: 'disk1' })).toBe(4 << 20);
    // No mirror driver, no chassis: none of their metrics.
    expect(f.has('sanbox_mirror_state')).toBe(false);
    expect(f.has('sanbox_sp_state')).toBe(false);
  });

  it('counts ops, bytes and latency of what a host sends, per LUN and op', async () => {
    const before = await scrape(url);
    const c = await session('disk0');
    const during = await scrape(url);
    expect(sampleValue(during, 'sanbox_nbd_sessions', { array: 'alpha' })).toBe(sampleValue(before, 'sanbox_nbd_sessions', { array: 'alpha' }) + 1);
    expect(sampleValue(during, 'sanbox_lun_nbd_sessions', { array: 'alpha', lun: 'disk0' })).toBe(sampleValue(before, 'sanbox_lun_nbd_sessions', { array: 'alpha', lun: 'disk0' }) + 1);
    expect(sampleValue(during, 'sanbox_lun_nbd_sessions', { array: 'alpha', lun: 'disk1' })).toBe(sampleValue(before, 'sanbox_lun_nbd_sessions', { array: 'alpha', lun: 'disk1' }));
    const data = Buffer.alloc(8192, 0xab);
    for (let i = 0; i < 3; i++) {
      c.request(CMD.WRITE, { cookie: BigInt(i + 1), offset: i * 8192, payload: data });
      expect((await c.simpleReply()).error).toBe(0);
    }
    c.request(CMD.READ, { cookie: 10n, offset: 0, length: 4096 });
    expect((await c.simpleReply(4096)).error).toBe(0);
    c.request(CMD.FLUSH, { cookie: 11n });
    expect((await c.simpleReply()).error).toBe(0);
    c.request(CMD.TRIM, { cookie: 12n, offset: 65536, length: 65536 });
    expect((await c.simpleReply()).error).toBe(0);
    c.request(CMD.WRITE_ZEROES, { cookie: 13n, offset: 131072, length: 16384 });
    expect((await c.simpleReply()).error).toBe(0);
    const after = await scrape(url);
    const delta = (metric: string, op: string) => v(after, metric, 'disk0', op) - v(before, metric, 'disk0', op);
    expect(delta('sanbox_lun_ops_total', 'write')).toBe(3);
    expect(delta('sanbox_lun_bytes_total', 'write')).toBe(3 * 8192);
    expect(delta('sanbox_lun_ops_total', 'read')).toBe(1);
    expect(delta('sanbox_lun_bytes_total', 'read')).toBe(4096);
    expect(delta('sanbox_lun_ops_total', 'flush')).toBe(1);
    expect(delta('sanbox_lun_ops_total', 'trim')).toBe(1);
    expect(delta('sanbox_lun_bytes_total', 'trim')).toBe(65536);
    expect(delta('sanbox_lun_ops_total', 'zero')).toBe(1);
    expect(delta('sanbox_lun_bytes_total', 'zero')).toBe(16384);
    expect(delta('sanbox_lun_errors_total', 'write')).toBe(0);
    expect(delta('sanbox_lun_latency_seconds_count', 'write')).toBe(3);
    expect(delta('sanbox_lun_latency_seconds_sum', 'write')).toBeGreaterThan(0);
    // The other LUN saw nothing.
    for (const op of ['read', 'write', 'flush', 'trim', 'zero']) expect(v(after, 'sanbox_lun_ops_total', 'disk1', op)).toBe(v(before, 'sanbox_lun_ops_total', 'disk1', op));
    c.close();
    await c.waitClosed();
  });

  it('puts a slow request in a slow bucket, and counts a failed one as an error', async () => {
    const c = await session('disk1');
    await putFault('disk1', { errors: [], delay: { ms: 40, jitterMs: 0 } });
    const before = await scrape(url);
    c.request(CMD.WRITE, { cookie: 1n, offset: 0, payload: Buffer.alloc(4096, 1) });
    expect((await c.simpleReply()).error).toBe(0);
    const slow = await scrape(url);
    const bucket = (f: Map<string, Family>, le: string) => sampleValue(f, 'sanbox_lun_latency_seconds_bucket', { ...lun('disk1', 'write'), le });
    expect(bucket(slow, '0.025') - bucket(before, '0.025')).toBe(0);
    // Not faster than the delay, and (on a busy machine too) well under 10 s.
    expect(bucket(slow, '10') - bucket(before, '10')).toBe(1);
    expect(v(slow, 'sanbox_lun_latency_seconds_sum', 'disk1', 'write') - v(before, 'sanbox_lun_latency_seconds_sum', 'disk1', 'write')).toBeGreaterThanOrEqual(0.039);

    await putFault('disk1', { errors: ['write'], rate: 1, errno: 'EIO' });
    c.request(CMD.WRITE, { cookie: 2n, offset: 0, payload: Buffer.alloc(4096, 2) });
    expect((await c.simpleReply()).error).not.toBe(0);
    await clearFault('disk1');
    const failed = await scrape(url);
    expect(v(failed, 'sanbox_lun_errors_total', 'disk1', 'write') - v(slow, 'sanbox_lun_errors_total', 'disk1', 'write')).toBe(1);
    expect(v(failed, 'sanbox_lun_ops_total', 'disk1', 'write') - v(slow, 'sanbox_lun_ops_total', 'disk1', 'write')).toBe(1);
    // A failed write moved no bytes.
    expect(v(failed, 'sanbox_lun_bytes_total', 'disk1', 'write')).toBe(v(slow, 'sanbox_lun_bytes_total', 'disk1', 'write'));
    c.close();
    await c.waitClosed();
  });

  it('has one latency series per LUN and op, with the buckets of docs/metrics.md', async () => {
    const f = await scrape(url);
    const counts = samplesOf(f, 'sanbox_lun_latency_seconds_count', { array: 'alpha' });
    expect(counts.map((s) => `${s.labels.lun}/${s.labels.op}`).sort()).toEqual(
      ['disk0', 'disk1'].flatMap((l) => ['flush', 'read', 'trim', 'write', 'zero'].map((op) => `${l}/${op}`)).sort(),
    );
    const les = samplesOf(f, 'sanbox_lun_latency_seconds_bucket', lun('disk0', 'read')).map((s) => s.labels.le);
    expect(les).toEqual(['0.000025', '0.00005', '0.0001', '0.00025', '0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']);
  });
});

describe('GET /metrics follows the API\'s rules for a GET', () => {
  let tdir: string;
  let tokened: RunningArray;
  const TOKEN = 'metrics-token-0123456789';
  beforeAll(async () => {
    tdir = await mkdtemp(join(tmpdir(), 'sanbox-metrics-token-'));
    tokened = await startArray({ name: 'bravo', dir: tdir, nbd: { bind: '127.0.0.1', port: 0 }, api: { bind: '127.0.0.1', port: 0, token: TOKEN }, luns: [{ name: 'disk0', size: 1 << 20 }], sync: false });
  });
  afterAll(async () => {
    await tokened.close(500);
    await rm(tdir, { recursive: true, force: true });
  });

  it('with a token required: a wrong or missing token gets 401 and no metrics at all', async () => {
    for (const headers of [{ Authorization: 'Bearer wrong-token-0000000' }, {} as Record<string, string>]) {
      const res = await fetch(`${tokened.apiUrl!}/metrics`, { headers });
      const text = await res.text();
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="sanbox"');
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(JSON.parse(text)).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
      expect(text).not.toContain('sanbox_');
    }
    const f = await scrape(`${tokened.apiUrl!}/metrics`, { Authorization: `Bearer ${TOKEN}` });
    expect(sampleValue(f, 'sanbox_lun_size_bytes', { array: 'bravo', lun: 'disk0' })).toBe(1 << 20);
  });

  it('without a token: a Host that is not a loopback name is refused (403), and only GET is allowed', async () => {
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(url);
      const req = request({ host: u.hostname, port: u.port, path: '/metrics', headers: { Host: 'evil.example:80' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
    const post = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
  });
});
