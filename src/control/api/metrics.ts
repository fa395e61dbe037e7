/**
 * GET /metrics of an array's management API: the Prometheus text of the array, built at scrape
 * time (src/metrics) from what the API already serves: the LUNs' host I/O counters (each SP's,
 * over the chassis↔SP IPC, on a two-SP array), NBD sessions, the SPs, cache and battery of the
 * chassis's status, and the mirror and group views of /v1/mirrors and /v1/groups. Every metric is
 * described in docs/metrics.md.
 */
import type { StorageArray } from '../../array/index.js';
import { SP_STATES } from '../../array/sp/index.js';
import { POWER_STATES } from '../../array/chassis/index.js';
import { IO_STAT_OPS, LATENCY_BUCKETS_SECONDS, type ProcessIoStats } from '../../io-stats/index.js';
import { MetricsBuilder, type Labels } from '../../metrics/index.js';
import { IMAGE_STATES, MIRROR_STATES } from '../../replication/state/index.js';
import type { MirrorControl } from '../../replication/mirror/types.js';
import type { GroupControl } from '../../replication/group/index.js';
import type { ChassisControl } from './chassis.js';

/** Where the array's I/O counters and sessions come from (the array service supplies it). */
export interface ArrayMetricsSource {
  /** One entry per process that serves host I/O: the array itself, or SP A and SP B. */
  ioStats(): Promise<ProcessIoStats[]>;
  /** Single-process arrays: the NBD server's sessions (a two-SP array's come from each SP's status). */
  nbdSessions?(): number;
}

export interface ArrayMetricsInput {
  array: StorageArray;
  source: ArrayMetricsSource | undefined;
  chassis: ChassisControl | undefined;
  mirrors: MirrorControl | undefined;
  groups: GroupControl | undefined;
}

const KIB = 1024;

export async function arrayMetrics(i: ArrayMetricsInput): Promise<MetricsBuilder> {
  const m = new MetricsBuilder();
  const array = i.array.name;
  const sizeBytes = m.gauge('sanbox_lun_size_bytes', 'Size of the LUN.', ['array', 'lun']);
  const lunSessions = m.gauge('sanbox_lun_nbd_sessions', 'Open NBD sessions on the LUN\'s export (over both SPs of a two-SP array).', ['array', 'lun']);
  for (const l of i.array.listLuns()) {
    sizeBytes({ array, lun: l.name }, l.size);
    lunSessions({ array, lun: l.name }, l.sessions);
  }
  if (i.source) lunIo(m, array, await i.source.ioStats(), i.chassis !== undefined);
  if (i.chassis) await chassisState(m, array, i.chassis);
  else if (i.source?.nbdSessions) m.gauge('sanbox_nbd_sessions', 'Open NBD sessions.', ['array'])({ array }, i.source.nbdSessions());
  if (i.mirrors) mirrorState(m, array, i.mirrors);
  if (i.groups) groupState(m, array, i.groups);
  return m;
}

function lunIo(m: MetricsBuilder, array: string, procs: ProcessIoStats[], perSp: boolean): void {
  const base = perSp ? ['array', 'sp', 'lun', 'op'] : ['array', 'lun', 'op'];
  const ops = m.counter('sanbox_lun_ops_total', 'Host requests answered (successes and errors), by op type.', base);
  const bytes = m.counter('sanbox_lun_bytes_total', 'Bytes of the host requests that succeeded, by op type.', base);
  const errors = m.counter('sanbox_lun_errors_total', 'Host requests that failed, by op type.', base);
  const latency = m.histogram('sanbox_lun_latency_seconds', 'Time from a host request entering the LUN stack to its answer, by op type.', base, LATENCY_BUCKETS_SECONDS);
  const up = perSp ? m.gauge('sanbox_sp_io_stats_up', 'The SP answered with its I/O counters for this scrape (0: down or no answer).', ['array', 'sp']) : undefined;
  for (const p of procs) {
    if (perSp && p.sp === undefined) throw new Error('a two-SP array reported I/O counters without an SP');
    up?.({ array, sp: p.sp! }, p.luns ? 1 : 0);
    for (const l of p.luns ?? []) {
      IO_STAT_OPS.forEach((op, k) => {
        const labels: Labels = perSp ? { array, sp: p.sp!, lun: l.name, op } : { array, lun: l.name, op };
        ops(labels, l.ops[k]!);
        bytes(labels, l.bytes[k]!);
        errors(labels, l.errors[k]!);
        latency(labels, l.latencyBuckets[k]!, l.latencySumSeconds[k]!);
      });
    }
  }
}

interface SpStatusView {
  name: string;
  state: string;
  sessions: number;
  peerConnected: boolean;
  cache: { size?: number; dirtyBytes?: number; mode?: string | null; reason?: string };
}

async function chassisState(m: MetricsBuilder, array: string, ch: ChassisControl): Promise<void> {
  const s = await ch.status();
  const sps = s.sps as SpStatusView[];
  const battery = s.battery as { failed: boolean; detected: boolean; charge: number };
  m.stateSet('sanbox_power_state', 'The array\'s power state (1 for the current one).', ['array'], POWER_STATES)({ array }, String(s.power));
  m.gauge('sanbox_battery_charge_ratio', 'Battery charge, 0 to 1.', ['array'])({ array }, battery.charge / 100);
  m.gauge('sanbox_battery_failed', 'The battery has failed (1), detected or not.', ['array'])({ array }, battery.failed ? 1 : 0);
  const state = m.stateSet('sanbox_sp_state', 'The SP\'s lifecycle state as the chassis sees it (1 for the current one).', ['array', 'sp'], SP_STATES);
  const sessions = m.gauge('sanbox_nbd_sessions', 'Open NBD sessions on the SP\'s host port.', ['array', 'sp']);
  const peer = m.gauge('sanbox_sp_peer_connected', 'The SP\'s CMI link to its peer SP is up.', ['array', 'sp']);
  const cacheSize = m.gauge('sanbox_sp_cache_size_bytes', 'The SP\'s write cache capacity.', ['array', 'sp']);
  const dirty = m.gauge('sanbox_sp_cache_dirty_bytes', 'Bytes in the SP\'s write cache not yet destaged to disk.', ['array', 'sp']);
  const mode = m.gauge('sanbox_sp_cache_mode', 'The SP\'s cache mode and the reason for it (1 for the current one; absent while the SP cannot say).', ['array', 'sp', 'mode', 'reason']);
  for (const sp of sps) {
    state({ array, sp: sp.name }, sp.state);
    sessions({ array, sp: sp.name }, sp.sessions);
    peer({ array, sp: sp.name }, sp.peerConnected ? 1 : 0);
    if (typeof sp.cache.size === 'number') cacheSize({ array, sp: sp.name }, sp.cache.size);
    dirty({ array, sp: sp.name }, sp.cache.dirtyBytes ?? 0);
    if (sp.cache.mode) mode({ array, sp: sp.name, mode: sp.cache.mode, reason: sp.cache.reason ?? '' }, 1);
  }
}

function mirrorState(m: MetricsBuilder, array: string, mc: MirrorControl): void {
  const ml = ['array', 'mirror'];
  const il = ['array', 'mirror', 'image'];
  const mstate = m.stateSet('sanbox_mirror_state', 'The mirror\'s state in this array\'s record (1 for the current one).', ml, MIRROR_STATES);
  const primary = m.gauge('sanbox_mirror_local_primary', 'This array holds the mirror\'s primary image (1) or a secondary (0).', ml);
  const wil = m.gauge('sanbox_mirror_write_intent_log_bytes', 'Bytes of the regions marked in the primary\'s write-intent log.', ml);
  const istate = m.stateSet('sanbox_mirror_image_state', 'A secondary image\'s state (1 for the current one).', il, IMAGE_STATES);
  const reachable = m.gauge('sanbox_mirror_image_reachable', 'The image is reachable (1) or not (0), as this array\'s record says.', il);
  const fractured = m.gauge('sanbox_mirror_image_fractured', 'The secondary image is fractured (1).', il);
  const flog = m.gauge('sanbox_mirror_fracture_log_bytes', 'Bytes of the regions in the image\'s fracture log (what a resync will copy; primary side).', il);
  const done = m.gauge('sanbox_mirror_resync_done_bytes', 'Bytes the running resync of the image has copied.', il);
  const goal = m.gauge('sanbox_mirror_resync_goal_bytes', 'Bytes the running resync of the image has to copy in all.', il);
  const rate = m.gauge('sanbox_mirror_resync_rate_bytes_per_second', 'The running resync\'s copy rate.', il);
  for (const v of mc.list()) {
    const mirror = v.record.name;
    mstate({ array, mirror }, v.record.state);
    primary({ array, mirror }, v.local.role === 'primary' ? 1 : 0);
    if (v.writeIntentLog) wil({ array, mirror }, v.writeIntentLog.bytes);
    for (const img of v.images) {
      const l = { array, mirror, image: img.imageId };
      if (img.role === 'secondary' && img.state) {
        istate(l, img.state);
        fractured(l, img.fractured ? 1 : 0);
      }
      reachable(l, img.reachability === 'REACHABLE' ? 1 : 0);
      if (img.fractureLog) flog(l, img.fractureLog.bytes);
      if (img.resync) {
        done(l, img.resync.bytesDone);
        goal(l, img.resync.bytesTotal);
        rate(l, img.resync.rate);
      }
    }
  }
}

function groupState(m: MetricsBuilder, array: string, gc: GroupControl): void {
  const gl = ['array', 'group'];
  const primary = m.gauge('sanbox_group_local_primary', 'This array is the group\'s primary (1) or a secondary (0).', gl);
  const entries = m.gauge('sanbox_group_backlog_entries', 'Writelog records not yet acknowledged by the secondaries.', gl);
  const bytes = m.gauge('sanbox_group_backlog_bytes', 'Bytes of the writelog records not yet acknowledged.', gl);
  const used = m.gauge('sanbox_group_writelog_used_ratio', 'Share of the writelog chain in use, 0 to 1.', gl);
  const age = m.gauge('sanbox_group_oldest_entry_age_seconds', 'Age of the oldest unacknowledged writelog record: the lag of the secondaries.', gl);
  const sent = m.gauge('sanbox_group_sent_bytes_per_second', 'Bytes per second sent over the link for the group (records and protocol), over the last interval.', gl);
  const sleep = m.gauge('sanbox_group_sender_sleep_seconds', 'The sender\'s sleep between transmissions (throttles).', gl);
  const ackDelay = m.gauge('sanbox_group_host_ack_delay_seconds', 'Delay added before host acknowledgements (throttles).', gl);
  const held = m.gauge('sanbox_group_delayed_writes', 'Near-synchronous: host writes held over the last interval because the backlog was over its bound.', gl);
  const nextExpected = m.gauge('sanbox_group_receiver_next_expected', 'The secondary\'s receiver: sequence number of the next record it will apply.', gl);
  const acked = m.gauge('sanbox_group_acked_through', 'Last writelog sequence number acknowledged by the secondaries.', gl);
  const bypass = m.gauge('sanbox_group_bypass', 'The group is in bypass: journaling stopped, changes tracked in fracture logs.', gl);
  for (const v of gc.list()) {
    const l = { array, group: v.record.name };
    primary(l, v.role === 'primary' ? 1 : 0);
    bypass(l, v.record.bypass.on ? 1 : 0);
    const mt = v.metrics;
    if (mt) {
      entries(l, mt.entriesWaiting);
      bytes(l, mt.writelogBytes);
      used(l, mt.pctwl / 100);
      age(l, mt.oldestEntryAgeMs / 1000);
      sent(l, mt.netkbps * KIB);
      sleep(l, mt.senderSleepMs / 1000);
      ackDelay(l, mt.ackDelayMs / 1000);
      held(l, mt.writesDelayed);
      acked(l, mt.ackedThrough);
    }
    if (v.receiver) nextExpected(l, v.receiver.nextExpected);
  }
}
