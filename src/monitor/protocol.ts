/**
 * The monitor's socket protocol (seed 000 [0047]): one JSON object per line each way. A request
 * carries the source's msgType and entry fields; the reply carries the return code of the
 * source's tables (RC) and what was asked for. Local clients use the named socket (mode 0600);
 * other hosts use the TCP listener, where every request must carry the token.
 *
 * The source's msgTypes: ADD, CHANGE, CHANGEALL, SHOW, SHOWALL, REMOVE, REMOVEALL (also stops
 * the daemon), START, STOP, GETPID. sanbox adds SET (change several fields of one resource),
 * SAVE and LOAD (prmd -d / -u: the file is read and written by the client, the entries travel in
 * the message), WAIT (until a resource reaches a pair state), EVENTS (the connection becomes the
 * event stream, NDJSON) and SHUTDOWN (stop the daemon, keep the database).
 */
import { MAX_INSTANCE_LENGTH, MAX_INTERVAL_SECONDS, MAX_NAME_LENGTH, MIN_INTERVAL_SECONDS, PAIR_STATES, type PairState, type ResourceSpec, type ResourceView } from './types.js';

/** Return codes of prmd and chkmon (the source's tables); also the `code` of every reply. */
export const RC = { OK: 0, NOT_PAIR: 1, NOT_FOUND: 2, NOT_RUNNING: 3, INTERNAL: 10, MIRROR_ERROR: 100 } as const;
export type ReturnCode = (typeof RC)[keyof typeof RC];

export const MSG_TYPES = ['ADD', 'CHANGE', 'CHANGEALL', 'SHOW', 'SHOWALL', 'REMOVE', 'REMOVEALL', 'START', 'STOP', 'GETPID', 'SET', 'SAVE', 'LOAD', 'WAIT', 'EVENTS', 'SHUTDOWN'] as const;
export type MsgType = (typeof MSG_TYPES)[number];

/** The largest request line accepted; a longer one is refused and the connection closed. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** The most resources one LOAD may carry. */
export const MAX_LOAD_RESOURCES = 1000;
/** WAIT gives up after at most this long. */
export const MAX_WAIT_SECONDS = 86_400;

export interface Request {
  msgType: MsgType;
  appName?: string;
  deviceGroup?: string;
  instance?: string;
  interval?: number;
  /** the autorecover flag, 'yes' or 'no' (the source's `resync`) */
  resync?: 'yes' | 'no';
  resyncAdminFractures?: 'yes' | 'no';
  /** LOAD: the resources of a file */
  resources?: ResourceSpec[];
  /** WAIT: the pair states that end the wait, and for how long (seconds) */
  states?: PairState[];
  timeout?: number;
  /** EVENTS: replay the kept events after this sequence number */
  since?: number;
  /** required on the TCP listener */
  token?: string;
}

export interface Reply {
  ok: boolean;
  code: ReturnCode;
  message?: string;
  resource?: ResourceView;
  resources?: ResourceView[];
  pid?: number;
  /** timed out: WAIT only */
  timedOut?: boolean;
}

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/;

/** A name field (appName, deviceGroup): 1-64 characters of [A-Za-z0-9_.:-], not `.` or `..`. */
export function checkName(what: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw new ProtocolError(`${what} is required`);
  if (v.length > MAX_NAME_LENGTH) throw new ProtocolError(`${what} is longer than ${MAX_NAME_LENGTH} characters`);
  if (!NAME_RE.test(v) || v === '.' || v === '..') throw new ProtocolError(`${what} ${JSON.stringify(v)} may only hold letters, digits and _ . : - (not starting with . or -)`);
  return v;
}

export function checkInstance(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw new ProtocolError('instance is required');
  if (v.length > MAX_INSTANCE_LENGTH) throw new ProtocolError(`instance is longer than ${MAX_INSTANCE_LENGTH} characters`);
  if (/^https?:\/\//i.test(v)) {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      throw new ProtocolError(`instance ${JSON.stringify(v)} is not a valid URL`);
    }
    if (u.protocol !== 'http:') throw new ProtocolError(`instance ${JSON.stringify(v)}: only http:// array APIs are supported`);
    if (u.pathname !== '/' || u.search || u.hash) throw new ProtocolError(`instance ${JSON.stringify(v)}: give the API's base URL (http://[:TOKEN@]HOST:PORT)`);
    return v;
  }
  return checkName('instance', v);
}

export function checkInterval(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < MIN_INTERVAL_SECONDS || v > MAX_INTERVAL_SECONDS) {
    throw new ProtocolError(`monitor interval must be a whole number of seconds ${MIN_INTERVAL_SECONDS}-${MAX_INTERVAL_SECONDS}, not ${JSON.stringify(v)}`);
  }
  return v;
}

export function checkYesNo(what: string, v: unknown): boolean {
  if (v === 'yes') return true;
  if (v === 'no') return false;
  throw new ProtocolError(`${what} must be yes or no, not ${JSON.stringify(v)}`);
}

/** A resource of a LOAD message or a database file, checked field by field. */
export function checkSpec(v: unknown, where = 'resource'): ResourceSpec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProtocolError(`${where} must be an object`);
  const o = v as Record<string, unknown>;
  const known = new Set(['appName', 'deviceGroup', 'instance', 'intervalSeconds', 'autorecover', 'resyncAdminFractures']);
  for (const k of Object.keys(o)) if (!known.has(k)) throw new ProtocolError(`${where}: unknown field ${JSON.stringify(k)}`);
  const bool = (k: string, d?: boolean): boolean => {
    if (o[k] === undefined && d !== undefined) return d;
    if (typeof o[k] !== 'boolean') throw new ProtocolError(`${where}: ${k} must be true or false`);
    return o[k] as boolean;
  };
  return {
    appName: checkName(`${where}: appName`, o.appName),
    deviceGroup: checkName(`${where}: deviceGroup`, o.deviceGroup),
    instance: checkInstance(o.instance),
    intervalSeconds: checkInterval(o.intervalSeconds),
    autorecover: bool('autorecover'),
    resyncAdminFractures: bool('resyncAdminFractures', false),
  };
}

const REQUEST_FIELDS = new Set(['msgType', 'appName', 'deviceGroup', 'instance', 'interval', 'resync', 'resyncAdminFractures', 'resources', 'states', 'timeout', 'since', 'token', 'pVol', 'sVol']);

/** Parses and checks one request line: every field the msgType needs, nothing unknown. */
export function parseRequest(line: string): Request {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw new ProtocolError(`malformed message: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProtocolError('a message must be a JSON object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!REQUEST_FIELDS.has(k)) throw new ProtocolError(`unknown field ${JSON.stringify(k)}`);
  if (typeof o.msgType !== 'string' || !(MSG_TYPES as readonly string[]).includes(o.msgType)) {
    throw new ProtocolError(`unknown msgType ${JSON.stringify(o.msgType)} (one of ${MSG_TYPES.join(', ')})`);
  }
  const r: Request = { msgType: o.msgType as MsgType };
  if (o.token !== undefined) {
    if (typeof o.token !== 'string' || o.token.length > 512) throw new ProtocolError('token must be a string');
    r.token = o.token;
  }
  const needsNames = ['ADD', 'CHANGE', 'SHOW', 'REMOVE', 'START', 'STOP', 'SET', 'WAIT'].includes(r.msgType);
  if (needsNames) {
    r.appName = checkName('appName', o.appName);
    r.deviceGroup = checkName('deviceGroup', o.deviceGroup);
  }
  if (r.msgType === 'ADD') {
    r.instance = checkInstance(o.instance);
    r.interval = checkInterval(o.interval);
    checkYesNo('resync (autorecover)', o.resync);
    r.resync = o.resync as 'yes' | 'no';
  }
  if (r.msgType === 'CHANGE' || r.msgType === 'CHANGEALL') r.interval = checkInterval(o.interval);
  if (r.msgType === 'SET' || r.msgType === 'ADD') {
    if (o.instance !== undefined) r.instance = checkInstance(o.instance);
    if (o.interval !== undefined) r.interval = checkInterval(o.interval);
    if (o.resync !== undefined) r.resync = checkYesNo('resync (autorecover)', o.resync) ? 'yes' : 'no';
    if (o.resyncAdminFractures !== undefined) r.resyncAdminFractures = checkYesNo('resyncAdminFractures', o.resyncAdminFractures) ? 'yes' : 'no';
  }
  if (r.msgType === 'LOAD') {
    if (!Array.isArray(o.resources)) throw new ProtocolError('LOAD needs resources: an array');
    if (o.resources.length > MAX_LOAD_RESOURCES) throw new ProtocolError(`LOAD carries at most ${MAX_LOAD_RESOURCES} resources`);
    r.resources = o.resources.map((x, i) => checkSpec(x, `resources[${i}]`));
  }
  if (r.msgType === 'WAIT') {
    if (!Array.isArray(o.states) || o.states.length === 0) throw new ProtocolError('WAIT needs states: a non-empty array');
    for (const s of o.states) if (!(PAIR_STATES as readonly unknown[]).includes(s)) throw new ProtocolError(`unknown pair state ${JSON.stringify(s)} (one of ${PAIR_STATES.join(', ')})`);
    r.states = o.states as PairState[];
    if (typeof o.timeout !== 'number' || !(o.timeout >= 0) || o.timeout > MAX_WAIT_SECONDS) throw new ProtocolError(`WAIT needs timeout: seconds 0-${MAX_WAIT_SECONDS}`);
    r.timeout = o.timeout;
  }
  if (r.msgType === 'EVENTS' && o.since !== undefined) {
    if (typeof o.since !== 'number' || !Number.isSafeInteger(o.since) || o.since < 0) throw new ProtocolError('since must be a sequence number');
    r.since = o.since;
  }
  return r;
}

export const reply = (code: ReturnCode, extra: Omit<Reply, 'ok' | 'code'> = {}): Reply => ({ ok: code === RC.OK, code, ...extra });
