/**
 * The sending half of a master (Fig. 6): each cycle one heartbeat, the next serial, over the
 * network to every host of the other site (through the heartbeat network's link emulator) and
 * as a FUA write to every heartbeat volume this site writes, unless the operator disabled that
 * path (Fig. 8). Failure notices (Fig. 10) go into the volumes' notice ring and over the network.
 */
import { HB_BLOCK_BYTES, encodeHeartbeat, nextSerial, type HeartbeatMessage, type SiteRole } from '../message.js';
import { encodeNotice, noticeSlotOffset, type FailureNotice } from '../notice.js';
import type { AgentConfig } from './config.js';
import { postJson } from './peers.js';
import type { HeartbeatVolume } from './volume.js';

export interface SendModes {
  network: boolean;
  mirrors: boolean;
  /** devices the operator disabled */
  disabled: Set<string>;
}

export interface SendResult {
  serial: number;
  network: { peer: string; ok: boolean; error?: string }[];
  volumes: { mirror: string; ok: boolean; error?: string }[];
}

export class Sender {
  serial = 0;
  noticeSeq = 0;

  constructor(
    private readonly cfg: AgentConfig,
    private readonly role: SiteRole,
  ) {}

  message(): HeartbeatMessage {
    this.serial = nextSerial(this.serial);
    return { serial: this.serial, timeMs: Date.now(), senderId: this.cfg.host, site: this.cfg.site, clusterName: this.cfg.cluster, instance: this.cfg.instance, role: this.role, master: true, noticeSeq: this.noticeSeq };
  }

  async send(volumes: readonly HeartbeatVolume[], modes: SendModes, extra: { failedOver: boolean; fenced: boolean }): Promise<SendResult> {
    const block = encodeHeartbeat(this.message());
    const out: SendResult = { serial: this.serial, network: [], volumes: [] };
    const deadlineMs = this.cfg.intervalMs;
    const net = modes.network
      ? this.cfg.peers.map(async (p) => {
          const r = await postJson(`${p.url}/v1/heartbeat`, { block: block.toString('base64'), ...extra }, deadlineMs);
          out.network.push({ peer: p.name, ok: r.ok, ...(r.ok ? {} : { error: r.error }) });
        })
      : [];
    const vols = modes.mirrors
      ? volumes
          .filter((v) => !modes.disabled.has(v.endpoint.mirror))
          .map(async (v) => {
            try {
              await v.write(0, block);
              out.volumes.push({ mirror: v.endpoint.mirror, ok: true });
            } catch (e) {
              out.volumes.push({ mirror: v.endpoint.mirror, ok: false, error: (e as Error).message });
            }
          })
      : [];
    await Promise.all([...net, ...vols]);
    return out;
  }

  /** Writes a failure notice into every volume's ring and posts it to the other site's hosts. */
  async notify(n: Omit<FailureNotice, 'seq' | 'senderId'>, volumes: readonly HeartbeatVolume[]): Promise<{ notice: FailureNotice; delivered: string[]; failed: string[] }> {
    this.noticeSeq = nextSerial(this.noticeSeq);
    const notice: FailureNotice = { ...n, seq: this.noticeSeq, senderId: this.cfg.host };
    const slot = encodeNotice(notice);
    const delivered: string[] = [];
    const failed: string[] = [];
    await Promise.all([
      ...volumes.map((v) =>
        v.write(HB_BLOCK_BYTES + noticeSlotOffset(notice.seq), slot).then(
          () => delivered.push(`volume ${v.endpoint.mirror}`),
          (e: unknown) => failed.push(`volume ${v.endpoint.mirror}: ${(e as Error).message}`),
        ),
      ),
      ...this.cfg.peers.map(async (p) => {
        const r = await postJson(`${p.url}/v1/notice`, { notice }, this.cfg.intervalMs * 2);
        (r.ok ? delivered : failed).push(r.ok ? `network ${p.name}` : `network ${p.name}: ${r.error}`);
      }),
    ]);
    return { notice, delivered, failed };
  }
}
