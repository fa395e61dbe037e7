/**
 * A heartbeat agent's HTTP routes (served by src/service-kit):
 *
 *   GET  /v1/status      the agent, its master, status table, observations, witness, failover, fence
 *   GET  /v1/notices     failure notices received from the other site
 *   GET  /v1/events      hb.* events (SSE; ?since=N)
 *   POST /v1/heartbeat   { block: base64, failedOver, fenced }  a heartbeat from the other site's master
 *   POST /v1/local       { host, master }                     a local heartbeat from a host of this site
 *   POST /v1/notice      { notice }                           a failure notice over the network
 *   POST /v1/mode        { network?, mirrors?, device?: { mirror, enabled }, forwarded? }  Fig. 8
 *   POST /v1/install     { mirror, from, send, receive, forwarded? }                       Fig. 4
 *   POST /v1/uninstall   { mirror, forwarded? }                                            Fig. 5
 *   POST /v1/notify      { componentId, componentKind, details, address, level }           Fig. 10
 *
 * Bad bodies are refused (400) with the reason and change nothing.
 */
import { HB_BLOCK_BYTES } from '../message.js';
import { COMPONENT_KINDS, NOTICE_LEVELS, encodeNotice, type FailureNotice } from '../notice.js';
import { setMode } from '../status-table.js';
import { HttpRefusal, type PostHandler } from '../../service-kit/index.js';
import { pinMirror } from './actions.js';
import type { AgentConfig, VolumeEndpoint } from './config.js';
import type { Receiver } from './receiver.js';
import type { SendModes } from './sender.js';
import type { ServiceEvents } from '../../service-kit/index.js';
import type { TableChange } from '../status-table.js';
import { postJson } from './peers.js';
import { HeartbeatVolume } from './volume.js';

type Body = Record<string, unknown>;

function obj(v: unknown, keys: readonly string[]): Body {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new HttpRefusal(400, 'invalid-argument', 'the body must be a JSON object');
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw new HttpRefusal(400, 'invalid-argument', `unknown field "${k}" (expected ${keys.join(', ')})`);
  return v as Body;
}

function str(b: Body, k: string, optional = false, maxLength = 1024): string {
  const v = b[k];
  if (optional && (v === undefined || v === '')) return '';
  if (typeof v !== 'string' || v === '' || v.length > maxLength) throw new HttpRefusal(400, 'invalid-argument', `${k} must be a non-empty string of at most ${maxLength} characters`);
  return v;
}

function bool(b: Body, k: string): boolean | undefined {
  const v = b[k];
  if (v !== undefined && typeof v !== 'boolean') throw new HttpRefusal(400, 'invalid-argument', `${k} must be true or false`);
  return v as boolean | undefined;
}

function endpoint(v: unknown, at: string): VolumeEndpoint {
  const b = obj(v, ['mirror', 'address', 'uris', 'array']);
  const uris = b.uris;
  if (!Array.isArray(uris) || uris.length === 0 || uris.some((u) => typeof u !== 'string' || !/^nbds?:\/\//.test(u))) throw new HttpRefusal(400, 'invalid-argument', `${at}.uris must list nbd:// URIs`);
  const a = obj(b.array, ['name', 'url', 'token']);
  return { mirror: str(b, 'mirror'), address: str(b, 'address'), uris: uris as string[], array: { name: str(a, 'name'), url: str(a, 'url'), ...(a.token ? { token: str(a, 'token') } : {}) } };
}

/** A notice must fit its slot on the volumes (the encoder's limits): checked before anything changes. */
function encodable(n: FailureNotice): void {
  try {
    encodeNotice(n);
  } catch (e) {
    throw new HttpRefusal(400, 'invalid-argument', `notice: ${(e as Error).message}`);
  }
}

const ok = (body: unknown = { ok: true }) => ({ status: 200, body });

/** What the routes need of the agent (./agent.ts implements it). */
export interface AgentSurface {
  readonly cfg: AgentConfig;
  readonly receiver: Receiver;
  readonly events: ServiceEvents;
  readonly modes: SendModes;
  readonly outVolumes: Map<string, HeartbeatVolume>;
  readonly inVolumes: Map<string, HeartbeatVolume>;
  readonly notices: readonly unknown[];
  readonly master: string | null;
  readonly amMaster: boolean;
  peerFailedOver: boolean;
  status(): Record<string, unknown>;
  sibling(host: string, master: string | null): void;
  takeNotice(n: FailureNotice, via: string): Promise<void>;
  publishChanges(changes: readonly TableChange[]): void;
  notify(n: Omit<FailureNotice, 'seq' | 'senderId'>): Promise<{ notice: FailureNotice; delivered: string[]; failed: string[] }>;
}

export function agentRoutes(agent: AgentSurface): { get: Record<string, () => unknown>; post: Record<string, PostHandler> } {
  const cfg = agent.cfg;
  /** Fig. 8 step 830, Fig. 4 step 430: what the operator asked here goes to the site's other hosts and to the other site. */
  const forward = async (path: string, body: Body) => {
    const to = [...cfg.siblings.filter((s) => s.name !== cfg.host), ...cfg.peers];
    const r = await Promise.all(to.map(async (h) => ({ host: h.name, ...(await postJson(`${h.url}${path}`, { ...body, forwarded: true }, cfg.intervalMs * 4)) })));
    return r.map((x) => (x.ok ? { host: x.host, ok: true } : { host: x.host, ok: false, error: x.error }));
  };
  return {
    get: {
      '/v1/status': () => agent.status(),
      '/v1/notices': () => ({ notices: agent.notices }),
    },
    post: {
      '/v1/heartbeat': (v) => {
        const b = obj(v, ['block', 'failedOver', 'fenced']);
        const block = Buffer.from(str(b, 'block', false, 8192), 'base64');
        if (block.length !== HB_BLOCK_BYTES) throw new HttpRefusal(400, 'invalid-argument', `block must be ${HB_BLOCK_BYTES} bytes, base64`);
        // every field is checked before the block reaches the receiver: a refused body changes nothing
        const failedOver = bool(b, 'failedOver');
        bool(b, 'fenced');
        const read = agent.receiver.deliver(block);
        if (read.ok && failedOver && !agent.peerFailedOver) {
          agent.peerFailedOver = true;
          agent.events.emit('hb.peer-failed-over', { host: cfg.host, peer: read.message.senderId });
        }
        return ok({ ok: read.ok, ...(read.ok ? {} : { reason: read.reason }) });
      },
      '/v1/local': (v) => {
        const b = obj(v, ['host', 'master']);
        const master = b.master === null ? null : str(b, 'master');
        try {
          agent.sibling(str(b, 'host'), master);
        } catch (e) {
          throw new HttpRefusal(403, 'not-a-sibling', (e as Error).message);
        }
        return ok({ master: agent.master });
      },
      '/v1/notice': async (v) => {
        const n = obj(obj(v, ['notice']).notice, ['seq', 'componentId', 'componentKind', 'details', 'address', 'detectedAtMs', 'level', 'senderId']) as unknown as FailureNotice;
        if (!Number.isInteger(n.seq) || n.seq < 1 || !(NOTICE_LEVELS as readonly string[]).includes(n.level) || !(COMPONENT_KINDS as readonly string[]).includes(n.componentKind)) throw new HttpRefusal(400, 'invalid-argument', 'notice: bad seq, level or componentKind');
        if (!cfg.peers.some((p) => p.name === n.senderId)) throw new HttpRefusal(403, 'unknown-sender', `${n.senderId} is not a host of the other site`);
        encodable(n);
        await agent.takeNotice(n, 'network');
        return ok();
      },
      '/v1/mode': async (v) => {
        const b = obj(v, ['network', 'mirrors', 'device', 'forwarded']);
        const network = bool(b, 'network');
        const mirrors = bool(b, 'mirrors');
        const device = b.device === undefined ? undefined : obj(b.device, ['mirror', 'enabled']);
        if (device && typeof device.enabled !== 'boolean') throw new HttpRefusal(400, 'invalid-argument', 'device.enabled must be true or false');
        if (network === undefined && mirrors === undefined && !device) throw new HttpRefusal(400, 'invalid-argument', 'give network, mirrors or device');
        const dev = device ? { mirror: str(device, 'mirror'), enabled: device.enabled as boolean } : undefined;
        if (dev && !agent.outVolumes.has(dev.mirror) && !agent.inVolumes.has(dev.mirror)) throw new HttpRefusal(404, 'not-installed', `heartbeat mirror ${dev.mirror} is not installed`);
        // the table holds the devices this agent reads; the send side keeps the operator's choice
        const readsDev = dev && agent.inVolumes.has(dev.mirror);
        agent.publishChanges(agent.receiver.replaceTable(setMode(agent.receiver.table, { ...(network !== undefined ? { network } : {}), ...(mirrors !== undefined ? { mirrors } : {}), ...(readsDev ? { device: dev } : {}) })));
        if (network !== undefined) agent.modes.network = network;
        if (mirrors !== undefined) agent.modes.mirrors = mirrors;
        if (dev && agent.outVolumes.has(dev.mirror)) (dev.enabled ? agent.modes.disabled.delete(dev.mirror) : agent.modes.disabled.add(dev.mirror));
        agent.events.emit('hb.mode', { host: cfg.host, network, mirrors, device: dev, forwarded: b.forwarded === true });
        const forwardedTo = b.forwarded === true ? [] : await forward('/v1/mode', { ...(network !== undefined ? { network } : {}), ...(mirrors !== undefined ? { mirrors } : {}), ...(dev ? { device: dev } : {}) });
        return ok({ ok: true, table: agent.receiver.table, forwardedTo });
      },
      '/v1/install': async (v) => {
        const b = obj(v, ['mirror', 'from', 'send', 'receive', 'forwarded']);
        const mirror = str(b, 'mirror');
        const from = str(b, 'from');
        if (from !== cfg.production && from !== cfg.standby) throw new HttpRefusal(400, 'invalid-argument', `from must be ${cfg.production} or ${cfg.standby}`);
        const send = endpoint(b.send, 'send');
        const receive = endpoint(b.receive, 'receive');
        if (send.mirror !== mirror || receive.mirror !== mirror) throw new HttpRefusal(400, 'invalid-argument', 'send.mirror and receive.mirror must be the mirror');
        if (agent.outVolumes.has(mirror) || agent.inVolumes.has(mirror)) throw new HttpRefusal(409, 'exists', `heartbeat mirror ${mirror} is installed already`);
        if (from === cfg.site) {
          // Fig. 4 step 420: the writing side pins the mirror (no split while installed), then registers it
          if (b.forwarded !== true) await pinMirror(send.array, mirror, true, `${cfg.lab}/${cfg.cluster}`).catch((e: unknown) => {
            throw new HttpRefusal(409, 'refused', `the array refuses to make ${mirror} a heartbeat mirror: ${(e as Error).message}`);
          });
          agent.outVolumes.set(mirror, new HeartbeatVolume(send, Math.max(cfg.intervalMs, 200)));
        } else {
          const r = agent.receiver.install(receive);
          if (!r.ok) throw new HttpRefusal(409, r.reason, r.detail);
          agent.inVolumes.set(mirror, new HeartbeatVolume(receive, Math.max(cfg.intervalMs, 200)));
          agent.publishChanges(r.changes);
        }
        agent.events.emit('hb.installed', { host: cfg.host, mirror, side: from === cfg.site ? 'send' : 'receive', forwarded: b.forwarded === true });
        const forwardedTo = b.forwarded === true ? [] : await forward('/v1/install', { mirror, from, send, receive });
        return ok({ ok: true, forwardedTo });
      },
      '/v1/uninstall': async (v) => {
        const b = obj(v, ['mirror', 'forwarded']);
        const mirror = str(b, 'mirror');
        const out = agent.outVolumes.get(mirror);
        const inn = agent.inVolumes.get(mirror);
        if (!out && !inn) throw new HttpRefusal(404, 'not-installed', `heartbeat mirror ${mirror} is not installed`);
        if (inn) {
          const r = agent.receiver.uninstall(mirror);
          if (r.ok) agent.publishChanges(r.changes);
          agent.inVolumes.delete(mirror);
          await inn.close();
        }
        if (out) {
          agent.outVolumes.delete(mirror);
          await out.close();
          // Fig. 5: only a de-installed mirror may be split again
          if (b.forwarded !== true) await pinMirror(out.endpoint.array, mirror, false, `${cfg.lab}/${cfg.cluster}`);
        }
        agent.events.emit('hb.uninstalled', { host: cfg.host, mirror, forwarded: b.forwarded === true });
        const forwardedTo = b.forwarded === true ? [] : await forward('/v1/uninstall', { mirror });
        return ok({ ok: true, forwardedTo });
      },
      '/v1/notify': async (v) => {
        const b = obj(v, ['componentId', 'componentKind', 'details', 'address', 'level']);
        const level = str(b, 'level');
        const kind = str(b, 'componentKind');
        if (!(NOTICE_LEVELS as readonly string[]).includes(level)) throw new HttpRefusal(400, 'invalid-argument', `level must be one of ${NOTICE_LEVELS.join(', ')}`);
        if (!(COMPONENT_KINDS as readonly string[]).includes(kind)) throw new HttpRefusal(400, 'invalid-argument', `componentKind must be one of ${COMPONENT_KINDS.join(', ')}`);
        if (!agent.amMaster) throw new HttpRefusal(409, 'not-master', `${cfg.host} is not its site's master (${agent.master ?? 'none yet'})`);
        const n = { componentId: str(b, 'componentId'), componentKind: kind as FailureNotice['componentKind'], details: str(b, 'details', true), address: str(b, 'address', true), level: level as FailureNotice['level'], detectedAtMs: Date.now() };
        encodable({ ...n, seq: 1, senderId: cfg.host });
        const r = await agent.notify(n);
        return ok(r);
      },
    },
  };
}
