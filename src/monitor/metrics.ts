/**
 * GET /metrics of the monitor's HTTP side: its resources by pair state and recovery phase, and
 * what it did since it started (checks run, events by type: resyncs started, done and failed,
 * polls that failed...). The counts are plain numbers kept as things happen; the text is built
 * at scrape time (src/metrics). Described in docs/metrics.md.
 */
import { MetricsBuilder } from '../metrics/index.js';
import type { MonitorEvents } from './events.js';
import { PAIR_STATES, type RecoveryPhase, type ResourceEntry } from './types.js';

const PHASES: readonly RecoveryPhase[] = ['watching', 'resyncing', 'backoff', 'held'];

/** What the monitor did since it started: checks, and its events by type. */
export class MonitorCounters {
  checks = 0;
  private readonly byType = new Map<string, number>();

  /** Counts every event `events` emits from now on; returns the unsubscribe. */
  follow(events: MonitorEvents): () => void {
    return events.subscribe((e) => this.byType.set(e.type, (this.byType.get(e.type) ?? 0) + 1));
  }

  events(): [string, number][] {
    return [...this.byType.entries()].sort(([a], [b]) => a.localeCompare(b));
  }
}

export function monitorMetrics(resources: ResourceEntry[], counters: MonitorCounters): MetricsBuilder {
  const m = new MetricsBuilder();
  const byState = m.gauge('sanbox_monitor_resources', 'Monitored resources by pair state.', ['state']);
  for (const s of PAIR_STATES) byState({ state: s }, resources.filter((r) => r.pair === s).length);
  const rl = ['app', 'device_group'];
  const pair = m.stateSet('sanbox_monitor_resource_pair_state', 'A resource\'s pair state as last read (1 for the current one).', rl, PAIR_STATES);
  const phase = m.stateSet('sanbox_monitor_resource_phase', 'A resource\'s recovery phase (1 for the current one).', rl, PHASES);
  const pollError = m.gauge('sanbox_monitor_resource_poll_error', 'The last poll of the resource failed (1): the array did not answer, or answered an error.', rl);
  const failures = m.gauge('sanbox_monitor_resource_resync_failures', 'Automatic resync failures of the resource still inside the failure window.', rl);
  for (const r of resources) {
    const l = { app: r.appName, device_group: r.deviceGroup };
    pair(l, r.pair);
    phase(l, r.phase);
    pollError(l, r.lastError !== null ? 1 : 0);
    failures(l, r.failures.length);
  }
  m.counter('sanbox_monitor_checks_total', 'Checks run (one poll of a resource, and what it decided) since the monitor started.', [])({}, counters.checks);
  const ev = m.counter('sanbox_monitor_events_total', 'Events the monitor emitted since it started, by type (resource.resync-started, resource.resync-done, resource.resync-failed, resource.poll-failed, ...).', ['type']);
  for (const [type, n] of counters.events()) ev({ type }, n);
  return m;
}
