// GET /v1/groups/:ref/perf with a real ControlServer and a recording fake GroupControl: how
// `since` reaches the driver (ms since the epoch, a duration back from the array's now, an ISO
// time), that a bad request calls nothing, the error statuses, the bearer token as for every GET,
// and ApiClient.groupPerf. (The route against a real group: test/cli/group-perf.test.ts.)
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageArray } from '../../src/array/index.js';
import { ApiClient, ClientError, ControlServer } from '../../src/control/index.js';
import { FakeGroups, metrics, secondaryView } from '../support/fake-groups.js';

let dir: string;
let array: StorageArray;
let fake: FakeGroups;
const servers: ControlServer[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-gperfapi-'));
  array = await StorageArray.open({ name: 'alpha', dir, noSync: true });
  fake = new FakeGroups();
  fake.perfRecords = [0, 10, 20].map((s) => metrics({ time: new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString() }));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await array.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(opts: { token?: string; groups?: boolean } = {}): Promise<string> {
  const srv = new ControlServer({ array, ...(opts.groups === false ? {} : { groups: fake }), ...(opts.token ? { token: opts.token } : {}) });
  servers.push(srv);
  return (await srv.listen()).url;
}

const get = async (url: string, headers: Record<string, string> = {}) => {
  const r = await fetch(url, { headers });
  return { status: r.status, body: (await r.json()) as any };
};
const perfCalls = () => fake.calls.filter((c) => c.op === 'perf');

describe('GET /v1/groups/:ref/perf', () => {
  it('hands since to the driver as ms since the epoch', async () => {
    const url = await start();
    const t10 = Date.UTC(2026, 0, 1, 0, 0, 10);
    const all = await get(`${url}/v1/groups/g0/perf`);
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ group: 'g0', since: null, perfEveryMs: 10_000 });
    expect(all.body.records).toHaveLength(3);
    expect(perfCalls()[0]!.args).toEqual(['g0', {}]);
    for (const since of [String(t10), '2026-01-01T00:00:10.000Z', '2026-01-01T00:00:10Z']) {
      const r = await get(`${url}/v1/groups/g0/perf?since=${encodeURIComponent(since)}`);
      expect(r.status, since).toBe(200);
      expect(r.body.records.map((m: { time: string }) => m.time)).toEqual(['2026-01-01T00:00:10.000Z', '2026-01-01T00:00:20.000Z']);
      expect(perfCalls().at(-1)!.args).toEqual(['g0', { sinceMs: t10 }]);
    }
    for (const [d, ms] of [['10m', 600_000], ['30s', 30_000], ['500ms', 500], ['2h', 7_200_000], ['1d', 86_400_000], ['1.5s', 1500]] as const) {
      const before = Date.now();
      await get(`${url}/v1/groups/g0/perf?since=${d}`);
      const sinceMs = (perfCalls().at(-1)!.args[1] as { sinceMs: number }).sinceMs;
      expect(sinceMs, d).toBeGreaterThanOrEqual(before - ms);
      expect(sinceMs, d).toBeLessThanOrEqual(Date.now() - ms);
    }
  });

  it('a bad since or an unknown parameter is 400 invalid-argument and calls nothing', async () => {
    const url = await start();
    for (const q of ['since=', 'since=soon', 'since=-1', 'since=10w', 'since=2026-13-45T00:00:00Z', 'since=1e9', 'since=9999999999999999', 'since=99999999999999h', 'limit=5']) {
      const r = await get(`${url}/v1/groups/g0/perf?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.code, q).toBe('invalid-argument');
    }
    expect(perfCalls()).toEqual([]);
  });

  it('unknown group 404, secondary 409 not-primary, no mirror driver 404: the usual error shape', async () => {
    fake.views.set('s0', secondaryView('s0'));
    const url = await start();
    expect(await get(`${url}/v1/groups/nosuch/perf`)).toEqual({ status: 404, body: { error: { code: 'not-found', message: expect.any(String) } } });
    expect(await get(`${url}/v1/groups/s0/perf`)).toEqual({ status: 409, body: { error: { code: 'not-primary', message: expect.any(String) } } });
    const plain = await start({ groups: false });
    expect((await get(`${plain}/v1/groups/g0/perf`)).body.error.code).toBe('no-mirror-driver');
  });

  it('needs the token like every GET; ApiClient.groupPerf passes since', async () => {
    const url = await start({ token: 'perf-token-123' });
    expect((await get(`${url}/v1/groups/g0/perf`)).status).toBe(401);
    expect((await get(`${url}/v1/groups/g0/perf`, { Authorization: 'Bearer perf-token-123' })).status).toBe(200);
    const c = new ApiClient({ url, token: 'perf-token-123' });
    expect((await c.groupPerf('g0', { since: '2026-01-01T00:00:20Z' })).records).toHaveLength(1);
    expect((await c.groupPerf('g0')).records).toHaveLength(3);
    await expect(new ApiClient({ url }).groupPerf('g0')).rejects.toBeInstanceOf(ClientError);
  });
});
