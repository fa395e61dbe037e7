/**
 * Persistence and invariants of the Heartbeat Status Table (status-table.ts). The agent keeps
 * the table in memory and on a volume (the source: "stored in both the memory in a host and a
 * volume"); parseTable refuses anything that is not a table this code could have produced.
 */
import {
  DEVICE_SLOTS,
  DEVICE_TRANSITIONS,
  PATH_TRANSITIONS,
  deriveGroupByMirror,
  deriveGroupByNetwork,
  deriveRemoteCopyEnable,
  type DeviceEntry,
  type HeartbeatStatusTable,
} from './status-table.js';

export const TABLE_FORMAT = 'sanbox-heartbeat-status-table';
export const TABLE_FORMAT_VERSION = 1;

export class TableParseError extends Error {
  constructor(message: string) {
    super(`heartbeat status table: ${message}`);
    this.name = 'TableParseError';
  }
}

/** Throws TableParseError when `t` breaks an invariant of the table. */
export function assertTableInvariants(t: HeartbeatStatusTable): void {
  const fail = (m: string): never => {
    throw new TableParseError(m);
  };
  if (!(t.networkEnable in PATH_TRANSITIONS)) fail(`networkEnable ${String(t.networkEnable)} is not ENABLE, DISABLE or FAILED`);
  if (t.mirrorsMode !== 'ENABLE' && t.mirrorsMode !== 'DISABLE') fail(`mirrorsMode ${String(t.mirrorsMode)} is not ENABLE or DISABLE`);
  checkStreak(t.networkValidStreak, 'networkValidStreak', fail);
  if (t.networkEnable === 'DISABLE' && t.networkValidStreak !== 0) fail('a DISABLE network has a valid streak');
  if (!Array.isArray(t.devices) || t.devices.length !== DEVICE_SLOTS) fail(`devices must be ${DEVICE_SLOTS} entries`);
  const mirrors = new Set<string>();
  t.devices.forEach((d, i) => {
    checkDevice(d, i, fail);
    if (d.mirror !== null) {
      if (mirrors.has(d.mirror)) fail(`heartbeat mirror ${d.mirror} is installed twice`);
      mirrors.add(d.mirror);
    }
  });
  const derived = { remoteGroupStatusByNetwork: deriveGroupByNetwork(t), remoteCopyEnable: deriveRemoteCopyEnable(t), remoteGroupStatusByMirror: deriveGroupByMirror(t) };
  for (const [k, v] of Object.entries(derived)) {
    const stored = (t as unknown as Record<string, unknown>)[k];
    if (stored !== v) fail(`${k} is ${String(stored)} but the entries say ${v}`);
  }
}

function checkStreak(v: unknown, what: string, fail: (m: string) => never): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(`${what} must be a non-negative integer`);
}

function checkDevice(d: DeviceEntry, i: number, fail: (m: string) => never): void {
  const at = `devices[${i}]`;
  if (typeof d !== 'object' || d === null) fail(`${at} is not an object`);
  if (d.slot !== i) fail(`${at}.slot is ${String(d.slot)}`);
  if (!(d.status in DEVICE_TRANSITIONS)) fail(`${at}.status ${String(d.status)} is unknown`);
  checkStreak(d.validStreak, `${at}.validStreak`, fail);
  if (d.lastValidMonoMs !== null && !Number.isFinite(d.lastValidMonoMs)) fail(`${at}.lastValidMonoMs must be null or a number`);
  if (typeof d.reason !== 'string') fail(`${at}.reason must be a string`);
  if (d.status === 'NULL') {
    if (d.mirror !== null || d.address !== null || d.validStreak !== 0 || d.lastValidMonoMs !== null) fail(`${at} is NULL but holds a device`);
    return;
  }
  if (typeof d.mirror !== 'string' || d.mirror === '') fail(`${at} is ${d.status} without a mirror name`);
  if (typeof d.address !== 'string' || d.address === '') fail(`${at} is ${d.status} without an address`);
  if (d.status === 'DISABLE' && d.validStreak !== 0) fail(`${at} is DISABLE with a valid streak`);
}

/** The table as JSON (format tag and version first). Asserts the invariants before writing. */
export function serializeTable(t: HeartbeatStatusTable): string {
  assertTableInvariants(t);
  return JSON.stringify({ format: TABLE_FORMAT, version: TABLE_FORMAT_VERSION, table: t });
}

const TABLE_KEYS = ['networkEnable', 'networkValidStreak', 'remoteGroupStatusByNetwork', 'remoteCopyEnable', 'remoteGroupStatusByMirror', 'mirrorsMode', 'devices'];
const DEVICE_KEYS = ['slot', 'address', 'mirror', 'status', 'validStreak', 'lastValidMonoMs', 'reason'];

function exactKeys(o: unknown, keys: readonly string[], what: string): Record<string, unknown> {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new TableParseError(`${what} is not an object`);
  const got = Object.keys(o).sort();
  const want = [...keys].sort();
  if (got.join(',') !== want.join(',')) throw new TableParseError(`${what} has keys [${got.join(', ')}], expected [${want.join(', ')}]`);
  return o as Record<string, unknown>;
}

/** Parses serializeTable's output; throws TableParseError on anything else. */
export function parseTable(json: string): HeartbeatStatusTable {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new TableParseError(`not JSON: ${(e as Error).message}`);
  }
  const top = exactKeys(doc, ['format', 'version', 'table'], 'document');
  if (top.format !== TABLE_FORMAT) throw new TableParseError(`format is ${String(top.format)}, expected ${TABLE_FORMAT}`);
  if (top.version !== TABLE_FORMAT_VERSION) throw new TableParseError(`version ${String(top.version)}, this build reads ${TABLE_FORMAT_VERSION}`);
  const t = exactKeys(top.table, TABLE_KEYS, 'table');
  if (!Array.isArray(t.devices)) throw new TableParseError('devices is not an array');
  t.devices.forEach((d, i) => exactKeys(d, DEVICE_KEYS, `devices[${i}]`));
  const table = t as unknown as HeartbeatStatusTable;
  assertTableInvariants(table);
  return table;
}
