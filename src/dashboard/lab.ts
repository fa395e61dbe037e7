/**
 * What the dashboard needs to know of the running lab, and how it talks to the lab's APIs.
 * The supervisor hands it a function that returns its live state (the lab state file's
 * content): the shape below is the part of it the dashboard reads, declared here so that the
 * dashboard does not import the CLI that starts it. Tokens stay in this process: the page
 * never sees them (every call goes through the dashboard's proxy).
 */

export interface DashboardLabArray {
  name: string;
  /** The supervision state: starting, running, crashed, restarting, stopping, stopped. */
  state?: string;
  held?: boolean;
  site?: string;
  api: { url: string; token?: string };
  sps?: { name: string }[];
}

export interface DashboardLabLink {
  name: string;
  a: string;
  b: string;
  api: { url: string; token?: string };
}

export interface DashboardLab {
  lab: string;
  state: string;
  startedAt?: string;
  control?: { url: string; token: string };
  sites?: { name: string; arrays: string[]; failed?: boolean }[];
  arrays: DashboardLabArray[];
  links?: DashboardLabLink[];
  mirrors?: { name: string; primary: string; secondaries: string[]; status: string }[];
  groups?: { name: string; primary: string; members: string[]; secondaries: string[]; mode: string; status: string }[];
  /** The lab's pair resync monitor, once `sanbox up` started it: its read-only HTTP (loopback, no token). */
  monitor?: { http?: string };
}

/** The monitor's HTTP as an upstream, if the lab has one. */
export function monitorOf(lab: DashboardLab): Upstream | undefined {
  return lab.monitor?.http ? { url: lab.monitor.http } : undefined;
}

/** An API of the lab: an array's, a link emulator's, or the supervisor's control API. */
export interface Upstream {
  url: string;
  token?: string;
}

export interface UpstreamAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** A request's time limit; a restart through the supervisor waits for the array to be ready. */
const READ_TIMEOUT_MS = 5_000;
const CHANGE_TIMEOUT_MS = 120_000;

/** One call to a lab API. A change carries the JSON content type the browser rule asks for. Throws when nobody answers. */
export async function callUpstream(up: Upstream, method: 'GET' | 'POST', path: string, body?: unknown): Promise<UpstreamAnswer> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (up.token) headers.Authorization = `Bearer ${up.token}`;
  if (method === 'POST') headers['Content-Type'] = 'application/json';
  const res = await fetch(up.url + path, {
    method,
    headers,
    ...(method === 'POST' ? { body: JSON.stringify(body ?? {}) } : {}),
    signal: AbortSignal.timeout(method === 'GET' ? READ_TIMEOUT_MS : CHANGE_TIMEOUT_MS),
  });
  return { status: res.status, contentType: res.headers.get('content-type') ?? 'application/json', body: await res.text() };
}

/** A GET whose JSON answer is wanted; undefined when the API is down or answers an error. */
export async function readJson<T>(up: Upstream, path: string): Promise<T | undefined> {
  try {
    const a = await callUpstream(up, 'GET', path);
    return a.status === 200 ? (JSON.parse(a.body) as T) : undefined;
  } catch {
    return undefined; // down (crashed, restarting): the topology shows it so
  }
}

export function arrayOf(lab: DashboardLab, name: string): DashboardLabArray | undefined {
  return lab.arrays.find((a) => a.name === name);
}

export function linkOf(lab: DashboardLab, name: string): DashboardLabLink | undefined {
  return lab.links?.find((l) => l.name === name);
}

/** Whether the supervisor says the array's API should answer. */
export function arrayUp(a: DashboardLabArray): boolean {
  return a.state === undefined || a.state === 'running';
}
