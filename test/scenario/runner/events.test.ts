// The event collector's polled sources (src/scenario/runner/events.ts): where a source's events
// were taken up to (SeqCursor), a restarted source's events taken from its first although its seq
// went backwards, and a site automation controller's stream (source automation:SITE, every request
// with the lab's automation token) read through the collector, across a restart of the controller.
import { afterEach, describe, expect, it } from 'vitest';
import type { LabState } from '../../../src/cli/lab/index.js';
import { ServiceEvents, ServiceHttp } from '../../../src/service-kit/index.js';
import { LabApis } from '../../../src/scenario/runner/apis.js';
import { EventCollector, SeqCursor, type RawEvent } from '../../../src/scenario/runner/events.js';
import type { RunLab } from '../../../src/scenario/runner/lab.js';

const ev = (seq: number, time = `t${seq}`, type = 'automation.x'): RawEvent => ({ seq, time, type });
const seqs = (es: RawEvent[] | null) => es?.map((e) => e.seq) ?? null;

describe('SeqCursor', () => {
  it('takes everything first, then asks from one before the last taken and takes only the newer', () => {
    const c = new SeqCursor();
    expect(c.since()).toBe(0);
    expect(seqs(c.take([ev(1), ev(2), ev(3)]))).toEqual([1, 2, 3]);
    expect(c.since()).toBe(2);
    expect(seqs(c.take([ev(3)]))).toEqual([]); // the last one again, nothing new
    expect(seqs(c.take([ev(3), ev(4)]))).toEqual([4]);
    // the last one fell out of the source's buffer under a burst: the newer ones are new
    expect(seqs(c.take([ev(9), ev(10)]))).toEqual([9, 10]);
  });

  it('a source restarted below the last seq: the answer lacks the last event; everything it keeps is new', () => {
    const c = new SeqCursor();
    c.take([ev(1), ev(2), ev(3), ev(4), ev(5)]);
    expect(c.take([])).toBeNull(); // ?since=4 of a process at seq 2
    expect(seqs(c.takeAll([ev(1, 'n1'), ev(2, 'n2')]))).toEqual([1, 2]);
    expect(c.since()).toBe(1);
    expect(seqs(c.take([ev(2, 'n2'), ev(3, 'n3')]))).toEqual([3]);
  });

  it('a source restarted and already past the last seq: another event at that seq; nothing restarted yet: nothing taken twice', () => {
    const c = new SeqCursor();
    c.take([ev(1), ev(2)]);
    expect(c.take([ev(2, 'n2'), ev(3, 'n3')])).toBeNull();
    expect(seqs(c.takeAll([ev(1, 'n1'), ev(2, 'n2'), ev(3, 'n3')]))).toEqual([1, 2, 3]);
    // restarted with nothing yet: the next events are taken from the first
    expect(c.take([])).toBeNull();
    expect(seqs(c.takeAll([]))).toEqual([]);
    expect(c.since()).toBe(0);
    expect(seqs(c.take([ev(1, 'm1')]))).toEqual([1]);
    // a false alarm (the last one is there when asked for all): only the newer
    expect(seqs(c.takeAll([ev(1, 'm1'), ev(2, 'm2')]))).toEqual([2]);
  });
});

describe('events of an automation controller (automation:SITE)', () => {
  const TOKEN = 'sanbox-test-automation-token';
  const servers: ServiceHttp[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function controller(port = 0): Promise<{ events: ServiceEvents; port: number }> {
    const events = new ServiceEvents();
    const http = new ServiceHttp({ service: 'automation controller', host: '127.0.0.1', port, token: TOKEN, events, get: {} });
    servers.push(http);
    return { events, port: await http.start() };
  }

  async function until(what: () => boolean, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!what()) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('reads the stream with the token, and a restarted controller\'s events from its first', async () => {
    const first = await controller();
    const url = `http://127.0.0.1:${first.port}`;
    expect((await fetch(`${url}/v1/events`, { headers: { Accept: 'application/json' } })).status).toBe(401);
    const state = { arrays: [], automation: { dir: '/nowhere', token: TOKEN, controllers: [{ site: 'east', url, pid: 1, config: '/nowhere/east.json' }] } } as unknown as LabState;
    const apis = new LabApis({ name: 'test' } as RunLab, state, new Map());
    expect(apis.automationSites()).toEqual(['east']);
    const collector = new EventCollector(apis, Date.now());
    const seen = () => collector.events.filter((e) => e.source === 'automation:east').map((e) => `${e.type}#${e.data.seq}`);
    try {
      collector.start();
      for (const t of ['automation.lease-acquired', 'automation.operation-started', 'automation.operation-succeeded']) first.events.emit(t, { rg: 'rg0' });
      await until(() => seen().length === 3);
      // the site is restored: the controller starts again, its seq at 1
      await servers.shift()!.close();
      const second = await controller(first.port);
      second.events.emit('automation.join-cleanup', { rg: 'rg0' });
      second.events.emit('automation.failback-requested', { rg: 'rg0' });
      await until(() => seen().length === 5);
      second.events.emit('automation.operation-succeeded', { rg: 'rg0' });
      await until(() => seen().length === 6);
      await new Promise((r) => setTimeout(r, 1200)); // two more polls: nothing taken twice
      expect(seen()).toEqual([
        'automation.lease-acquired#1',
        'automation.operation-started#2',
        'automation.operation-succeeded#3',
        'automation.join-cleanup#1',
        'automation.failback-requested#2',
        'automation.operation-succeeded#3',
      ]);
      expect(collector.count('automation.operation-succeeded', 'automation:east')).toBe(2);
    } finally {
      await collector.stop();
    }
  });
});
