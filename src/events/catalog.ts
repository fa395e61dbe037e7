/**
 * Every event type sanbox emits, by family. Emitters still pass plain strings (`publish('sp.crashed',
 * ...)`); this catalog is the closed set they must stay within. `test/events/catalog.test.ts`
 * scans the source for emitted types and compares them with this list and with docs/events.md,
 * so a new event cannot appear without being catalogued and documented.
 *
 * Four streams carry them: an array's `/v1/events` (ARRAY_EVENT_TYPES), a link emulator's
 * `/v1/events` (LINK_EVENT_TYPES), the lab supervisor's (SUPERVISOR_EVENT_TYPES: its
 * `<images>/.labs/<lab>.events.jsonl` and its control API's `/v1/events`), the pair resync
 * monitor's (MONITOR_EVENT_TYPES), the heartbeat agents' and witness's (HEARTBEAT_EVENT_TYPES), and the site automation controllers' (AUTOMATION_EVENT_TYPES).
 */

/** The array itself: its directory and image files (StorageArray). */
export const ARRAY_LIFECYCLE_EVENTS = ['array.created', 'array.opened', 'array.closed', 'array.orphan-image'] as const;

/** The two-copy metadata store. */
export const METADATA_EVENTS = ['metadata.copy-invalid', 'metadata.repaired'] as const;

/** LUNs: the LUN table, and on two-SP arrays ownership and cache-dirty state (chassis). */
export const LUN_EVENTS = [
  'lun.created',
  'lun.deleted',
  'lun.grown',
  'lun.offline',
  'lun.repaired',
  'lun.owner-changed',
  'lun.trespassed',
  'lun.failed-back',
  'lun.cache-dirty',
  'lun.recovered',
  'lun.fenced',
  'lun.unfenced',
] as const;

/** NBD sessions (the in-process server, or an SP's). */
export const SESSION_EVENTS = ['session.opened', 'session.closed'] as const;

/** Storage processors: the chassis's view (`sp.state`) and the SP process's own. */
export const SP_EVENTS = [
  'sp.state',
  'sp.process-state',
  'sp.cache-mode',
  'sp.crashed',
  'sp.takeover',
  'sp.takeover-impossible',
  'sp.rejoined',
  'sp.failback-pending',
  'sp.restore',
  'sp.dump',
  'sp.error',
] as const;

/** The inter-SP channel and the chassis's CMI-framed channels. */
export const CMI_EVENTS = ['cmi.up', 'cmi.down', 'cmi.protocol-error'] as const;

/** Chassis power. */
export const POWER_EVENTS = ['power.failed', 'power.off', 'power.restoring', 'power.restored', 'power.on', 'power.restore-interrupted'] as const;

/** The battery that holds the SPs up. */
export const BATTERY_EVENTS = ['battery.failed', 'battery.repaired', 'battery.charge'] as const;

/** An SP's write cache (WriteCache events other than `mode`, which is `sp.cache-mode`). */
export const CACHE_EVENTS = ['cache.mirror-error', 'cache.destage-error', 'cache.write-through-fallback'] as const;

/** Disk faults injected by `sanbox fault disk` (src/control/disk-faults.ts). */
export const DISK_FAULT_EVENTS = ['fault.disk-set', 'fault.disk-cleared'] as const;

/** The mirror driver; `mirror.mirror-*`, `mirror.image-*` and a few more come from the record's applyOp. */
export const MIRROR_EVENTS = [
  // the mirror database record (applyOp)
  'mirror.mirror-created',
  'mirror.mirror-destroyed',
  'mirror.mirror-state',
  'mirror.image-state',
  'mirror.image-added',
  'mirror.image-removed',
  'mirror.image-fractured',
  'mirror.image-unfractured',
  'mirror.image-reachability',
  'mirror.awaiting-operator',
  'mirror.promoted',
  'mirror.attributes-changed',
  'mirror.heartbeat-installed',
  'mirror.heartbeat-uninstalled',
  'mirror.sync-progress',
  // administration
  'mirror.created',
  'mirror.became-primary',
  'mirror.old-primary-stepped-down',
  'mirror.promoted-from-snapshot',
  'mirror.verified',
  'mirror.split-brain',
  'mirror.split-brain-resolved',
  // secondary side: join, adopt, demote
  'mirror.joined',
  'mirror.left',
  'mirror.record-adopted',
  'mirror.demoted',
  // peers and links
  'mirror.image-connected',
  'mirror.image-lost',
  'mirror.link-refused',
  'mirror.link-session',
  'mirror.rejoin-failed',
  'mirror.rejoin-regions',
  // data path
  'mirror.local-write-failed',
  'mirror.remote-write-failed',
  'mirror.bitmap-write-failed',
  'mirror.change-failed',
  'mirror.push-failed',
  // resynchronization
  'mirror.full-sync-needed',
  'mirror.resync-started',
  'mirror.resync-progress',
  'mirror.resync-stopped',
  'mirror.resync-done',
  // load, crash and recovery
  'mirror.loaded',
  'mirror.load-failed',
  'mirror.unclean-stop',
  'mirror.crashed',
  'mirror.reopened',
] as const;

/** Consistency groups. */
export const GROUP_EVENTS = [
  'group.created',
  'group.deleted',
  'group.load-failed',
  'group.primary-started',
  'group.receiver-started',
  'group.replayed',
  'group.mode',
  'group.attributes',
  'group.paused',
  'group.resumed',
  'group.promoted',
  'group.promoted-from-snapshot',
  'group.snapshot',
  'group.sender',
  'group.push-failed',
  'group.gap',
  'group.write-delayed',
  'group.bypass',
  'group.bypass-failed',
  'group.frozen',
  'group.refresh-started',
  'group.refresh-progress',
  'group.refresh-done',
  'group.refresh-failed',
  'group.backfresh-started',
  'group.backfresh-progress',
  'group.backfresh-done',
  'group.throttled',
  'group.throttle',
  'group.throttle-log',
  'group.throttle-command',
  'group.metrics',
] as const;

/** The link emulator's own stream. */
export const LINK_STATE_EVENTS = [
  'link.started',
  'link.stopped',
  'link.settings',
  'link.stalled',
  'link.stall-ended',
  'link.cut',
  'link.restored',
  'link.reset',
  'link.cut-timeout',
] as const;

/** Connections through a link emulator. */
export const CONNECTION_EVENTS = ['connection.opened', 'connection.held', 'connection.failed', 'connection.closed'] as const;

/** The lab supervisor's own stream: the lab, its arrays' processes (not the arrays' own events), its sites. */
export const SUPERVISOR_LAB_EVENTS = ['lab.started', 'lab.stopping', 'lab.stopped'] as const;
export const SUPERVISOR_ARRAY_EVENTS = [
  'array.crashed',
  'array.restarting',
  'array.restarted',
  'array.restart-failed',
  'array.restart-scheduled',
  'array.restart-limit',
] as const;
export const SITE_EVENTS = ['site.failed', 'site.restored'] as const;

/** Snapshots: created, deleted, invalidated by a full store, rollbacks. */
export const SNAPSHOT_EVENTS = [
  'snapshot.created',
  'snapshot.deleted',
  'snapshot.invalidated',
  'snapshot.store-configured',
  'snapshot.rollback-started',
  'snapshot.rollback-progress',
  'snapshot.rollback-resumed',
  'snapshot.rollback-failed',
  'snapshot.rolled-back',
  'snapshot.offline',
  'snapshot.metadata-repaired',
  'snapshot.store-cleanup-failed',
  'snapshot.routes-failed',
  'snapshot.resync-protected',
  'snapshot.resync-unprotected',
  'snapshot.resync-protection-released',
  'snapshot.resync-protection-lost',
] as const;

/** Clones: created, copying, completed, failed, deleted. */
export const CLONE_EVENTS = [
  'clone.created',
  'clone.resumed',
  'clone.progress',
  'clone.rate-changed',
  'clone.completed',
  'clone.failed',
  'clone.deleted',
  'clone.cleanup-failed',
  'clone.metadata-repaired',
] as const;

/** The pair resync monitor (src/monitor): the daemon itself. */
export const MONITOR_DAEMON_EVENTS = [
  'monitor.started',
  'monitor.stopping',
  'monitor.loaded',
  'monitor.changed-all',
  'monitor.removed-all',
  'monitor.db-problem',
  'monitor.stream-open',
  'monitor.stream-closed',
] as const;

/** The pair resync monitor: one resource (a mirror or group it watches). */
export const MONITOR_RESOURCE_EVENTS = [
  'resource.added',
  'resource.changed',
  'resource.removed',
  'resource.autorecover',
  'resource.state',
  'resource.poll-failed',
  'resource.poll-recovered',
  'resource.suspension-noted',
  'resource.resync-started',
  'resource.resync-done',
  'resource.resync-failed',
  'resource.held',
  'resource.check-failed',
] as const;

/** Every type an array's event stream (`GET /v1/events`) carries. */
export const ARRAY_EVENT_TYPES = [
  ...ARRAY_LIFECYCLE_EVENTS,
  ...METADATA_EVENTS,
  ...LUN_EVENTS,
  ...SESSION_EVENTS,
  ...SP_EVENTS,
  ...CMI_EVENTS,
  ...POWER_EVENTS,
  ...BATTERY_EVENTS,
  ...CACHE_EVENTS,
  ...DISK_FAULT_EVENTS,
  ...MIRROR_EVENTS,
  ...GROUP_EVENTS,
  ...SNAPSHOT_EVENTS,
  ...CLONE_EVENTS,
] as const;

/** Every type a link emulator's event stream carries. */
export const LINK_EVENT_TYPES = [...LINK_STATE_EVENTS, ...CONNECTION_EVENTS] as const;

/** Every type the lab supervisor's event stream carries. */
export const SUPERVISOR_EVENT_TYPES = [...SUPERVISOR_LAB_EVENTS, ...SUPERVISOR_ARRAY_EVENTS, ...SITE_EVENTS] as const;

/** Every type the pair resync monitor's stream carries (its socket's EVENTS, its HTTP /v1/events, its log). */
export const MONITOR_EVENT_TYPES = [...MONITOR_DAEMON_EVENTS, ...MONITOR_RESOURCE_EVENTS] as const;

/** A heartbeat agent's `/v1/events` and log (src/heartbeat/agent), and the witness's. */
export const HEARTBEAT_EVENT_TYPES = [
  'hb.started',
  'hb.stopped',
  'hb.master',
  'hb.table',
  'hb.table-discarded',
  'hb.table-restored',
  'hb.table-save-failed',
  'hb.table-saved',
  'hb.send-failed',
  'hb.send-recovered',
  'hb.cycle-failed',
  'hb.decision',
  'hb.witness',
  'hb.witness-site',
  'hb.failover-started',
  'hb.failover',
  'hb.failover-held',
  'hb.peer-failed-over',
  'hb.fenced',
  'hb.unfenced',
  'hb.unfence-refused',
  'hb.mode',
  'hb.installed',
  'hb.uninstalled',
  'hb.notice-sent',
  'hb.notice',
  'hb.action',
] as const;

/** A site automation controller's `/v1/events` and log (src/automation, docs/automation.md). */
export const AUTOMATION_EVENT_TYPES = [
  'automation.controller-started',
  'automation.leases-confirmed',
  'automation.operation-requested',
  'automation.operation-succeeded',
  'automation.operation-failed',
  'automation.step-started',
  'automation.step-resumed',
  'automation.step-done',
  'automation.step-failed',
  'automation.storage-decision',
  'automation.storage-action',
  'automation.storage-action-failed',
  'automation.lease-acquired',
  'automation.lease-released',
  'automation.lease-forced',
  'automation.lease-learned',
  'automation.join-cleanup',
  'automation.join-cleanup-failed',
  'automation.site-declared-lost',
  'automation.site-rejoined',
  'automation.site-recover',
  'automation.recover-refused',
  'automation.split-brain-resolved',
  'automation.failback-requested',
  'automation.watch-error',
  'automation.resource-already-running',
  'automation.resource-already-stopped',
  'automation.resource-starting',
  'automation.resource-stopping',
  'automation.resource-started',
  'automation.resource-stopped',
  'automation.resource-start-failed',
  'automation.resource-stop-failed',
  'automation.resource-failed',
  'automation.resource-recovered',
] as const;

export const EVENT_TYPES = [...ARRAY_EVENT_TYPES, ...LINK_EVENT_TYPES, ...SUPERVISOR_EVENT_TYPES, ...MONITOR_EVENT_TYPES, ...HEARTBEAT_EVENT_TYPES, ...AUTOMATION_EVENT_TYPES] as const;

export type ArrayEventType = (typeof ARRAY_EVENT_TYPES)[number];
export type LinkEventType = (typeof LINK_EVENT_TYPES)[number];
export type SupervisorEventType = (typeof SUPERVISOR_EVENT_TYPES)[number];
export type MonitorEventType = (typeof MONITOR_EVENT_TYPES)[number];
export type HeartbeatEventType = (typeof HEARTBEAT_EVENT_TYPES)[number];
export type AutomationEventType = (typeof AUTOMATION_EVENT_TYPES)[number];
export type EventType = (typeof EVENT_TYPES)[number];
export type MirrorEventType = (typeof MIRROR_EVENTS)[number];
export type GroupEventType = (typeof GROUP_EVENTS)[number];

/** The family of a type: the part before the first dot (`mirror` for `mirror.resync-done`). */
export type EventFamily = EventType extends `${infer F}.${string}` ? F : never;

const ARRAY_SET: ReadonlySet<string> = new Set(ARRAY_EVENT_TYPES);
const LINK_SET: ReadonlySet<string> = new Set(LINK_EVENT_TYPES);
const SUPERVISOR_SET: ReadonlySet<string> = new Set(SUPERVISOR_EVENT_TYPES);
const MONITOR_SET: ReadonlySet<string> = new Set(MONITOR_EVENT_TYPES);
const HEARTBEAT_SET: ReadonlySet<string> = new Set(HEARTBEAT_EVENT_TYPES);
const AUTOMATION_SET: ReadonlySet<string> = new Set(AUTOMATION_EVENT_TYPES);

export function isAutomationEventType(type: string): type is AutomationEventType {
  return AUTOMATION_SET.has(type);
}

export function isArrayEventType(type: string): type is ArrayEventType {
  return ARRAY_SET.has(type);
}

export function isLinkEventType(type: string): type is LinkEventType {
  return LINK_SET.has(type);
}

export function isSupervisorEventType(type: string): type is SupervisorEventType {
  return SUPERVISOR_SET.has(type);
}

export function isMonitorEventType(type: string): type is MonitorEventType {
  return MONITOR_SET.has(type);
}

export function isHeartbeatEventType(type: string): type is HeartbeatEventType {
  return HEARTBEAT_SET.has(type);
}

export function eventFamily(type: EventType): EventFamily {
  return type.slice(0, type.indexOf('.')) as EventFamily;
}
