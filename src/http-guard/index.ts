/**
 * The browser rule of every HTTP API of sanbox (an array's management API, the link emulators',
 * the lab supervisor's control API, the monitor's read-only HTTP): a web page the user visits may
 * send requests to 127.0.0.1, and a browser sends some of them cross-origin without asking the
 * server first (no CORS preflight): GET, and POST with an empty body or a `text/plain`, form or
 * multipart body. Its page cannot read the answer, but the request still runs. So:
 *
 * - a request that may change something (any method but GET, HEAD and OPTIONS) must carry
 *   `Content-Type: application/json` (any parameters; `application/*+json` too), also when it
 *   has no body, or the header `X-Sanbox-Request: 1`. A browser sends neither cross-origin
 *   without a preflight, which these servers never grant. Otherwise: 415 unsupported-media-type;
 * - a request with an `Origin` header that is neither the server's own origin (`http://` + the
 *   request's Host) nor one of the configured `allowedOrigins` is refused: 403 forbidden-origin.
 *   GET and HEAD are exempt (`readsToo` makes them subject as well) and keep the servers' Host
 *   checks, which stop DNS rebinding.
 *
 * Tools (curl, the sanbox clients, fetch in Node) send no Origin; the sanbox clients send the JSON
 * content type on every such request. A leaf module: node:http types only, so that src/control,
 * src/link, src/cli and src/monitor can all import it.
 */
import type { IncomingMessage } from 'node:http';

/** The custom header that marks a request as no browser form (any non-browser client may send it). */
export const SANBOX_REQUEST_HEADER = 'X-Sanbox-Request';

/** Why a request was refused; each server answers it in its own error format. */
export interface BrowserRefusal {
  status: 403 | 415;
  code: 'forbidden-origin' | 'unsupported-media-type';
  message: string;
}

export interface BrowserSafetyOptions {
  /** Refuse a foreign Origin on GET and HEAD too (a read-only server with no Host check). */
  readsToo?: boolean;
}

/** Methods that change nothing on any sanbox server. */
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Checks a request against the browser rule (see above); undefined when it may go on.
 * Call it once the route and method are known, before anything is read or changed.
 */
export function checkBrowserSafety(req: IncomingMessage, allowedOrigins: readonly string[] = [], opts: BrowserSafetyOptions = {}): BrowserRefusal | undefined {
  const method = (req.method ?? 'GET').toUpperCase();
  const reading = READ_METHODS.has(method);
  const origin = header(req, 'origin');
  if (origin !== undefined && (!reading || (opts.readsToo && method !== 'OPTIONS'))) {
    const own = req.headers.host ? originKey(`http://${req.headers.host}`) : undefined;
    const key = originKey(origin);
    if (key !== own && !allowedOrigins.some((a) => originKey(a) === key)) {
      const allowed = [own, ...allowedOrigins].filter((x): x is string => !!x);
      return {
        status: 403,
        code: 'forbidden-origin',
        message: `requests from web pages of ${JSON.stringify(origin)} are refused (allowed origins: ${allowed.join(', ') || 'none'})`,
      };
    }
  }
  if (reading) return undefined;
  if (isJsonType(header(req, 'content-type')) || header(req, 'x-sanbox-request')?.trim() === '1') return undefined;
  const type = header(req, 'content-type');
  return {
    status: 415,
    code: 'unsupported-media-type',
    message:
      `a ${method} request must carry "Content-Type: application/json" (also without a body) or the header "${SANBOX_REQUEST_HEADER}: 1", ` +
      `which a web page cannot send cross-site; this one has ${type === undefined ? 'no Content-Type' : `Content-Type ${JSON.stringify(type)}`}`,
  };
}

/** `application/json` or `application/<anything>+json`, with any parameters (charset...). */
export function isJsonType(type: string | undefined): boolean {
  if (!type) return false;
  const media = type.split(';')[0]!.trim().toLowerCase();
  return media === 'application/json' || /^application\/[\w.!#$&^-]+\+json$/.test(media);
}

/** An origin as a browser serializes it (scheme://host[:port], default port dropped, lowercase); "null" and junk as given, lowercased. */
export function originKey(origin: string): string {
  const s = origin.trim();
  try {
    const u = new URL(s);
    if (u.protocol === 'http:' || u.protocol === 'https:') return u.origin;
  } catch {
    /* not a URL ("null"): compared as text below */
  }
  return s.toLowerCase();
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}
