/**
 * The HTTP plumbing of the API: routes, JSON bodies and answers, API errors. Every route family
 * (luns.ts, chassis.ts, mirrors.ts, groups.ts, events.ts) is a list of `Route`s built on this.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const API_VERSION = 'v1';
/** Largest request body accepted. */
export const MAX_BODY = 64 * 1024;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type Handler = (req: IncomingMessage, res: ServerResponse, params: string[], url: URL) => Promise<unknown> | unknown;
export interface Route {
  pattern: RegExp;
  methods: Record<string, Handler>;
}

export const route = (pattern: RegExp, methods: Record<string, Handler>): Route => ({ pattern, methods });

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function parseBool(v: string | null, what: string): boolean {
  if (v === null || v === '' || v === 'false' || v === '0') return v === '' ? true : false;
  if (v === 'true' || v === '1') return true;
  throw new ApiError(400, 'invalid-argument', `${what} must be true or false, not ${JSON.stringify(v)}`);
}

export async function drain(req: IncomingMessage): Promise<void> {
  let n = 0;
  for await (const chunk of req) {
    n += (chunk as Buffer).length;
    if (n > MAX_BODY) throw new ApiError(413, 'payload-too-large', `request body over ${MAX_BODY} bytes`);
  }
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/([\w.+-]*\+)?json\b/i.test(type)) {
    throw new ApiError(415, 'unsupported-media-type', `request body must be application/json, not ${type}`);
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_BODY) {
    throw new ApiError(413, 'payload-too-large', `request body over ${MAX_BODY} bytes`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of req) {
    n += (chunk as Buffer).length;
    if (n > MAX_BODY) throw new ApiError(413, 'payload-too-large', `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new ApiError(400, 'invalid-json', 'request body is empty; expected a JSON object');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, 'invalid-json', `request body is not valid JSON: ${(e as Error).message}`);
  }
}

export async function readOptionalJson(req: IncomingMessage): Promise<unknown> {
  if (req.headers['content-length'] === '0' || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined)) {
    await drain(req);
    return {};
  }
  return readJson(req);
}

/**
 * Reads and drops a body whose content cannot change the answer (a route that is absent).
 * Its failure is ignored on purpose: a body over MAX_BODY or a client gone mid-body leaves the
 * request incomplete, and fail() then closes the connection after the same answer.
 */
export async function discardBody(req: IncomingMessage): Promise<void> {
  try {
    await drain(req);
  } catch {
    // deliberate: see above; the caller answers the same either way
  }
}
