// The heartbeat agent's HTTP API and the witness, in-process: real HeartbeatAgents (intervals of
// 100 ms; no volumes but one, served by a real `sanbox serve`) driven with fetch. Every wait has a
// deadline.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { checkAgentConfig, HeartbeatAgent, Witness, type AgentConfig } from '../../../src/heartbeat/agent/index.js';
import { TABLE_BLOCK_BYTES, TABLE_OFFSET, decodeTableBlock, encodeHeartbeat, type HeartbeatMessage } from '../../../src/heartbeat/index.js';
import { NbdClient } from '../../../src/check/nbd-client/index.js';
import { freePort } from '../../support/net.js';
import { serve } from '../../support/serve.js';

const INTERVAL_MS = 100;
const TIMEOUT_INTERVALS = 3;
const CLUSTER = 'hbtest';

const dirs: string[] = [];
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A URL nothing listens on: a port that was free a moment ago. */
async function closedUrl(): Promise<string> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

function config(host: string, site: 'alpha' | 'bravo', peers: { name: string; url: string }[], extra: Partial<AgentConfig> = {}): AgentConfig {
  const stateDir = mkdtempSync(join(tmpdir(), 'sanbox-hb-api-'));
  dirs.push(stateDir);
  return checkAgentConfig({
    lab: 'hbtest',
    cluster: CLUSTER,
    instance: 1,
    host,
    site,
    production: 'alpha',
    standby: 'bravo',
    intervalMs: INTERVAL_MS,
    timeoutIntervals: TIMEOUT_INTERVALS,
    recoverAfter: 2,
    listen: { host: '127.0.0.1', port: 0 },
    siblings: [{ name: host, url: 'http://127.0.0.1:1' }],
    peers,
    send: [],
    receive: [],
    arrays: [],
    failover: { automatic: true, mirrors: [], groups: [] },
    fence: { enabled: false, luns: [] },
    actions: {},
    stateDir,
    ...extra,
  });
}

interface Running {
  agent: HeartbeatAgent;
  url: string;
  stop(): Promise<void>;
}

async function start(cfg: AgentConfig): Promise<Running> {
  const agent = new HeartbeatAgent(cfg);
  const port = await agent.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await agent.stop();
  };
  stops.push(stop);
  return { agent, url: `http://127.0.0.1:${port}`, stop };
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, deadlineMs = 5000): Promise<T> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Json = Record<string, any>; // the API's JSON, read loosely

async function get(url: string, path: string): Promise<Json> {
  const r = await fetch(url + path, { headers: { Accept: 'application/json' }, signal: AbortSignal.timeout(5000) });
  expect(r.status).toBe(200);
  return (await r.json()) as Json;
}

async function post(url: string, path: string, body: unknown, headers: Record<string, string> = { 'Content-Type': 'application/json' }): Promise<{ status: number; body: Json }> {
  const r = await fetch(url + path, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body), signal: AbortSignal.timeout(5000) });
  return { status: r.status, body: (await r.json()) as Json };
}

const events = async (url: string, type?: string): Promise<Json[]> => ((await get(url, '/v1/events')).events as Json[]).filter((e) => type === undefined || e.type === type);

/** Waits for `n` more cycles of the agent. */
async function cycles(a: Running, n: number): Promise<void> {
  const from = a.agent.cycles;
  await until(`${n} cycles`, () => a.agent.cycles >= from + n, n * INTERVAL_MS * 5 + 1000);
}

let serial = 0;
function heartbeat(over: Partial<HeartbeatMessage> = {}): string {
  const m: HeartbeatMessage = { serial: ++serial, timeMs: Date.now(), senderId: 'bravo-1', site: 'bravo', clusterName: CLUSTER, instance: 1, role: 'standby', master: true, noticeSeq: 0, ...over };
  return encodeHeartbeat(m).toString('base64');
}

const notice = (over: Json = {}) => ({ seq: 1, componentId: 'bravo:disk0', componentKind: 'lun', details: 'cache lost', address: 'sp-a', detectedAtMs: Date.now(), level: 'SERIOUS', senderId: 'bravo-1', ...over });

/** What a refused request must not change (the periodic readings may change the rest). */
async function fingerprint(a: Running) {
  const s = await get(a.url, '/v1/status');
  const kinds = ['hb.mode', 'hb.notice', 'hb.notice-sent', 'hb.installed', 'hb.uninstalled', 'hb.peer-failed-over'];
  return {
    networkEnable: s.table.networkEnable,
    mirrorsMode: s.table.mirrorsMode,
    devices: s.table.devices.map((d: Json) => [d.mirror, d.status]),
    send: s.send,
    receive: s.receive,
    master: s.master,
    notices: (await get(a.url, '/v1/notices')).notices,
    serial: a.agent.sender.noticeSeq,
    peerFailedOver: s.peerFailedOver,
    network: s.observations.network?.senderId ?? null,
    events: (await events(a.url)).filter((e) => kinds.includes(e.type)).length,
  };
}

describe('heartbeat agent API', () => {
  it('GET /v1/status: the agent, its master, the table, what it sends and reads', async () => {
    const a = await start(config('alpha-1', 'alpha', [{ name: 'bravo-1', url: await closedUrl() }]));
    const s = await until('the agent elects itself', async () => {
      const x = await get(a.url, '/v1/status');
      return x.isMaster ? x : undefined;
    });
    expect(s).toMatchObject({
      lab: 'hbtest',
      cluster: CLUSTER,
      instance: 1,
      host: 'alpha-1',
      site: 'alpha',
      role: 'production',
      production: 'alpha',
      standby: 'bravo',
      master: 'alpha-1',
      isMaster: true,
      intervalMs: INTERVAL_MS,
      timeoutMs: INTERVAL_MS * TIMEOUT_INTERVALS,
      send: { network: true, mirrors: true, disabled: [], volumes: [] },
      receive: [],
      witness: { state: 'not-configured' },
      failedOver: null,
      peerFailedOver: false,
      fenced: false,
      openFailures: [],
      notices: 0,
    });
    expect(s.cycles).toBeGreaterThan(0);
    expect(s.table).toMatchObject({ networkEnable: expect.stringMatching(/^(ENABLE|FAILED)$/), mirrorsMode: 'ENABLE', remoteGroupStatusByNetwork: expect.any(String) });
    expect(s.table.devices).toHaveLength(8);
    expect(s.table.devices.every((d: Json) => d.status === 'NULL')).toBe(true);
    expect(Object.keys(s.observations)).toEqual(['network']);
    const started = await events(a.url, 'hb.started');
    expect(started).toEqual([expect.objectContaining({ host: 'alpha-1', site: 'alpha', role: 'production', intervalMs: INTERVAL_MS, timeoutMs: 300, send: [], receive: [], witness: false })]);
    expect((await get(a.url, '/v1/notices')).notices).toEqual([]);
    const unknown = await fetch(a.url + '/v1/nope');
    expect(unknown.status).toBe(404);
  });

  it('refuses bad bodies with 400 (or 403, 404, 409) and changes nothing', async () => {
    const a = await start(config('alpha-1', 'alpha', [{ name: 'bravo-1', url: await closedUrl() }]));
    // no peer answers: once the network path is FAILED (silent past the timeout) the table holds still
    await until('master and a silent network', async () => a.agent.amMaster && (await get(a.url, '/v1/status')).table.networkEnable === 'FAILED', 3000);
    const before = await fingerprint(a);
    expect(before).toMatchObject({ network: '', master: 'alpha-1', serial: 0, events: 0, notices: [] });
    const block = heartbeat();
    const endpointOk = { mirror: 'hb9', address: 'alpha:hb9>bravo:hb9', uris: ['nbd://127.0.0.1:1/hb9'], array: { name: 'alpha', url: 'http://127.0.0.1:1' } };
    const refusals: [string, unknown, number, RegExp][] = [
      // not JSON, not an object, unknown fields, wrong types
      ['/v1/heartbeat', '{"block":', 400, /not JSON/],
      ['/v1/heartbeat', [], 400, /JSON object/],
      ['/v1/heartbeat', { block, extra: 1 }, 400, /unknown field "extra"/],
      ['/v1/heartbeat', { block: 42 }, 400, /block must be/],
      ['/v1/heartbeat', {}, 400, /block must be/],
      ['/v1/heartbeat', { block: Buffer.alloc(100).toString('base64') }, 400, /block must be 4096 bytes/],
      ['/v1/heartbeat', { block: Buffer.alloc(4097).toString('base64') }, 400, /block must be 4096 bytes/],
      // a heartbeat from a known peer with a bad flag must not be delivered
      ['/v1/heartbeat', { block, failedOver: 'yes' }, 400, /failedOver must be true or false/],
      ['/v1/heartbeat', { block, fenced: 1 }, 400, /fenced must be true or false/],
      ['/v1/local', { host: 'alpha-9', master: null }, 403, /not a host of site alpha/],
      ['/v1/local', { host: 'alpha-1', master: null }, 403, /not a host of site alpha/],
      ['/v1/local', { host: 'alpha-9' }, 400, /master must be/],
      ['/v1/local', { host: 'alpha-9', master: null, x: 1 }, 400, /unknown field "x"/],
      ['/v1/notice', { notice: notice({ senderId: 'mallory' }) }, 403, /mallory is not a host of the other site/],
      ['/v1/notice', { notice: notice({ level: 'LOUD' }) }, 400, /bad seq, level or componentKind/],
      ['/v1/notice', { notice: notice({ componentKind: 'toaster' }) }, 400, /bad seq, level or componentKind/],
      ['/v1/notice', { notice: notice({ seq: 0 }) }, 400, /bad seq, level or componentKind/],
      ['/v1/notice', { notice: notice({ colour: 'red' }) }, 400, /unknown field "colour"/],
      ['/v1/notice', { notice: notice(), extra: true }, 400, /unknown field "extra"/],
      ['/v1/notice', { notice: notice({ componentId: 42 }) }, 400, /componentId/],
      ['/v1/notice', { notice: notice({ details: 'x'.repeat(300) }) }, 400, /details/],
      ['/v1/notice', { notice: notice({ detectedAtMs: 'now' }) }, 400, /detectedAtMs/],
      ['/v1/mode', {}, 400, /give network, mirrors or device/],
      ['/v1/mode', { network: 'off' }, 400, /network must be true or false/],
      ['/v1/mode', { mirrors: 0 }, 400, /mirrors must be true or false/],
      ['/v1/mode', { device: { mirror: 'hb0' } }, 400, /device.enabled must be true or false/],
      ['/v1/mode', { device: { mirror: 'hb0', enabled: false, x: 1 } }, 400, /unknown field "x"/],
      ['/v1/mode', { device: { mirror: 'hb0', enabled: false } }, 404, /hb0 is not installed/],
      ['/v1/mode', { network: false, colour: 'red' }, 400, /unknown field "colour"/],
      ['/v1/notify', { componentId: 'alpha:disk0', componentKind: 'lun', level: 'LOUD' }, 400, /level must be one of/],
      ['/v1/notify', { componentId: 'alpha:disk0', componentKind: 'toaster', level: 'SERIOUS' }, 400, /componentKind must be one of/],
      ['/v1/notify', { componentKind: 'lun', level: 'SERIOUS' }, 400, /componentId must be/],
      ['/v1/notify', { componentId: 'x'.repeat(100), componentKind: 'lun', level: 'SERIOUS' }, 400, /componentId/],
      ['/v1/notify', { componentId: 'alpha:disk0', componentKind: 'lun', level: 'SERIOUS', when: 'now' }, 400, /unknown field "when"/],
      ['/v1/install', { mirror: 'hb9', from: 'charlie', send: endpointOk, receive: endpointOk }, 400, /from must be alpha or bravo/],
      ['/v1/install', { mirror: 'hb9', from: 'bravo', send: endpointOk, receive: { ...endpointOk, uris: [] } }, 400, /receive.uris must list nbd:\/\/ URIs/],
      ['/v1/install', { mirror: 'hb9', from: 'bravo', send: endpointOk, receive: { ...endpointOk, uris: ['http://x'] } }, 400, /receive.uris must list/],
      ['/v1/install', { mirror: 'hb9', from: 'bravo', send: { ...endpointOk, array: undefined }, receive: endpointOk }, 400, /JSON object/],
      ['/v1/install', { mirror: 'hb9', from: 'bravo', send: { ...endpointOk, port: 1 }, receive: endpointOk }, 400, /unknown field "port"/],
      ['/v1/install', { mirror: 'hb9', from: 'bravo', send: endpointOk, receive: { ...endpointOk, mirror: 'hb8' } }, 400, /must be the mirror/],
      ['/v1/install', { mirror: 'hb9', from: 'bravo', send: endpointOk, receive: { ...endpointOk, array: { name: 'bravo', url: 'http://x', token: 5 } } }, 400, /token must be/],
      ['/v1/uninstall', { mirror: 'hb9' }, 404, /hb9 is not installed/],
      ['/v1/uninstall', {}, 400, /mirror must be/],
    ];
    // every refusal is checked, the wrong ones listed together (by index: some bodies are 4 KiB of base64)
    const wrong: string[] = [];
    for (const [i, [path, body, status, message]] of refusals.entries()) {
      const r = await post(a.url, path, body);
      const got = `${r.status} ${r.body.error?.code ?? ''}: ${r.body.error?.message ?? JSON.stringify(r.body)}`;
      if (r.status !== status || !message.test(r.body.error?.message ?? '') || typeof r.body.error?.code !== 'string') wrong.push(`#${i} POST ${path}: want ${status} ${message}, got ${got}`);
    }
    expect(wrong).toEqual([]);
    // a few cycles later still nothing changed: no refused heartbeat reached the receiver
    await cycles(a, 3);
    expect(await fingerprint(a)).toEqual(before);
  });

  it('/v1/notify on a host that is not its site master: 409; /v1/local from a sibling names the master', async () => {
    const bravo0 = await closedUrl();
    // a 1 s interval: bravo-1 waits (3 intervals) for its sibling before it elects anyone, so the
    // local heartbeat below always arrives first, however loaded the machine
    const a = await start(config('bravo-1', 'bravo', [{ name: 'alpha-1', url: await closedUrl() }], { intervalMs: 1000, siblings: [{ name: 'bravo-0', url: bravo0 }, { name: 'bravo-1', url: 'http://127.0.0.1:1' }] }));
    expect(a.agent.master).toBeNull();
    // bravo-0 (first in order) says it is the master: bravo-1 follows it
    const local = await post(a.url, '/v1/local', { host: 'bravo-0', master: 'bravo-0' });
    expect(local).toEqual({ status: 200, body: { master: 'bravo-0' } });
    const r = await post(a.url, '/v1/notify', { componentId: 'bravo:disk0', componentKind: 'lun', level: 'SERIOUS' });
    expect(r.status).toBe(409);
    expect(r.body.error).toEqual({ code: 'not-master', message: 'bravo-1 is not its site\'s master (bravo-0)' });
    expect(await events(a.url, 'hb.notice-sent')).toEqual([]);
  });

  it('/v1/notify on the master sends notice 1, 2 over every path; /v1/notice from a known peer is kept once', async () => {
    const a = await start(config('alpha-1', 'alpha', [{ name: 'bravo-1', url: await closedUrl() }]));
    await until('master', () => a.agent.amMaster);
    const r = await post(a.url, '/v1/notify', { componentId: 'alpha:disk0', componentKind: 'lun', level: 'SERIOUS', details: 'a test' });
    expect(r.status).toBe(200);
    expect(r.body.notice).toMatchObject({ seq: 1, componentId: 'alpha:disk0', componentKind: 'lun', level: 'SERIOUS', details: 'a test', address: '', senderId: 'alpha-1' });
    expect(r.body.delivered).toEqual([]);
    expect(r.body.failed).toEqual([expect.stringMatching(/^network bravo-1: /)]);
    expect((await post(a.url, '/v1/notify', { componentId: 'alpha:disk1', componentKind: 'lun', level: 'MODERATE' })).body.notice.seq).toBe(2);

    expect(await post(a.url, '/v1/notice', { notice: notice() })).toEqual({ status: 200, body: { ok: true } });
    expect(await post(a.url, '/v1/notice', { notice: notice() })).toEqual({ status: 200, body: { ok: true } });
    const kept = (await get(a.url, '/v1/notices')).notices as Json[];
    expect(kept).toEqual([expect.objectContaining({ seq: 1, componentId: 'bravo:disk0', level: 'SERIOUS', senderId: 'bravo-1', via: ['network'] })]);
    expect(await events(a.url, 'hb.notice')).toHaveLength(1);
  });

  it('refuses a POST without the JSON content type (415) and a foreign Origin (403)', async () => {
    const a = await start(config('alpha-1', 'alpha', [{ name: 'bravo-1', url: await closedUrl() }]));
    const before = (await events(a.url, 'hb.mode')).length;
    const plain = await post(a.url, '/v1/mode', { network: false }, { 'Content-Type': 'text/plain' });
    expect(plain.status).toBe(415);
    expect(plain.body.error.code).toBe('unsupported-media-type');
    const none = await fetch(a.url + '/v1/mode', { method: 'POST', body: new Uint8Array(Buffer.from('{"network":false}')) });
    expect(none.status).toBe(415);
    const foreign = await post(a.url, '/v1/mode', { network: false }, { 'Content-Type': 'application/json', Origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.code).toBe('forbidden-origin');
    const read = await fetch(a.url + '/v1/status', { headers: { Origin: 'http://evil.example' } });
    expect(read.status).toBe(403);
    expect((await get(a.url, '/v1/status')).table.networkEnable).not.toBe('DISABLE');
    expect(await events(a.url, 'hb.mode')).toHaveLength(before);
    const get405 = await fetch(a.url + '/v1/status', { method: 'PUT', headers: { 'Content-Type': 'application/json' } });
    expect(get405.status).toBe(405);
  });

  it('/v1/mode {network: false} disables the network path, forwards it, and emits hb.mode', async () => {
    const peer = await closedUrl();
    const a = await start(config('alpha-1', 'alpha', [{ name: 'bravo-1', url: peer }]));
    const r = await post(a.url, '/v1/mode', { network: false });
    expect(r.status).toBe(200);
    expect(r.body.ok).toBe(true);
    expect(r.body.table.networkEnable).toBe('DISABLE');
    expect(r.body.forwardedTo).toEqual([{ host: 'bravo-1', ok: false, error: expect.any(String) }]);
    const s = await get(a.url, '/v1/status');
    expect(s.table.networkEnable).toBe('DISABLE');
    expect(s.table.remoteGroupStatusByNetwork).toBe('UNKNOWN');
    expect(s.send.network).toBe(false);
    expect(await events(a.url, 'hb.mode')).toEqual([expect.objectContaining({ host: 'alpha-1', network: false, forwarded: false })]);
    expect(await events(a.url, 'hb.table')).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'networkEnable', to: 'DISABLE' })]));
    // a forwarded request is not forwarded again; network: true enables it again
    const back = await post(a.url, '/v1/mode', { network: true, forwarded: true });
    expect(back.body.forwardedTo).toEqual([]);
    expect(back.body.table.networkEnable).toBe('ENABLE');
    expect((await get(a.url, '/v1/status')).send.network).toBe(true);
  });

  it('a network heartbeat from a known peer makes the network path ALIVE; one from an unknown sender does not', async () => {
    const a = await start(config('alpha-1', 'alpha', [{ name: 'bravo-1', url: await closedUrl() }]));
    const s = await until(
      'network ALIVE',
      async () => {
        const r = await post(a.url, '/v1/heartbeat', { block: heartbeat() });
        expect(r).toEqual({ status: 200, body: { ok: true } });
        const x = await get(a.url, '/v1/status');
        return x.table.remoteGroupStatusByNetwork === 'ALIVE' ? x : undefined;
      },
      INTERVAL_MS * 20,
    );
    expect(s.table.networkEnable).toBe('ENABLE');
    expect(s.observations.network).toMatchObject({ senderId: 'bravo-1' });
    expect(s.lastPeerContactAgoMs).toEqual(expect.any(Number));
    // a corrupt block is answered (it is a heartbeat that did not decode) and is no peer contact
    const junk = Buffer.alloc(4096, 7).toString('base64');
    expect(await post(a.url, '/v1/heartbeat', { block: junk })).toEqual({ status: 200, body: { ok: false, reason: 'bad-magic' } });

    const b = await start(config('alpha-2', 'alpha', [{ name: 'bravo-1', url: await closedUrl() }]));
    const from = b.agent.cycles;
    while (b.agent.cycles < from + 8) {
      expect((await post(b.url, '/v1/heartbeat', { block: heartbeat({ senderId: 'mallory' }) })).status).toBe(200);
      await new Promise((r) => setTimeout(r, INTERVAL_MS / 2));
    }
    const t = await get(b.url, '/v1/status');
    expect(t.table.remoteGroupStatusByNetwork).not.toBe('ALIVE');
    expect(t.table.networkEnable).toBe('FAILED');
    expect(t.lastPeerContactAgoMs).toBeNull();
    expect(await events(b.url, 'hb.table')).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'networkEnable', from: 'ENABLE', to: 'FAILED', reason: 'unknown-sender' })]));
  });

  it('the standby fails over (no promote lists) once the production stops for the timeout', async () => {
    const prod = await start(config('alpha-1', 'alpha', [{ name: 'bravo-1', url: await closedUrl() }]));
    const standby = await start(config('bravo-1', 'bravo', [{ name: 'alpha-1', url: prod.url }]));
    prod.agent.cfg.peers[0]!.url = standby.url;
    // both see each other on the network
    await until('standby sees the production', async () => (await get(standby.url, '/v1/status')).table.remoteGroupStatusByNetwork === 'ALIVE', 5000);
    await until('production sees the standby', async () => (await get(prod.url, '/v1/status')).table.remoteGroupStatusByNetwork === 'ALIVE', 5000);
    const alive = await get(standby.url, '/v1/status');
    expect(alive.failedOver).toBeNull();
    expect(alive.role).toBe('standby');
    expect(await events(standby.url, 'hb.failover')).toEqual([]);

    await prod.stop();
    const s = await until(
      'the standby fails over',
      async () => {
        const x = await get(standby.url, '/v1/status');
        return x.failedOver ? x : undefined;
      },
      INTERVAL_MS * TIMEOUT_INTERVALS * 10,
    );
    expect(s.failedOver).toMatchObject({ promoted: [], failed: [], detectionMs: expect.any(Number) });
    // not before the timeout: detection counts from the last valid heartbeat
    expect(s.failedOver.detectionMs).toBeGreaterThan(INTERVAL_MS * TIMEOUT_INTERVALS);
    expect(s.table.networkEnable).toBe('FAILED');
    const fo = await events(standby.url, 'hb.failover');
    expect(fo).toEqual([expect.objectContaining({ host: 'bravo-1', site: 'bravo', promoted: [], failed: [], timeoutMs: 300, intervalMs: INTERVAL_MS })]);
    expect(await events(standby.url, 'hb.failover-started')).toEqual([expect.objectContaining({ reason: 'all-paths-failed' })]);
    // it happens once
    await cycles(standby, 3);
    expect(await events(standby.url, 'hb.failover')).toHaveLength(1);
  });
});

describe('heartbeat agent: its table on the heartbeat volumes', () => {
  it('a failed table save is written again each interval until the volume takes it, without a table change', async () => {
    const port = await freePort(); // nothing serves the volume yet
    const uri = `nbd://127.0.0.1:${port}/hb0`;
    const volume = { mirror: 'hb0', address: 'alpha:hb0>bravo:hb0', uris: [uri], array: { name: 'alpha', url: await closedUrl() } };
    const a = await start(config('alpha-1', 'alpha', [], { send: [volume] }));
    await until('the failed save', async () => (await events(a.url, 'hb.table-save-failed')).length > 0);
    const changes = (await events(a.url, 'hb.table')).length;
    const dir = mkdtempSync(join(tmpdir(), 'sanbox-hb-vol-'));
    dirs.push(dir);
    const array = await serve(dir, port, ['hb0=1M']);
    stops.push(() => array.kill());
    await until('the table saved', async () => (await events(a.url, 'hb.table-saved')).length > 0, 15_000);
    const c = await NbdClient.connect(uri);
    const r = decodeTableBlock(await c.read(TABLE_OFFSET, TABLE_BLOCK_BYTES));
    await c.close();
    expect(r.ok).toBe(true);
    expect(await events(a.url, 'hb.table-save-failed')).toEqual([expect.objectContaining({ where: 'volume hb0' })]); // once per run of failures
    expect((await events(a.url, 'hb.table')).length).toBe(changes); // the retry, not a change, wrote it
  }, 30_000);
});

describe('witness', () => {
  async function witness(): Promise<{ w: Witness; url: string }> {
    const w = new Witness({ host: '127.0.0.1', port: 0, cluster: CLUSTER });
    const port = await w.start();
    stops.push(() => w.stop());
    return { w, url: `http://127.0.0.1:${port}` };
  }

  it('POST /v1/beat: wrong cluster 403, missing or unknown fields 400, nothing recorded', async () => {
    const { url } = await witness();
    const cases: [unknown, number, RegExp][] = [
      [{ cluster: 'other', site: 'alpha', host: 'alpha-1' }, 403, /serves cluster hbtest, not "other"/],
      [{ site: 'alpha', host: 'alpha-1' }, 403, /not undefined/],
      [{ cluster: CLUSTER, host: 'alpha-1' }, 400, /site and host must be non-empty strings/],
      [{ cluster: CLUSTER, site: 'alpha' }, 400, /site and host must be non-empty strings/],
      [{ cluster: CLUSTER, site: '', host: 'alpha-1' }, 400, /site and host/],
      [{ cluster: CLUSTER, site: 'alpha', host: 7 }, 400, /site and host/],
      [{ cluster: CLUSTER, site: 'alpha', host: 'alpha-1', colour: 'red' }, 400, /unknown field "colour"/],
      [[1], 400, /the body must be/],
      ['nope', 400, /not JSON/],
    ];
    for (const [body, status, message] of cases) {
      const r = await post(url, '/v1/beat', body);
      expect({ body, status: r.status }).toEqual({ body, status });
      expect(r.body.error.message).toMatch(message);
    }
    expect((await post(url, '/v1/beat', { cluster: CLUSTER, site: 'alpha', host: 'alpha-1' }, { 'Content-Type': 'text/plain' })).status).toBe(415);
    const s = await get(url, '/v1/status');
    expect(s).toMatchObject({ cluster: CLUSTER, sites: {} });
    expect(await events(url, 'hb.witness-site')).toEqual([]);
  });

  it('reports how long ago each site was heard, and a change of master', async () => {
    const { url } = await witness();
    const first = await post(url, '/v1/beat', { cluster: CLUSTER, site: 'alpha', host: 'alpha-1' });
    expect(first.status).toBe(200);
    expect(first.body.sites).toEqual({ alpha: { ageMs: expect.any(Number), host: 'alpha-1', beats: 1 } });
    expect(first.body.sites.alpha.ageMs).toBeLessThan(50);
    await new Promise((r) => setTimeout(r, 120));
    const second = await post(url, '/v1/beat', { cluster: CLUSTER, site: 'bravo', host: 'bravo-1' });
    expect(second.body.sites.alpha).toMatchObject({ host: 'alpha-1', beats: 1 });
    expect(second.body.sites.alpha.ageMs).toBeGreaterThanOrEqual(100);
    expect(second.body.sites.bravo).toMatchObject({ host: 'bravo-1', beats: 1 });
    expect(second.body.sites.bravo.ageMs).toBeLessThan(second.body.sites.alpha.ageMs);
    const third = await post(url, '/v1/beat', { cluster: CLUSTER, site: 'alpha', host: 'alpha-2' });
    expect(third.body.sites.alpha).toMatchObject({ host: 'alpha-2', beats: 2 });
    expect(third.body.sites.alpha.ageMs).toBeLessThan(50);
    const s = await get(url, '/v1/status');
    expect(Object.keys(s.sites).sort()).toEqual(['alpha', 'bravo']);
    expect(s.uptimeMs).toBeGreaterThanOrEqual(100);
    expect((await events(url, 'hb.witness-site')).map((e) => [e.site, e.host, e.state])).toEqual([
      ['alpha', 'alpha-1', 'heard'],
      ['bravo', 'bravo-1', 'heard'],
      ['alpha', 'alpha-2', 'master-changed'],
    ]);
  });
});
