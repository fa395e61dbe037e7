/**
 * The Heartbeat Status Table 250 of the source (Fig. 2), kept by each site's master: Network
 * Heartbeat Enable 200, Remote Group Status 210 (by network), Remote Copy Heartbeat Enable 220,
 * Remote Group Status 230 (by mirror), Device Address 240 and Device Status 241 per heartbeat
 * mirror. Every status change goes through a transition table (data; anything absent throws)
 * and comes back as a TableChange record. Derived fields (210, 220, 230) are recomputed after
 * every change. Pure: every function returns a new table.
 */

export type PathEnable = 'ENABLE' | 'DISABLE' | 'FAILED';
export type GroupStatus = 'ALIVE' | 'FAILED' | 'UNKNOWN';
export type DeviceStatus = 'ENABLE' | 'DISABLE' | 'FAILED' | 'NULL';
/** The user's choice for the heartbeat mirrors as a whole (Fig. 8, steps 820/850). */
export type MirrorsMode = 'ENABLE' | 'DISABLE';

export const DEVICE_SLOTS = 8;

export interface DeviceEntry {
  slot: number;
  /** Device Address 240, e.g. 'alpha:hb0>bravo:hb0'; null when unused. */
  address: string | null;
  /** The heartbeat mirror's name; null when unused. */
  mirror: string | null;
  /** Device Status 241. */
  status: DeviceStatus;
  /** Consecutive fresh valid heartbeats read from this device (0 after an invalid one). */
  validStreak: number;
  /** Receiver's monotonic clock at the last fresh valid heartbeat, when the caller gave it. */
  lastValidMonoMs: number | null;
  /** Stable reason of the last status change. */
  reason: string;
}

export interface HeartbeatStatusTable {
  /** Network Heartbeat Enable 200. */
  networkEnable: PathEnable;
  /** Consecutive fresh valid heartbeats on the network (0 after an invalid one). */
  networkValidStreak: number;
  /** Remote Group Status 210: the peer site as seen through the network. Derived. */
  remoteGroupStatusByNetwork: GroupStatus;
  /** Remote Copy Heartbeat Enable 220. Derived from mirrorsMode and the devices. */
  remoteCopyEnable: PathEnable;
  /** Remote Group Status 230: the peer site as seen through the heartbeat mirrors. Derived. */
  remoteGroupStatusByMirror: GroupStatus;
  /** The user's setting behind 220 (Fig. 8). */
  mirrorsMode: MirrorsMode;
  /** Device Address 240 and Device Status 241: DEVICE_SLOTS entries, unused ones NULL. */
  devices: DeviceEntry[];
}

export type TableField = 'networkEnable' | 'remoteGroupStatusByNetwork' | 'remoteCopyEnable' | 'remoteGroupStatusByMirror' | 'mirrorsMode' | 'device';

/** One field change, for the agent to turn into an `hb.*` event. */
export interface TableChange {
  field: TableField;
  /** Set when field is 'device'. */
  slot?: number;
  mirror?: string;
  from: string;
  to: string;
  reason: string;
  detail: string;
}

export interface TableResult {
  table: HeartbeatStatusTable;
  changes: TableChange[];
}

// ---- transition tables -------------------------------------------------------------------------

export type DeviceEvent = 'install' | 'uninstall' | 'enable' | 'disable' | 'fail' | 'recover';
export type PathEvent = 'enable' | 'disable' | 'fail' | 'recover';

/** Device Status 241; anything absent is illegal. */
export const DEVICE_TRANSITIONS: Readonly<Record<DeviceStatus, Readonly<Partial<Record<DeviceEvent, DeviceStatus>>>>> = {
  NULL: { install: 'ENABLE' },
  ENABLE: { disable: 'DISABLE', fail: 'FAILED', uninstall: 'NULL' },
  DISABLE: { enable: 'ENABLE', uninstall: 'NULL' },
  FAILED: { recover: 'ENABLE', disable: 'DISABLE', uninstall: 'NULL' },
};

/** Network Heartbeat Enable 200; anything absent is illegal. */
export const PATH_TRANSITIONS: Readonly<Record<PathEnable, Readonly<Partial<Record<PathEvent, PathEnable>>>>> = {
  ENABLE: { disable: 'DISABLE', fail: 'FAILED' },
  DISABLE: { enable: 'ENABLE' },
  FAILED: { recover: 'ENABLE', disable: 'DISABLE' },
};

export class IllegalHeartbeatTransitionError extends Error {
  constructor(
    readonly kind: 'device' | 'path',
    readonly state: string,
    readonly event: string,
  ) {
    super(`illegal heartbeat ${kind} transition: ${event} in state ${state}`);
    this.name = 'IllegalHeartbeatTransitionError';
  }
}

export function deviceTransition(state: DeviceStatus, event: DeviceEvent): DeviceStatus {
  const row = DEVICE_TRANSITIONS[state];
  if (!row) throw new Error(`unknown device status ${String(state)}`);
  const next = row[event];
  if (!next) throw new IllegalHeartbeatTransitionError('device', state, event);
  return next;
}

export function pathTransition(state: PathEnable, event: PathEvent): PathEnable {
  const row = PATH_TRANSITIONS[state];
  if (!row) throw new Error(`unknown path state ${String(state)}`);
  const next = row[event];
  if (!next) throw new IllegalHeartbeatTransitionError('path', state, event);
  return next;
}

// ---- construction and derived fields -----------------------------------------------------------

function nullDevice(slot: number): DeviceEntry {
  return { slot, address: null, mirror: null, status: 'NULL', validStreak: 0, lastValidMonoMs: null, reason: 'unused' };
}

/** A new table: network ENABLE, mirrors ENABLE, no devices, every group UNKNOWN. */
export function emptyTable(): HeartbeatStatusTable {
  const devices = Array.from({ length: DEVICE_SLOTS }, (_, i) => nullDevice(i));
  return withDerived({ networkEnable: 'ENABLE', networkValidStreak: 0, remoteGroupStatusByNetwork: 'UNKNOWN', remoteCopyEnable: 'FAILED', remoteGroupStatusByMirror: 'UNKNOWN', mirrorsMode: 'ENABLE', devices });
}

/** True when the device is read for heartbeats: installed, not disabled, mirrors enabled. */
export function deviceMonitored(t: HeartbeatStatusTable, d: DeviceEntry): boolean {
  return t.mirrorsMode === 'ENABLE' && (d.status === 'ENABLE' || d.status === 'FAILED');
}

/** 210: ALIVE after a fresh valid heartbeat while ENABLE, FAILED while FAILED, else UNKNOWN. */
export function deriveGroupByNetwork(t: HeartbeatStatusTable): GroupStatus {
  if (t.networkEnable === 'FAILED') return 'FAILED';
  if (t.networkEnable === 'ENABLE' && t.networkValidStreak > 0) return 'ALIVE';
  return 'UNKNOWN';
}

/**
 * 220: DISABLE when the user disabled the mirrors or every installed device; ENABLE when at
 * least one device is ENABLE; otherwise (every entry FAILED, DISABLE or NULL) FAILED.
 */
export function deriveRemoteCopyEnable(t: HeartbeatStatusTable): PathEnable {
  if (t.mirrorsMode === 'DISABLE') return 'DISABLE';
  const installed = t.devices.filter((d) => d.status !== 'NULL');
  if (installed.some((d) => d.status === 'ENABLE')) return 'ENABLE';
  if (installed.length > 0 && installed.every((d) => d.status === 'DISABLE')) return 'DISABLE';
  return 'FAILED';
}

/** 230: ALIVE when an ENABLE device had a fresh valid heartbeat; FAILED when every monitored one failed. */
export function deriveGroupByMirror(t: HeartbeatStatusTable): GroupStatus {
  const monitored = t.devices.filter((d) => deviceMonitored(t, d));
  if (monitored.some((d) => d.status === 'ENABLE' && d.validStreak > 0)) return 'ALIVE';
  if (monitored.length > 0 && monitored.every((d) => d.status === 'FAILED')) return 'FAILED';
  return 'UNKNOWN';
}

function withDerived(t: HeartbeatStatusTable): HeartbeatStatusTable {
  return { ...t, remoteGroupStatusByNetwork: deriveGroupByNetwork(t), remoteCopyEnable: deriveRemoteCopyEnable(t), remoteGroupStatusByMirror: deriveGroupByMirror(t) };
}

const DERIVED = ['remoteGroupStatusByNetwork', 'remoteCopyEnable', 'remoteGroupStatusByMirror'] as const;

/** Recomputes the derived fields of `next` and appends their changes against `prev`. */
function finish(prev: HeartbeatStatusTable, next: HeartbeatStatusTable, changes: TableChange[], reason: string, detail: string): TableResult {
  const t = withDerived(next);
  for (const f of DERIVED) {
    if (prev[f] !== t[f]) changes.push({ field: f, from: prev[f], to: t[f], reason, detail });
  }
  return { table: t, changes };
}

function cloneTable(t: HeartbeatStatusTable): HeartbeatStatusTable {
  return { ...t, devices: t.devices.map((d) => ({ ...d })) };
}

function deviceChange(d: DeviceEntry, from: DeviceStatus, reason: string, detail: string): TableChange {
  const c: TableChange = { field: 'device', slot: d.slot, from, to: d.status, reason, detail };
  if (d.mirror !== null) c.mirror = d.mirror;
  return c;
}

// ---- install / uninstall (Figs. 4, 5) ----------------------------------------------------------

export interface DeviceOpDone {
  ok: true;
  slot: number;
  table: HeartbeatStatusTable;
  changes: TableChange[];
}
export type InstallResult = DeviceOpDone | { ok: false; reason: 'duplicate-mirror' | 'table-full'; detail: string };
export type UninstallResult = DeviceOpDone | { ok: false; reason: 'not-installed'; detail: string };

function checkName(s: unknown, what: string): asserts s is string {
  if (typeof s !== 'string' || s.length === 0) throw new TypeError(`${what} must be a non-empty string`);
}

/** Registers a heartbeat mirror in the first NULL entry with Device Status ENABLE (Fig. 4, 420/440). */
export function installDevice(table: HeartbeatStatusTable, dev: { mirror: string; address: string }): InstallResult {
  checkName(dev.mirror, 'mirror');
  checkName(dev.address, 'address');
  if (table.devices.some((d) => d.mirror === dev.mirror)) return { ok: false, reason: 'duplicate-mirror', detail: `heartbeat mirror ${dev.mirror} is already installed` };
  const free = table.devices.find((d) => d.status === 'NULL');
  if (!free) return { ok: false, reason: 'table-full', detail: `all ${DEVICE_SLOTS} device entries are in use` };
  const t = cloneTable(table);
  const d = t.devices[free.slot]!;
  d.status = deviceTransition(d.status, 'install');
  Object.assign(d, { mirror: dev.mirror, address: dev.address, validStreak: 0, lastValidMonoMs: null, reason: 'installed' });
  const changes = [deviceChange(d, 'NULL', 'installed', `heartbeat mirror ${dev.mirror} (${dev.address}) installed in slot ${d.slot}`)];
  return { ok: true, slot: d.slot, ...finish(table, t, changes, 'installed', `heartbeat mirror ${dev.mirror} installed`) };
}

/** Sets the mirror's entries back to NULL (Fig. 5, 510). */
export function uninstallDevice(table: HeartbeatStatusTable, mirror: string): UninstallResult {
  checkName(mirror, 'mirror');
  const found = table.devices.find((d) => d.mirror === mirror);
  if (!found) return { ok: false, reason: 'not-installed', detail: `heartbeat mirror ${mirror} is not installed` };
  const t = cloneTable(table);
  const from = found.status;
  deviceTransition(from, 'uninstall');
  t.devices[found.slot] = nullDevice(found.slot);
  const c: TableChange = { field: 'device', slot: found.slot, mirror, from, to: 'NULL', reason: 'uninstalled', detail: `heartbeat mirror ${mirror} uninstalled from slot ${found.slot}` };
  return { ok: true, slot: found.slot, ...finish(table, t, [c], 'uninstalled', c.detail) };
}

// ---- user mode (Fig. 8) ------------------------------------------------------------------------

export interface ModeRequest {
  network?: boolean;
  mirrors?: boolean;
  device?: { mirror: string; enabled: boolean };
}

/** The event a user's on/off request means in `state`, or null when it is already so. */
function userEvent(state: PathEnable | DeviceStatus, enabled: boolean): 'enable' | 'disable' | null {
  if (enabled) return state === 'DISABLE' ? 'enable' : null;
  return state === 'ENABLE' || state === 'FAILED' ? 'disable' : null;
}

/** Applies a user's heartbeat-checking procedure (Fig. 8: 810/840 network, 820/850 mirrors). */
export function setMode(table: HeartbeatStatusTable, req: ModeRequest): TableResult {
  const t = cloneTable(table);
  const changes: TableChange[] = [];
  if (req.network !== undefined) {
    const ev = userEvent(t.networkEnable, req.network);
    if (ev) {
      const from = t.networkEnable;
      t.networkEnable = pathTransition(from, ev);
      t.networkValidStreak = 0;
      changes.push({ field: 'networkEnable', from, to: t.networkEnable, reason: `user-${ev}`, detail: `user ${ev}d heartbeats on the network` });
    }
  }
  if (req.mirrors !== undefined) {
    const to: MirrorsMode = req.mirrors ? 'ENABLE' : 'DISABLE';
    if (t.mirrorsMode !== to) {
      changes.push({ field: 'mirrorsMode', from: t.mirrorsMode, to, reason: `user-${req.mirrors ? 'enable' : 'disable'}`, detail: `user turned heartbeats through the mirrors ${req.mirrors ? 'on' : 'off'}` });
      t.mirrorsMode = to;
    }
  }
  if (req.device) setDeviceMode(t, req.device, changes);
  return finish(table, t, changes, 'user-mode', 'heartbeat checking procedure changed by the user');
}

function setDeviceMode(t: HeartbeatStatusTable, req: { mirror: string; enabled: boolean }, changes: TableChange[]): void {
  checkName(req.mirror, 'device.mirror');
  const d = t.devices.find((x) => x.mirror === req.mirror);
  if (!d) throw new Error(`setMode: heartbeat mirror ${req.mirror} is not installed`);
  const ev = userEvent(d.status, req.enabled);
  if (!ev) return;
  const from = d.status;
  d.status = deviceTransition(from, ev);
  d.validStreak = 0;
  d.reason = `user-${ev}`;
  changes.push(deviceChange(d, from, d.reason, `user ${ev}d heartbeat mirror ${req.mirror}`));
}

// ---- verdicts (Fig. 7) with hysteresis ---------------------------------------------------------

export interface VerdictConfig {
  /** Consecutive fresh valid heartbeats that bring a FAILED path back to ENABLE (>= 1). */
  recoverAfter: number;
  /** Receiver's monotonic clock, recorded as lastValidMonoMs of a device on a fresh valid heartbeat. */
  nowMonoMs?: number;
}

/** A path's verdict for one cycle: validity.observe's PathVerdict, or the agent's own (an I/O error). */
export interface PathVerdict {
  valid: boolean;
  /** A new heartbeat (serial) was seen this cycle. */
  fresh: boolean;
  reason: string;
  detail: string;
}

type Step = { status: 'ENABLE' | 'FAILED'; streak: number; event: 'fail' | 'recover' | null };

/**
 * One path's reaction to a verdict. ENABLE: an invalid verdict fails it. FAILED: fresh valid
 * heartbeats count up and `recoverAfter` consecutive ones recover it; an invalid one resets the
 * count; a valid but not fresh one (nothing new yet) leaves it.
 */
export function verdictStep(status: 'ENABLE' | 'FAILED', streak: number, v: PathVerdict, recoverAfter: number): Step {
  if (!v.valid) return { status: 'FAILED', streak: 0, event: status === 'ENABLE' ? 'fail' : null };
  const s = v.fresh ? streak + 1 : streak;
  if (status === 'FAILED' && s >= recoverAfter) return { status: 'ENABLE', streak: s, event: 'recover' };
  return { status, streak: s, event: null };
}

function checkVerdictConfig(cfg: VerdictConfig): void {
  if (!Number.isInteger(cfg.recoverAfter) || cfg.recoverAfter < 1) throw new RangeError(`recoverAfter must be an integer >= 1, got ${cfg.recoverAfter}`);
  if (cfg.nowMonoMs !== undefined && !Number.isFinite(cfg.nowMonoMs)) throw new RangeError(`nowMonoMs must be finite, got ${cfg.nowMonoMs}`);
}

function stepReason(v: PathVerdict, event: 'fail' | 'recover', recoverAfter: number): { reason: string; detail: string } {
  if (event === 'fail') return { reason: v.reason, detail: v.detail };
  return { reason: 'recovered', detail: `${recoverAfter} consecutive valid heartbeats` };
}

/**
 * Applies a path's verdict (from validity.observe) to the table. The path must be monitored:
 * the network ENABLE or FAILED; a device installed, ENABLE or FAILED, with mirrors enabled.
 * Anything else is misuse and throws.
 */
export function applyVerdict(table: HeartbeatStatusTable, path: 'network' | { mirror: string }, verdict: PathVerdict, cfg: VerdictConfig): TableResult {
  checkVerdictConfig(cfg);
  const t = cloneTable(table);
  const changes: TableChange[] = [];
  let why = { reason: verdict.reason, detail: verdict.detail };
  if (path === 'network') {
    if (t.networkEnable === 'DISABLE') throw new Error('applyVerdict: the network path is DISABLE; it is not read');
    const step = verdictStep(t.networkEnable, t.networkValidStreak, verdict, cfg.recoverAfter);
    const from = t.networkEnable;
    if (step.event) {
      t.networkEnable = pathTransition(from, step.event);
      why = stepReason(verdict, step.event, cfg.recoverAfter);
      changes.push({ field: 'networkEnable', from, to: t.networkEnable, ...why });
    }
    t.networkValidStreak = step.streak;
  } else {
    const d = t.devices.find((x) => x.mirror === path.mirror);
    if (!d) throw new Error(`applyVerdict: heartbeat mirror ${path.mirror} is not installed`);
    if (!deviceMonitored(t, d)) throw new Error(`applyVerdict: heartbeat mirror ${path.mirror} is not monitored (status ${d.status}, mirrors ${t.mirrorsMode})`);
    const from = d.status as 'ENABLE' | 'FAILED';
    const step = verdictStep(from, d.validStreak, verdict, cfg.recoverAfter);
    if (step.event) {
      d.status = deviceTransition(from, step.event);
      why = stepReason(verdict, step.event, cfg.recoverAfter);
      d.reason = why.reason;
      changes.push(deviceChange(d, from, why.reason, why.detail));
    }
    d.validStreak = step.streak;
    if (verdict.valid && verdict.fresh && cfg.nowMonoMs !== undefined) d.lastValidMonoMs = cfg.nowMonoMs;
  }
  return finish(table, t, changes, why.reason, why.detail);
}

