/**
 * GET /metrics of a link emulator: its status snapshot (LinkStatus) as Prometheus metrics,
 * built at scrape time (src/metrics). Labels: `link`, and `direction` (a-to-b, b-to-a) for what
 * is per direction. Described in docs/metrics.md.
 */
import { MetricsBuilder } from '../../metrics/index.js';
import { DIRECTIONS, type LinkStatus } from './types.js';

const LINK_STATES = ['up', 'cut', 'partially-cut', 'stalled', 'stopped'] as const;

export function linkMetrics(s: LinkStatus): MetricsBuilder {
  const m = new MetricsBuilder();
  const link = s.link;
  const dl = ['link', 'direction'];
  const bytes = m.counter('sanbox_link_bytes_total', 'Bytes forwarded in the direction since the emulator started (closed connections included).', dl);
  const queued = m.gauge('sanbox_link_queued_bytes', 'Bytes held in the emulator\'s queues in the direction now (delay, bandwidth, cut or stall).', dl);
  const latency = m.gauge('sanbox_link_latency_seconds', 'The one-way delay set for the direction.', dl);
  const jitter = m.gauge('sanbox_link_jitter_seconds', 'The largest extra random delay set for the direction.', dl);
  const bandwidth = m.gauge('sanbox_link_bandwidth_bytes_per_second', 'The bandwidth cap set for the direction (0: unlimited).', dl);
  const loss = m.gauge('sanbox_link_loss_ratio', 'The share of chunks set to be delayed by one RTO in the direction (a loss-like stall), 0-1.', dl);
  const rto = m.gauge('sanbox_link_rto_seconds', 'The retransmission timeout a loss costs in the direction.', dl);
  const losses = m.counter('sanbox_link_losses_total', 'Chunks delayed by a loss-like stall (one RTO) in the direction since the emulator started.', dl);
  const cut = m.gauge('sanbox_link_cut', 'The direction is cut (1): its bytes are held, nothing gets through.', dl);
  const stalled = m.gauge('sanbox_link_stalled', 'The direction is stalled now (1).', dl);
  for (const direction of DIRECTIONS) {
    const l = { link, direction };
    bytes(l, s.totals.bytes[direction]);
    queued(l, s.queued[direction]);
    latency(l, s.settings[direction].latencyMs / 1000);
    jitter(l, s.settings[direction].jitterMs / 1000);
    bandwidth(l, s.settings[direction].bandwidth);
    loss(l, s.settings[direction].lossPercent / 100);
    rto(l, s.settings[direction].rtoMs / 1000);
    losses(l, s.totals.losses[direction]);
    cut(l, s.cut[direction] ? 1 : 0);
    stalled(l, s.stalledUntil[direction] !== null ? 1 : 0);
  }
  m.stateSet('sanbox_link_state', 'The link\'s state (1 for the current one).', ['link'], LINK_STATES)({ link }, s.state);
  m.gauge('sanbox_link_connections', 'Connections open through the emulator now.', ['link'])({ link }, s.connections.length);
  m.counter('sanbox_link_connections_total', 'Connections accepted since the emulator started.', ['link'])({ link }, s.totals.connections);
  m.counter('sanbox_link_resets_total', 'Connections the emulator reset (a reset, or a cut held too long).', ['link'])({ link }, s.totals.resets);
  m.counter('sanbox_link_delay_poll_seconds_total', 'Time the delay queue spent polling the clock for the last fraction of a millisecond of waits (CPU time: the polls do not sleep).', ['link'])({ link }, s.delayQueue.pollMs / 1000);
  m.counter('sanbox_link_delay_wakeups_total', 'Wake-ups of the delay queue at a due time.', ['link'])({ link }, s.delayQueue.wakeups);
  m.counter('sanbox_link_delay_late_wakeups_total', 'Wake-ups of the delay queue more than 0.1 ms after their due time (a busy machine).', ['link'])({ link }, s.delayQueue.late);
  return m;
}
