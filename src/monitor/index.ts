/**
 * The pair resync monitor (seed 000): a daemon that keeps a resource database of mirrors and
 * consistency groups, polls each at its interval and on the arrays' events, and resynchronizes
 * suspended pairs when autorecover is on. Clients talk to it over its socket (protocol.ts);
 * prmd, chkmon and `sanbox monitor` are in src/cli/monitor. See docs/monitor.md.
 */
export type { PairReading, PairState, RecoveryPhase, ResourceEntry, ResourceSpec, ResourceView, HistoryItem } from './types.js';
export { PAIR_STATES, SOURCE_NAMES, keyOf } from './types.js';
export { MSG_TYPES, RC, ProtocolError, checkInstance, checkInterval, checkName, checkYesNo, type MsgType, type Reply, type Request, type ReturnCode } from './protocol.js';
export { MonitorDaemon, MonitorAlreadyRunning, infoPathOf, logPathOf, socketPathOf, type DaemonInfo, type DaemonOptions } from './daemon.js';
export { ensureDaemon, followEvents, request, type MonitorAddress } from './client.js';
export { decodeResourceFile, encodeResourceFile, specOf } from './db.js';
export { formatEvent, type MonitorEvent } from './events.js';
export type { ArrayAccess, InstanceResolver } from './access.js';
export { DEFAULT_CHECKER_OPTIONS, type CheckerOptions } from './checker.js';
