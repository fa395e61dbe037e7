/**
 * The receiving half of an agent (Fig. 7): every cycle, what arrived over the network since the
 * last one and what each heartbeat volume it reads holds now go through the validity rules
 * (../validity.ts) into the status table (../status-table.ts). The table's changes come back for
 * the agent to publish as events. The monotonic clock is the caller's: nothing here compares the
 * two sites' wall clocks.
 */
import { HB_AREA_BYTES, HB_BLOCK_BYTES, decodeHeartbeat, type HeartbeatRead } from '../message.js';
import { newNotices, type FailureNotice } from '../notice.js';
import { applyVerdict, installDevice, uninstallDevice, type HeartbeatStatusTable, type TableChange } from '../status-table.js';
import { observe, type PeerObservation, type ValidityConfig, type ValidityVerdict } from '../validity.js';
import type { VolumeEndpoint } from './config.js';
import type { HeartbeatVolume } from './volume.js';

export interface PathReading {
  /** `network` or the mirror's name */
  path: string;
  valid: boolean;
  fresh: boolean;
  reason: string;
  detail: string;
  /** the sender named in the last valid heartbeat */
  sender?: string;
  serial?: number;
}

export interface ReceiveResult {
  readings: PathReading[];
  changes: TableChange[];
  /** notices found in the volumes' rings, newer than the last seen */
  notices: FailureNotice[];
}

export class Receiver {
  private networkObs: PeerObservation | null = null;
  private readonly volumeObs = new Map<string, PeerObservation | null>();
  /** the newest heartbeat that came over the network since the last cycle */
  private inbox: HeartbeatRead | null = null;
  /** monotonic time of the last valid heartbeat on any path */
  lastValidMonoMs: number | null = null;
  lastNoticeSeq = 0;

  constructor(
    public table: HeartbeatStatusTable,
    private readonly validity: ValidityConfig,
    private readonly recoverAfter: number,
  ) {}

  /** A heartbeat block arrived over the network (POST /v1/heartbeat). */
  deliver(block: Buffer): HeartbeatRead {
    const read = decodeHeartbeat(block);
    this.inbox = read;
    return read;
  }

  /** Registers a volume this agent reads (Fig. 4, 440); a refusal says why (already there, table full). */
  install(v: VolumeEndpoint): { ok: true; changes: TableChange[] } | { ok: false; reason: string; detail: string } {
    const r = installDevice(this.table, { mirror: v.mirror, address: v.address });
    if (!r.ok) return r;
    this.table = r.table;
    this.volumeObs.set(v.mirror, null);
    return { ok: true, changes: r.changes };
  }

  uninstall(mirror: string): { ok: true; changes: TableChange[] } | { ok: false; reason: string; detail: string } {
    const r = uninstallDevice(this.table, mirror);
    if (!r.ok) return r;
    this.table = r.table;
    this.volumeObs.delete(mirror);
    return { ok: true, changes: r.changes };
  }

  /** Applies a table change made elsewhere (the operator's mode, Fig. 8). */
  replaceTable(r: { table: HeartbeatStatusTable; changes: TableChange[] }): TableChange[] {
    this.table = r.table;
    return r.changes;
  }

  /** One receive cycle: the network inbox and every enabled volume. */
  async cycle(volumes: readonly HeartbeatVolume[], nowMonoMs: () => number): Promise<ReceiveResult> {
    const out: ReceiveResult = { readings: [], changes: [], notices: [] };
    if (this.table.networkEnable !== 'DISABLE') {
      const read = this.inbox;
      this.inbox = null;
      const r = observe(this.networkObs, read, nowMonoMs(), this.validity);
      this.networkObs = r.observation;
      this.record(out, 'network', r.verdict, r.observation, nowMonoMs());
    }
    if (this.table.mirrorsMode === 'ENABLE') {
      const enabled = volumes.filter((v) => {
        const d = this.deviceOf(v.endpoint.mirror);
        return d !== undefined && (d.status === 'ENABLE' || d.status === 'FAILED');
      });
      const reads = await Promise.all(enabled.map((v) => this.readVolume(v)));
      enabled.forEach((v, i) => {
        const { read, area } = reads[i]!;
        const prev = this.volumeObs.get(v.endpoint.mirror) ?? null;
        const r = observe(prev, read, nowMonoMs(), this.validity);
        this.volumeObs.set(v.endpoint.mirror, r.observation);
        this.record(out, v.endpoint.mirror, r.verdict, r.observation, nowMonoMs());
        if (area && r.verdict.valid) this.collectNotices(area, out);
      });
    }
    return out;
  }

  private deviceOf(mirror: string) {
    return this.table.devices.find((d) => d.mirror === mirror);
  }

  /**
   * A read that fails (array unreachable, SP takeover, a hung request) delivers nothing this
   * cycle: the path fails when that lasts the timeout, as silence does. A block that reads but
   * is corrupt is an invalid heartbeat at once (the source's rule).
   */
  private async readVolume(v: HeartbeatVolume): Promise<{ read: HeartbeatRead | null; area?: Buffer }> {
    try {
      const area = await v.read(0, HB_AREA_BYTES);
      return { read: decodeHeartbeat(area.subarray(0, HB_BLOCK_BYTES)), area };
    } catch {
      return { read: null }; // v.lastError keeps the cause for the status
    }
  }

  private collectNotices(area: Buffer, out: ReceiveResult): void {
    const found = newNotices(area.subarray(HB_BLOCK_BYTES), this.lastNoticeSeq);
    for (const n of found) {
      if (out.notices.some((x) => x.seq === n.seq)) continue; // the same ring on another volume
      out.notices.push(n);
    }
  }

  /** Marks notices as seen (after the agent handled them). */
  seen(seq: number): void {
    this.lastNoticeSeq = Math.max(this.lastNoticeSeq, seq);
  }

  private record(out: ReceiveResult, path: string, verdict: ValidityVerdict, obs: PeerObservation | null, nowMonoMs: number): void {
    const r = applyVerdict(this.table, path === 'network' ? 'network' : { mirror: path }, verdict, { recoverAfter: this.recoverAfter, nowMonoMs });
    this.table = r.table;
    out.changes.push(...r.changes);
    if (verdict.valid && verdict.fresh) this.lastValidMonoMs = nowMonoMs;
    out.readings.push({ path, valid: verdict.valid, fresh: verdict.fresh, reason: verdict.reason, detail: verdict.detail, ...(obs ? { sender: obs.senderId, serial: obs.serial } : {}) });
  }

  observations(): Record<string, PeerObservation | null> {
    return { network: this.networkObs, ...Object.fromEntries(this.volumeObs) };
  }
}
