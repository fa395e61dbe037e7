// GET /metrics of a link emulator's API: a real emulator between a client and an echo server on
// 127.0.0.1, scraped over HTTP and parsed by a strict parser; bytes, queue, settings, cut state
// and connections must follow what the test does to the link.
import { afterEach, describe, expect, it } from 'vitest';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { LinkApiServer, LinkEmulator } from '../../../src/link/emulator/index.js';
import { sampleValue, scrape } from '../../support/prom-text.js';
import { until } from '../../support/net.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function echo(): Promise<number> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    s.on('data', (d) => s.write(d));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r()))));
  return (server.address() as AddressInfo).port;
}

async function start(token?: string): Promise<{ emu: LinkEmulator; port: number; url: string }> {
  const target = await echo();
  const emu = new LinkEmulator({
    name: 'l1',
    a: 'alpha',
    b: 'bravo',
    routes: [{ name: 'to-b', listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: target }, forward: 'a-to-b' }],
    settings: { 'a-to-b': { latencyMs: 7, bandwidth: 10_000_000 } },
  });
  await emu.start();
  cleanups.push(() => emu.stop());
  const api = new LinkApiServer({ emulator: emu, ...(token ? { token } : {}) });
  const { url } = await api.listen();
  cleanups.push(() => api.close());
  return { emu, port: emu.status().routes[0]!.listen.port, url: `${url}/metrics` };
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
    cleanups.push(() => void s.destroy());
  });
}

const l = (direction: string) => ({ link: 'l1', direction });

describe('GET /metrics of a link emulator', () => {
  it('has per-direction bytes, settings and cut state, and the connections', async () => {
    const { port, url } = await start();
    const before = await scrape(url);
    expect(sampleValue(before, 'sanbox_link_latency_seconds', l('a-to-b'))).toBe(0.007);
    expect(sampleValue(before, 'sanbox_link_bandwidth_bytes_per_second', l('a-to-b'))).toBe(10_000_000);
    expect(sampleValue(before, 'sanbox_link_bandwidth_bytes_per_second', l('b-to-a'))).toBe(0);
    expect(sampleValue(before, 'sanbox_link_state', { link: 'l1', state: 'up' })).toBe(1);
    expect(sampleValue(before, 'sanbox_link_connections', { link: 'l1' })).toBe(0);
    const s = await dial(port);
    let echoed = 0;
    s.on('data', (d) => (echoed += d.length));
    s.write(Buffer.alloc(100_000, 7));
    await until(() => echoed === 100_000, 10_000, 'echo');
    const after = await scrape(url);
    // What went to bravo came back: the same bytes each way.
    expect(sampleValue(after, 'sanbox_link_bytes_total', l('a-to-b')) - sampleValue(before, 'sanbox_link_bytes_total', l('a-to-b'))).toBe(100_000);
    expect(sampleValue(after, 'sanbox_link_bytes_total', l('b-to-a')) - sampleValue(before, 'sanbox_link_bytes_total', l('b-to-a'))).toBe(100_000);
    expect(sampleValue(after, 'sanbox_link_connections', { link: 'l1' })).toBe(1);
    expect(sampleValue(after, 'sanbox_link_connections_total', { link: 'l1' })).toBe(1);
    expect(sampleValue(after, 'sanbox_link_queued_bytes', l('a-to-b'))).toBe(0);
  });

  it('shows a cut direction and the bytes it holds', async () => {
    const { emu, port, url } = await start();
    const s = await dial(port);
    await until(() => emu.status().connections.some((c) => c.state === 'open'), 5000, 'open');
    emu.cutLink('a-to-b');
    s.write(Buffer.alloc(5000, 1));
    await until(() => emu.status().queued['a-to-b'] === 5000, 5000, 'held by the cut');
    const f = await scrape(url);
    expect(sampleValue(f, 'sanbox_link_cut', l('a-to-b'))).toBe(1);
    expect(sampleValue(f, 'sanbox_link_cut', l('b-to-a'))).toBe(0);
    expect(sampleValue(f, 'sanbox_link_state', { link: 'l1', state: 'partially-cut' })).toBe(1);
    expect(sampleValue(f, 'sanbox_link_state', { link: 'l1', state: 'up' })).toBe(0);
    expect(sampleValue(f, 'sanbox_link_queued_bytes', l('a-to-b'))).toBe(5000);
  });

  it('with a token: a wrong token gets 401 and no metrics', async () => {
    const { url } = await start('link-token-0123456789');
    const res = await fetch(url, { headers: { Authorization: 'Bearer nope-nope-nope' } });
    const text = await res.text();
    expect(res.status).toBe(401);
    expect(JSON.parse(text).error.code).toBe('unauthorized');
    expect(text).not.toContain('sanbox_link');
    const f = await scrape(url, { Authorization: 'Bearer link-token-0123456789' });
    expect(sampleValue(f, 'sanbox_link_cut', l('a-to-b'))).toBe(0);
    const post = await fetch(url, { method: 'POST', headers: { Authorization: 'Bearer link-token-0123456789', 'Content-Type': 'application/json' }, body: '{}' });
    expect(post.status).toBe(405);
  });
});
