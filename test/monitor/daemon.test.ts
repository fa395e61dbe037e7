// The pair resync monitor daemon in process, against small fake array APIs
// (test/support/fake-array-api.ts) on 127.0.0.1: the scheduling (each resource on its own, at its
// own interval, on the arrays' events), the monitor's own event stream and HTTP side, automatic
// resync with its backoff and hold, the database across a restart, and a stop while a resync runs.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MonitorAlreadyRunning, MonitorDaemon, RC, followEvents, request, socketPathOf, type DaemonOptions, type MonitorEvent, type Request, type ResourceView } from '../../src/monitor/index.js';
import { mirrorView, startFakeArrayApi, type FakeArrayApi, type FakeArrayOptions } from '../support/fake-array-api.js';
import { freePort, until } from '../support/net.js';

let dir: string;
let daemons: MonitorDaemon[];
let fakes: FakeArrayApi[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-mond-'));
  daemons = [];
  fakes = [];
});

afterEach(async () => {
  // The fakes first: a request a stalled fake holds fails at once, so stop() need not wait for it.
  await Promise.all(fakes.map((f) => f.close()));
  // Bounded: a stop() that waits for a check which never ends fails the test instead of the hook timing out.
  const hung: string[] = [];
  for (const d of daemons) if ((await Promise.race([d.stop().then(() => true), sleep(5000).then(() => false)])) === false) hung.push(d.info?.socket ?? '?');
  await rm(dir, { recursive: true, force: true });
  if (hung.length) throw new Error(`daemon.stop() did not finish within 5 s (${hung.join(', ')})`);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function fake(opts: FakeArrayOptions = {}): Promise<FakeArrayApi> {
  const f = await startFakeArrayApi(opts);
  fakes.push(f);
  return f;
}

async function startDaemon(opts: Partial<DaemonOptions> = {}): Promise<MonitorDaemon> {
  const d = await MonitorDaemon.start({ stateDir: dir, sync: false, checker: { resyncPollMs: 100 }, ...opts });
  daemons.push(d);
  return d;
}

const send = (req: Request) => request({ socketPath: socketPathOf(dir) }, req, 10_000);

async function add(deviceGroup: string, instance: string, interval: number, resync: 'yes' | 'no' = 'no'): Promise<void> {
  const r = await send({ msgType: 'ADD', appName: 'app', deviceGroup, instance, interval, resync });
  expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
}

async function show(deviceGroup: string): Promise<ResourceView> {
  const r = await send({ msgType: 'SHOW', appName: 'app', deviceGroup });
  expect(r.resource, JSON.stringify(r)).toBeDefined();
  return r.resource!;
}

const eventsOf = (d: MonitorDaemon, type: string, deviceGroup?: string): MonitorEvent[] => d.events.since(0).filter((e) => e.type === type && (deviceGroup === undefined || e.deviceGroup === deviceGroup));

describe('MonitorDaemon scheduling', () => {
  it('a stalled array never delays another resource, and its resource is never checked twice at once', async () => {
    const stalled = await fake({ stall: true });
    const quick = await fake(); // answers 404 for the group and the mirror: B reads as deleted
    await startDaemon();
    const addedA = Date.now();
    await add('A', stalled.url, 1);
    await until(() => stalled.inFlight() === 1, 3000, "A's first poll to reach the stalled array");
    const t0 = Date.now();
    await add('B', quick.url, 1);

    const polls = new Set<string>();
    let maxInFlightA = 0;
    let retriggered = false;
    while (Date.now() - t0 < 4500) {
      const b = await show('B');
      if (b.lastPoll) polls.add(b.lastPoll);
      maxInFlightA = Math.max(maxInFlightA, stalled.inFlight());
      if (!retriggered && Date.now() - t0 > 1500) {
        // A trigger while A's check hangs (a change re-plans at once) must queue, not start a second check.
        retriggered = true;
        expect((await send({ msgType: 'CHANGE', appName: 'app', deviceGroup: 'A', interval: 2 })).ok).toBe(true);
      }
      await sleep(100);
    }
    // The window ended before the ApiClient's 10 s timeout could end A's check.
    expect(Date.now() - addedA).toBeLessThan(9000);

    const b = await show('B');
    expect(b).toMatchObject({ pair: 'deleted', reason: 'not-found', lastError: null });
    expect(polls.size, [...polls].join(' ')).toBeGreaterThanOrEqual(4); // the first poll and 3+ more
    expect(quick.mirrorGets('B')).toBeGreaterThanOrEqual(4);

    const a = await show('A');
    expect(a).toMatchObject({ pair: 'unknown', lastPoll: null, timeRemaining: 0 }); // still running its first check
    expect(maxInFlightA).toBe(1);
    expect(stalled.maxInFlight()).toBe(1);
    expect(stalled.requests.filter((r) => r.path !== '/v1/events').map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v1/groups/A']);
  });

  it('polls each resource at its own interval; CHANGE re-plans at once', async () => {
    const api = await fake();
    await startDaemon();
    await add('fast', api.url, 1);
    await add('slow', api.url, 3);
    await until(() => api.streams() === 1 && api.mirrorGets('fast') >= 1 && api.mirrorGets('slow') >= 1, 3000, 'the first polls and the event stream');
    await sleep(300); // the re-check an opened stream asks for
    const f0 = api.mirrorGets('fast');
    const s0 = api.mirrorGets('slow');
    await sleep(6500);
    const fast = api.mirrorGets('fast') - f0;
    const slow = api.mirrorGets('slow') - s0;
    expect(fast, `fast ${fast}, slow ${slow}`).toBeGreaterThanOrEqual(5);
    expect(fast, `fast ${fast}, slow ${slow}`).toBeLessThanOrEqual(8);
    expect(slow, `fast ${fast}, slow ${slow}`).toBeGreaterThanOrEqual(2);
    expect(slow, `fast ${fast}, slow ${slow}`).toBeLessThanOrEqual(3);

    // 3 -> 60: checked at once, then the next poll is a minute away.
    let n = api.mirrorGets('slow');
    let r = await send({ msgType: 'CHANGE', appName: 'app', deviceGroup: 'slow', interval: 60 });
    expect(r).toMatchObject({ ok: true, resource: { intervalSeconds: 60 } });
    await until(() => api.mirrorGets('slow') === n + 1, 1000, 'the check after CHANGE 60');
    await until(async () => (await show('slow')).timeRemaining >= 58, 1000, 'the 60 s plan');
    await sleep(1500);
    expect(api.mirrorGets('slow')).toBe(n + 1);

    // 60 -> 1: the old minute-long timer does not hold it back.
    n = api.mirrorGets('slow');
    const changed = Date.now();
    r = await send({ msgType: 'CHANGE', appName: 'app', deviceGroup: 'slow', interval: 1 });
    expect(r).toMatchObject({ ok: true, resource: { intervalSeconds: 1 } });
    await until(() => api.mirrorGets('slow') === n + 1, 1000, 'the check after CHANGE 1');
    expect(Date.now() - changed).toBeLessThan(1000);
    expect((await show('slow')).timeRemaining).toBeLessThanOrEqual(1);
    await sleep(2300);
    expect(api.mirrorGets('slow') - n).toBeGreaterThanOrEqual(3);
  });

  it("re-checks a resource on its array's mirror.* and group.* events (debounced), not on other events", async () => {
    const api = await fake();
    api.mirrors.set('m1', mirrorView('m1', { fractured: false }));
    await startDaemon();
    await add('m1', api.url, 60);
    await until(() => api.streams() === 1, 3000, 'the event stream');
    await until(async () => (await show('m1')).pair === 'connected', 3000, 'the first poll');
    await sleep(400); // the re-check an opened stream asks for
    const n0 = api.mirrorGets('m1');
    expect((await show('m1')).timeRemaining).toBeGreaterThan(50);

    api.push('lun.created', { lun: 'scratch' });
    api.push('snapshot.created', { lun: 'scratch' });
    await sleep(1000);
    expect(api.mirrorGets('m1')).toBe(n0);

    const pushed = Date.now();
    api.push('mirror.fractured', { mirror: 'm1', image: 'bravo:0' });
    await until(() => api.mirrorGets('m1') === n0 + 1, 1500, 'the check after mirror.fractured');
    const took = Date.now() - pushed;
    expect(took).toBeLessThan(1000);
    expect(took).toBeGreaterThanOrEqual(80); // the daemon's debounce (100 ms)

    // A burst is one check.
    for (let i = 0; i < 5; i++) api.push(i % 2 ? 'group.paused' : 'mirror.image-state', { mirror: 'm1' });
    await until(() => api.mirrorGets('m1') === n0 + 2, 1500, 'the check after the burst');
    await sleep(600);
    expect(api.mirrorGets('m1')).toBe(n0 + 2);
  });
});

describe("MonitorDaemon's own events and HTTP side", () => {
  it('reports resource.added, resource.state and resource.poll-failed on the socket and over SSE, in order; GET answers JSON, POST 405', async () => {
    const api = await fake();
    const deadPort = await freePort();
    const d = await startDaemon({ http: { host: '127.0.0.1', port: 0 } });
    expect(d.info?.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const socketEvents: MonitorEvent[] = [];
    const ac = new AbortController();
    const following = followEvents({ socketPath: socketPathOf(dir) }, 0, (e) => socketEvents.push(e), ac.signal);
    try {
      await add('gone', api.url, 60);
      await add('dead', `http://127.0.0.1:${deadPort}`, 60);
      const want = [
        ['resource.added', 'gone'],
        ['resource.added', 'dead'],
        ['resource.state', 'gone'],
        ['resource.poll-failed', 'dead'],
      ];
      const has = (evs: MonitorEvent[]) => want.every(([t, g]) => evs.some((e) => e.type === t && e.deviceGroup === g));
      await until(() => has(socketEvents), 5000, 'the events on the socket');
      expect(socketEvents.find((e) => e.type === 'resource.state' && e.deviceGroup === 'gone')).toMatchObject({ from: 'unknown', to: 'deleted', reason: 'not-found' });
      expect(socketEvents.find((e) => e.type === 'resource.poll-failed')?.error).toMatch(/unreachable/);
      expect(socketEvents[0]?.type).toBe('monitor.started'); // replayed from since=0
      const seqs = socketEvents.map((e) => e.seq);
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);

      // The same events over HTTP, as SSE: id = seq, event = type, data = the event.
      const sse = await readSse(`${d.info!.http}/v1/events?since=0`, has, 5000);
      for (const e of sse) expect(e.id).toBe(e.event.seq);
      for (let i = 1; i < sse.length; i++) expect(sse[i]!.id).toBeGreaterThan(sse[i - 1]!.id);
      const bySeq = new Map(socketEvents.map((e) => [e.seq, e]));
      for (const { event } of sse) if (bySeq.has(event.seq)) expect(event).toEqual(bySeq.get(event.seq));
      expect(sse.map((e) => e.type)).toEqual(sse.map((e) => e.event.type));

      const resources = await fetch(`${d.info!.http}/v1/resources`);
      expect(resources.status).toBe(200);
      expect(resources.headers.get('content-type')).toMatch(/application\/json/);
      const rbody = (await resources.json()) as { resources: ResourceView[] };
      expect(rbody.resources.map((r) => r.deviceGroup).sort()).toEqual(['dead', 'gone']);
      expect(rbody.resources.find((r) => r.deviceGroup === 'gone')).toMatchObject({ pair: 'deleted', sourceState: 'SMPL' });

      const status = await fetch(`${d.info!.http}/v1/status`);
      expect(status.status).toBe(200);
      expect(status.headers.get('content-type')).toMatch(/application\/json/);
      const sbody = (await status.json()) as Record<string, unknown>;
      expect(sbody).toMatchObject({ resources: 2, pid: process.pid, socket: socketPathOf(dir) });
      expect(sbody.lastEventSeq).toBeGreaterThanOrEqual(Math.max(...seqs));

      const post = await fetch(`${d.info!.http}/v1/resources`, { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } });
      expect(post.status).toBe(405);
      expect(await post.json()).toMatchObject({ error: { code: 'method-not-allowed' } });
    } finally {
      ac.abort();
      await following;
    }
  });
});

describe('MonitorDaemon automatic resync', () => {
  it('resynchronizes a pair fractured by the link once, and leaves it alone with autorecover off', async () => {
    const api = await fake();
    api.mirrors.set('m1', mirrorView('m1', { fractured: true }));
    api.onSynchronize = (name) => {
      api.mirrors.set(name, mirrorView(name, { fractured: false }));
      return { status: 200, body: api.mirrors.get(name) };
    };
    const d = await startDaemon();
    await add('m1', api.url, 1, 'yes');
    // The entry changes (and is saved) before its event goes out: wait for the event.
    await until(() => eventsOf(d, 'resource.resync-done', 'm1').length === 1, 5000, 'the automatic resync');

    const r = await show('m1');
    expect(r).toMatchObject({ pair: 'connected', phase: 'watching', kind: 'mirror', failures: [], direction: { primaryArray: 'alpha', epoch: 1 } });
    expect(r.lastAutoResync!.seconds).toBeGreaterThanOrEqual(0);
    expect(api.syncPosts('m1').map((p) => p.body)).toEqual([{ image: 'bravo:0' }]);
    const suspendedAt = eventsOf(d, 'resource.state', 'm1').find((e) => e.to === 'suspended');
    const started = eventsOf(d, 'resource.resync-started', 'm1');
    const done = eventsOf(d, 'resource.resync-done', 'm1');
    expect(suspendedAt).toMatchObject({ from: 'unknown', reason: 'fractured-link' });
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({ asked: ['mirror synchronize m1 --image bravo:0'] });
    expect(done).toHaveLength(1);
    expect(suspendedAt!.seq).toBeLessThan(started[0]!.seq);
    expect(started[0]!.seq).toBeLessThan(done[0]!.seq);
    await sleep(1200); // more polls of the connected pair ask for nothing
    expect(api.syncPosts()).toHaveLength(1);

    // Autorecover off: a new fracture is recorded, never resynchronized.
    expect(await send({ msgType: 'STOP', appName: 'app', deviceGroup: 'm1' })).toMatchObject({ ok: true, resource: { autorecover: false } });
    api.mirrors.set('m1', mirrorView('m1', { fractured: true }));
    await until(async () => (await show('m1')).pair === 'suspended', 3000, 'the new fracture');
    await sleep(3200); // three more intervals
    expect(api.syncPosts()).toHaveLength(1);
    expect(await show('m1')).toMatchObject({ pair: 'suspended', reason: 'fractured-link', phase: 'watching' });
    expect(eventsOf(d, 'resource.suspension-noted', 'm1').at(-1)).toMatchObject({ decision: 'autorecover-off' });
    expect(eventsOf(d, 'resource.resync-started', 'm1')).toHaveLength(1);

    // On again (SET resync yes): the same fracture is resynchronized.
    expect(await send({ msgType: 'SET', appName: 'app', deviceGroup: 'm1', resync: 'yes' })).toMatchObject({ ok: true });
    await until(() => eventsOf(d, 'resource.resync-done', 'm1').length === 2, 5000, 'the second resync');
    expect(api.syncPosts()).toHaveLength(2);
    expect(await show('m1')).toMatchObject({ pair: 'connected', phase: 'watching' });
  });

  it('backs off after a refused resync and holds the resource after maxFailures, then asks for nothing', async () => {
    const api = await fake();
    api.mirrors.set('m1', mirrorView('m1', { fractured: true }));
    api.onSynchronize = () => ({ status: 409, body: { error: { code: 'state', message: 'x' } } });
    const d = await startDaemon({ checker: { maxFailures: 2, backoffBaseMs: 200, backoffMaxMs: 400, resyncPollMs: 100 } });
    await add('m1', api.url, 1, 'yes');
    await until(() => eventsOf(d, 'resource.held', 'm1').length === 1, 6000, 'the hold');

    const reply = await send({ msgType: 'SHOW', appName: 'app', deviceGroup: 'm1' });
    expect(reply.code).toBe(RC.NOT_PAIR);
    expect(reply.resource).toMatchObject({ phase: 'held', pair: 'error-suspended', reason: 'too-many-failures', retryAt: null, lastAutoResync: null });
    expect(reply.resource!.failures).toHaveLength(2);
    expect(api.syncPosts('m1').map((p) => p.body)).toEqual([{ image: 'bravo:0' }, { image: 'bravo:0' }]);
    // The second attempt waited for the backoff (200 ms after the first failure).
    const [p1, p2] = api.syncPosts('m1');
    expect(p2!.at - p1!.at).toBeGreaterThanOrEqual(180);
    const failed = eventsOf(d, 'resource.resync-failed', 'm1');
    expect(failed).toHaveLength(2);
    expect(failed[0]!.error).toMatch(/x/);
    expect(eventsOf(d, 'resource.held', 'm1')).toHaveLength(1);
    expect(eventsOf(d, 'resource.held', 'm1')[0]).toMatchObject({ reason: 'too-many-failures' });

    const polls = api.mirrorGets('m1');
    await sleep(2500);
    expect(api.mirrorGets('m1')).toBeGreaterThan(polls); // still polled
    expect(api.syncPosts()).toHaveLength(2); // but never resynchronized again
    expect(await show('m1')).toMatchObject({ phase: 'held', pair: 'error-suspended' });
    expect(eventsOf(d, 'resource.held', 'm1')).toHaveLength(1);
  });
});

describe('MonitorDaemon lifecycle', () => {
  it('keeps the database across a restart; a second daemon on a running one throws MonitorAlreadyRunning', async () => {
    const api = await fake();
    const d = await startDaemon();
    await add('one', api.url, 5, 'yes');
    await add('two', api.url, 30, 'no');
    await until(async () => (await send({ msgType: 'SHOWALL' })).resources!.every((r) => r.lastPoll !== null), 3000, 'the first polls');

    await expect(MonitorDaemon.start({ stateDir: dir, sync: false })).rejects.toBeInstanceOf(MonitorAlreadyRunning);
    expect(await send({ msgType: 'GETPID' })).toMatchObject({ ok: true, pid: process.pid }); // the running one is untouched

    const before = (await send({ msgType: 'SHOWALL' })).resources!;
    await d.stop();
    expect((await send({ msgType: 'GETPID' })).code).toBe(RC.NOT_RUNNING);

    await startDaemon();
    const after = (await send({ msgType: 'SHOWALL' })).resources!;
    const stable = (rs: ResourceView[]) => rs.map((r) => ({ appName: r.appName, deviceGroup: r.deviceGroup, instance: r.instance, intervalSeconds: r.intervalSeconds, autorecover: r.autorecover, resyncAdminFractures: r.resyncAdminFractures, addedAt: r.addedAt, pair: r.pair, kind: r.kind }));
    expect(after).toHaveLength(2);
    expect(stable(after)).toEqual(stable(before));
    expect(stable(after)).toMatchObject([
      { deviceGroup: 'one', intervalSeconds: 5, autorecover: true, pair: 'deleted' },
      { deviceGroup: 'two', intervalSeconds: 30, autorecover: false, pair: 'deleted' },
    ]);
  });
});

describe('MonitorDaemon stopping during a resync', () => {
  it('stops at once while a resync runs; the restarted daemon lets the copy run, and resyncs again once the array dropped it', async () => {
    const api = await fake();
    api.mirrors.set('m1', mirrorView('m1', { fractured: true }));
    // The array accepts the resync and copies for ever (SYNCHRONIZING, never done).
    api.onSynchronize = (name) => {
      const v = mirrorView(name, { fractured: false });
      v.images[1] = { ...v.images[1]!, state: 'SYNCHRONIZING', syncProgress: { bytesDone: 1, bytesTotal: 100 } };
      api.mirrors.set(name, v);
      return { status: 200, body: v };
    };
    const checker = { resyncPollMs: 100, backoffBaseMs: 200, backoffMaxMs: 400 };
    const d = await startDaemon({ checker });
    await add('m1', api.url, 1, 'yes');
    await until(() => eventsOf(d, 'resource.resync-started', 'm1').length === 1, 5000, 'the resync');
    await until(async () => (await show('m1')).pair === 'resync', 3000, 'the copy');

    const stopping = Date.now();
    const stopped = await Promise.race([d.stop().then(() => 'stopped'), sleep(3000).then(() => 'still waiting for the resync')]);
    expect(stopped).toBe('stopped');
    expect(Date.now() - stopping).toBeLessThan(2000);

    // The restarted daemon finds the resync it started still copying: it lets it run.
    const d2 = await startDaemon({ checker });
    await sleep(1500);
    expect(api.syncPosts('m1')).toHaveLength(1);
    expect(await show('m1')).toMatchObject({ pair: 'resync', phase: 'resyncing' });

    // The array drops the copy (the pair is fractured again): that resync failed; after the backoff, a new one.
    api.onSynchronize = (name) => {
      api.mirrors.set(name, mirrorView(name, { fractured: false }));
      return { status: 200, body: api.mirrors.get(name) };
    };
    api.mirrors.set('m1', mirrorView('m1', { fractured: true }));
    await until(() => eventsOf(d2, 'resource.resync-done', 'm1').length === 1, 5000, 'the resync after the restart');
    expect(eventsOf(d2, 'resource.check-failed', 'm1')).toEqual([]);
    expect(eventsOf(d2, 'resource.resync-failed', 'm1')).toHaveLength(1);
    expect(eventsOf(d2, 'resource.resync-failed', 'm1')[0]!.error).toMatch(/before the monitor stopped/);
    expect(api.syncPosts('m1')).toHaveLength(2);
    expect(await show('m1')).toMatchObject({ pair: 'connected', phase: 'watching', failures: [expect.any(String)] });
  });
});

interface SseEvent {
  id: number;
  type: string;
  event: MonitorEvent;
}

/** Reads an SSE stream until `enough` holds for the events so far (or `ms` pass); then drops it. */
async function readSse(url: string, enough: (evs: MonitorEvent[]) => boolean, ms: number): Promise<SseEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const out: SseEvent[] = [];
  try {
    const res = await fetch(url, { signal: ac.signal, headers: { Accept: 'text/event-stream' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const id = /^id: (\d+)$/m.exec(block)?.[1];
        const type = /^event: (.+)$/m.exec(block)?.[1];
        const data = /^data: (.+)$/m.exec(block)?.[1];
        if (id === undefined || type === undefined || data === undefined) continue; // retry:, comments
        out.push({ id: Number(id), type, event: JSON.parse(data) as MonitorEvent });
      }
      if (enough(out.map((e) => e.event))) return out;
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  throw new Error(`the SSE stream ${url} ended or timed out with ${out.length} events: ${out.map((e) => e.type).join(', ')}`);
}
