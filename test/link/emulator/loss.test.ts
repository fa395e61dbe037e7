// Loss-like stalls (lossPercent, rtoMs: a chunk delayed by one retransmission timeout, the bytes
// behind it waiting too), TCP's order under jitter, loss and a cap together, and the validation
// of the new settings (a refused value changes nothing, in the library, over the API and in
// `sanbox link set --loss --rto`).
import { describe, it, expect, afterEach } from 'vitest';
import { LinkApiServer } from '../../../src/link/index.js';
import { linkSetCommand } from '../../../src/cli/link-verbs.js';
import { type Cleanup, describeRtts, dial, echoServer, pingPong, quantile, startEmulator } from './timing-support.js';

const cleanups: Cleanup[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('link emulator: loss-like stalls', () => {
  it('lossPercent 100: every chunk costs one RTO each way; 0: none', async () => {
    const rtoMs = 25;
    const echo = await echoServer(cleanups);
    const { emu, port } = await startEmulator(cleanups, echo.port, { settings: { 'a-to-b': { lossPercent: 100, rtoMs }, 'b-to-a': { lossPercent: 100, rtoMs } } });
    const s = await dial(cleanups, port);
    const lost = await pingPong(s, { count: 8, qd: 1, size: 16 });
    console.log(`[loss] 100%, rto ${rtoMs} ms: round trip ${describeRtts(lost.rtts)}`);
    expect(lost.rtts[0]).toBeGreaterThanOrEqual(2 * rtoMs);
    expect(emu.status().totals.losses).toEqual({ 'a-to-b': 8, 'b-to-a': 8 });
    emu.set({ lossPercent: 0 });
    const clean = await pingPong(s, { count: 50, qd: 1, size: 16 });
    console.log(`[loss] 0%: round trip ${describeRtts(clean.rtts)}`);
    expect(quantile(clean.rtts, 0.5)).toBeLessThan(rtoMs);
    expect(emu.status().totals.losses).toEqual({ 'a-to-b': 8, 'b-to-a': 8 });
  });

  it('lossPercent 30: about 1 - 0.7^2 = 51% of round trips take an RTO (seeded)', async () => {
    const rtoMs = 15;
    const echo = await echoServer(cleanups);
    const settings = { latencyMs: 0.5, lossPercent: 30, rtoMs };
    const { emu, port } = await startEmulator(cleanups, echo.port, { seed: 42, settings: { 'a-to-b': settings, 'b-to-a': settings } });
    const s = await dial(cleanups, port);
    const n = 80;
    const { rtts } = await pingPong(s, { count: n, qd: 1, size: 16 });
    const hit = rtts.filter((x) => x >= rtoMs).length / n;
    const losses = emu.status().totals.losses;
    const chunkShare = (losses['a-to-b'] + losses['b-to-a']) / (2 * n);
    console.log(`[loss] 30%: ${(hit * 100).toFixed(0)}% of ${n} round trips took an RTO (expected 51%), ${(chunkShare * 100).toFixed(0)}% of chunks lost; ${describeRtts(rtts)}`);
    expect(chunkShare).toBeGreaterThan(0.15);
    expect(chunkShare).toBeLessThan(0.45);
    expect(hit).toBeGreaterThan(0.3);
    expect(hit).toBeLessThan(0.72);
    // Never more than one RTO per direction (the 95th percentile: a loaded machine stalls a few
    // round trips by itself), and none faster than the link.
    expect(rtts[0]).toBeGreaterThanOrEqual(1);
    expect(quantile(rtts, 0.95)).toBeLessThan(2 * rtoMs + 1 + 20);
  });

  it('a loss holds back the bytes behind it (head-of-line), in order', async () => {
    const rtoMs = 40;
    const seen: { d: Buffer; at: number }[] = [];
    const echo = await echoServer(cleanups, (d, at) => seen.push({ d, at }));
    const { emu, port } = await startEmulator(cleanups, echo.port, { settings: { 'a-to-b': { lossPercent: 100, rtoMs } } });
    const s = await dial(cleanups, port);
    const t0 = performance.now();
    s.write(Buffer.alloc(8, 0xaa)); // lost: one RTO
    await new Promise((r) => setTimeout(r, 5)); // read as a chunk of its own
    emu.set({ lossPercent: 0 }, 'a-to-b');
    s.write(Buffer.alloc(8, 0xbb)); // not lost, but behind the lost one
    for (let i = 0; i < 200 && seen.reduce((n, x) => n + x.d.length, 0) < 16; i++) await new Promise((r) => setTimeout(r, 5));
    const all = Buffer.concat(seen.map((x) => x.d));
    expect(all.equals(Buffer.concat([Buffer.alloc(8, 0xaa), Buffer.alloc(8, 0xbb)]))).toBe(true);
    expect(seen[0]!.at - t0).toBeGreaterThanOrEqual(rtoMs);
    expect(emu.status().totals.losses['a-to-b']).toBe(1);
  });
});

describe('link emulator: TCP never reorders', () => {
  it('jitter, loss and a cap together: sequence numbers come back in order', async () => {
    const echo = await echoServer(cleanups);
    const settings = { latencyMs: 0.5, jitterMs: 4, lossPercent: 5, rtoMs: 10, bandwidth: 20_000_000 };
    const { emu, port } = await startEmulator(cleanups, echo.port, { seed: 7, settings: { 'a-to-b': settings, 'b-to-a': settings } });
    const s = await dial(cleanups, port);
    const { rtts, reordered } = await pingPong(s, { count: 400, qd: 16, size: 700 });
    console.log(`[order] jitter 4 ms, loss 5%, 20 MB/s, QD16: ${reordered} reordered of ${rtts.length}; ${describeRtts(rtts)}; losses ${JSON.stringify(emu.status().totals.losses)}`);
    expect(reordered).toBe(0);
    expect(rtts).toHaveLength(400);
  });
});

describe('link emulator: lossPercent and rtoMs are validated', () => {
  it('refuses bad values and changes nothing (library)', async () => {
    const echo = await echoServer(cleanups);
    const { emu } = await startEmulator(cleanups, echo.port);
    const before = emu.status();
    for (const bad of [{ lossPercent: -1 }, { lossPercent: 100.5 }, { lossPercent: Number.NaN }, { lossPercent: '5' }, { rtoMs: -1 }, { rtoMs: Infinity }, { rtoMs: 3_600_001 }]) {
      expect(() => emu.set(bad as never)).toThrow(/lossPercent|rto/);
    }
    // A bad value next to a good one: neither is applied.
    expect(() => emu.set({ latencyMs: 5, lossPercent: 200 })).toThrow(/lossPercent/);
    expect(emu.status().settings).toEqual(before.settings);
    expect(emu.status().lastEventSeq).toBe(before.lastEventSeq);
    expect(before.settings['a-to-b']).toMatchObject({ lossPercent: 0, rtoMs: 200 });
  });

  it('over the API: 400 invalid-argument, nothing changed; a good value is in status, the event and /metrics', async () => {
    const echo = await echoServer(cleanups);
    const { emu } = await startEmulator(cleanups, echo.port);
    const api = new LinkApiServer({ emulator: emu });
    const { url } = await api.listen();
    cleanups.push(() => api.close());
    const post = (body: unknown) => fetch(`${url}/v1/set`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const before = emu.status();
    for (const bad of [{ lossPercent: 101 }, { rtoMs: -5 }, { lossPercent: 'x' }, { latencyMs: 1, lossPercent: -2 }, { loss: 5 }]) {
      const r = await post(bad);
      expect(r.status).toBe(400);
      expect((await r.json()).error.code).toBe('invalid-argument');
    }
    expect(emu.status().settings).toEqual(before.settings);
    expect(emu.status().lastEventSeq).toBe(before.lastEventSeq);
    const r = await post({ direction: 'b-to-a', lossPercent: 2.5, rtoMs: 300 });
    expect(r.status).toBe(200);
    const body = await r.json();
    expect(body.status.settings['b-to-a']).toMatchObject({ lossPercent: 2.5, rtoMs: 300 });
    expect(body.status.settings['a-to-b']).toMatchObject({ lossPercent: 0, rtoMs: 200 });
    expect(body.events[0]).toMatchObject({ type: 'link.settings', direction: 'b-to-a', changed: { lossPercent: 2.5, rtoMs: 300 } });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('sanbox_link_loss_ratio{link="timing",direction="b-to-a"} 0.025');
    expect(metrics).toContain('sanbox_link_rto_seconds{link="timing",direction="b-to-a"} 0.3');
    expect(metrics).toContain('sanbox_link_losses_total{link="timing",direction="a-to-b"} 0');
    expect(metrics).toMatch(/sanbox_link_delay_poll_seconds_total\{link="timing"\} [0-9.e-]+/);
  });
});

describe('sanbox link set --loss --rto (the verb, through --api)', () => {
  it('refuses bad values before asking (usage, exit 2) and sends good ones', async () => {
    const echo = await echoServer(cleanups);
    const { emu } = await startEmulator(cleanups, echo.port);
    const api = new LinkApiServer({ emulator: emu });
    const { url } = await api.listen();
    cleanups.push(() => api.close());
    const before = emu.status().lastEventSeq;
    for (const f of [{ loss: '101' }, { loss: '-1' }, { loss: 'many' }, { rto: '-5' }, { rto: '3600001' }]) {
      await expect(linkSetCommand('l', { api: url, json: true, ...f })).rejects.toMatchObject({ exitCode: 2 });
    }
    expect(emu.status().lastEventSeq).toBe(before);
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((c: string) => (out.push(String(c)), true)) as typeof process.stdout.write;
    try {
      expect(await linkSetCommand('l', { api: url, loss: '2.5%', rto: '120', direction: 'a-to-b' })).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    expect(emu.status().settings['a-to-b']).toMatchObject({ lossPercent: 2.5, rtoMs: 120 });
    expect(emu.status().settings['b-to-a']).toMatchObject({ lossPercent: 0, rtoMs: 200 });
    expect(out.join('')).toContain('2.5% (rto 120 ms)');
  });
});
