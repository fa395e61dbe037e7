// GET /metrics of the pair resync monitor's HTTP side: a real daemon in process, against a fake
// array API on 127.0.0.1 (test/support/fake-array-api.ts), scraped over HTTP and parsed by a
// strict parser. A fractured mirror is resynchronized by the monitor: the resource moves from
// suspended to connected, and the checks and resync events are counted.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MonitorDaemon, request, socketPathOf } from '../../src/monitor/index.js';
import { mirrorView, startFakeArrayApi, type FakeArrayApi } from '../support/fake-array-api.js';
import { until } from '../support/net.js';
import { sampleValue, samplesOf, scrape } from '../support/prom-text.js';

let dir: string;
let d: MonitorDaemon | undefined;
let api: FakeArrayApi | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-monmetrics-'));
});
afterEach(async () => {
  await api?.close();
  await d?.stop();
  d = undefined;
  api = undefined;
  await rm(dir, { recursive: true, force: true });
});

const TOKEN = 'monitor-token-0123456789';

describe('GET /metrics of the monitor', () => {
  it('counts resources by pair state, checks and resyncs', async () => {
    api = await startFakeArrayApi();
    api.mirrors.set('m1', mirrorView('m1', { fractured: true }));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    api.onSynchronize = (name) => {
      void held.then(() => api!.mirrors.set(name, mirrorView(name, { fractured: false })));
      return { status: 200, body: api!.mirrors.get(name) };
    };
    d = await MonitorDaemon.start({ stateDir: dir, sync: false, checker: { resyncPollMs: 100 }, http: { host: '127.0.0.1', port: 0 } });
    const url = `${d.info!.http!}/metrics`;
    const empty = await scrape(url);
    expect(samplesOf(empty, 'sanbox_monitor_resources').every((s) => s.value === 0)).toBe(true);
    expect(sampleValue(empty, 'sanbox_monitor_checks_total', {})).toBe(0);

    const r = await request({ socketPath: socketPathOf(dir) }, { msgType: 'ADD', appName: 'app', deviceGroup: 'm1', instance: api.url, interval: 1, resync: 'yes' }, 10_000);
    expect(r.ok).toBe(true);
    await until(async () => {
      const f = await scrape(url);
      return samplesOf(f, 'sanbox_monitor_events_total', { type: 'resource.resync-started' }).length === 1;
    }, 5000, 'the resync to start');
    const during = await scrape(url);
    const res = { app: 'app', device_group: 'm1' };
    expect(sampleValue(during, 'sanbox_monitor_resource_phase', { ...res, state: 'resyncing' })).toBe(1);
    expect(sampleValue(during, 'sanbox_monitor_checks_total', {})).toBeGreaterThanOrEqual(1);
    release();
    await until(async () => samplesOf(await scrape(url), 'sanbox_monitor_events_total', { type: 'resource.resync-done' }).length === 1, 5000, 'the resync to finish');
    const after = await scrape(url);
    expect(sampleValue(after, 'sanbox_monitor_events_total', { type: 'resource.resync-started' })).toBe(1);
    expect(sampleValue(after, 'sanbox_monitor_events_total', { type: 'resource.resync-done' })).toBe(1);
    expect(sampleValue(after, 'sanbox_monitor_resources', { state: 'connected' })).toBe(1);
    expect(sampleValue(after, 'sanbox_monitor_resources', { state: 'suspended' })).toBe(0);
    expect(sampleValue(after, 'sanbox_monitor_resource_pair_state', { ...res, state: 'connected' })).toBe(1);
    expect(sampleValue(after, 'sanbox_monitor_resource_poll_error', res)).toBe(0);
    expect(sampleValue(after, 'sanbox_monitor_checks_total', {})).toBeGreaterThan(sampleValue(during, 'sanbox_monitor_checks_total', {}));
  });

  it('with a token: a wrong token gets 401 and no metrics', async () => {
    d = await MonitorDaemon.start({ stateDir: dir, sync: false, token: TOKEN, http: { host: '127.0.0.1', port: 0 } });
    const url = `${d.info!.http!}/metrics`;
    const res = await fetch(url, { headers: { Authorization: 'Bearer wrong-token-0123456789' } });
    const text = await res.text();
    expect(res.status).toBe(401);
    expect(JSON.parse(text).error.code).toBe('unauthorized');
    expect(text).not.toContain('sanbox_monitor');
    const f = await scrape(url, { Authorization: `Bearer ${TOKEN}` });
    expect(sampleValue(f, 'sanbox_monitor_checks_total', {})).toBe(0);
  });
});
