/**
 * The supervisor's control API: a small HTTP server on 127.0.0.1 (any free port) with a random
 * bearer token, both recorded in the lab state file (mode 0600, so only the lab's user can
 * drive it). `sanbox fault array-crash|array-restart|site-fail|site-restore` are its clients.
 *
 *   GET  /v1/status                   the lab state (arrays with their supervision state, sites)
 *   GET  /v1/events?since=SEQ         the supervisor's events after SEQ (the last 1000)
 *   POST /v1/arrays/NAME/crash        SIGKILL of every process of the array
 *   POST /v1/arrays/NAME/restart      start it again from its directory; answers once ready
 *   POST /v1/sites/NAME/fail          crash the site's arrays, cut its links
 *   POST /v1/sites/NAME/restore       restart them, restore the links
 *
 * Errors: `{ error: { code, message, exitCode } }` with 400 (usage: unknown array or site),
 * 401 (token), 403 (forbidden-origin), 404 (no such route), 409 (refused: not running, already
 * running, stopping), 415 (unsupported-media-type), 500 (a restart that failed).
 *
 * Besides the token, the browser rule of src/http-guard holds: a POST needs
 * `Content-Type: application/json` (also without a body) or `X-Sanbox-Request: 1`, and one from
 * a foreign `Origin` is refused unless in `allowedOrigins`.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkBrowserSafety } from '../../http-guard/index.js';
import { CliError, EXIT } from '../common.js';
import type { SupervisorEvents } from './events.js';
import type { LabSupervisor } from './lab-supervisor.js';

export class ControlServer {
  readonly token = randomBytes(24).toString('hex');
  private server?: Server;

  constructor(
    private readonly sup: LabSupervisor,
    private readonly events: SupervisorEvents,
    /** allowedOrigins: web origins whose pages may use the API besides its own; default none. */
    private readonly opts: { allowedOrigins?: string[] } = {},
  ) {}

  async listen(): Promise<{ url: string; token: string }> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, token: this.token };
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private authorized(req: IncomingMessage): boolean {
    const got = Buffer.from(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '');
    const want = Buffer.from(this.token);
    return got.length === want.length && timingSafeEqual(got, want);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body) + '\n');
    };
    const fail = (status: number, code: string, message: string, exitCode: number) => send(status, { error: { code, message, exitCode } });
    try {
      req.resume(); // bodies carry nothing: every argument is in the path
      if (!this.authorized(req)) return fail(401, 'unauthorized', 'missing or wrong bearer token (see the lab state file)', EXIT.ERROR);
      const url = new URL(req.url ?? '/', 'http://supervisor');
      const m = /^\/v1\/(arrays|sites)\/([^/]+)\/(crash|restart|fail|restore)$/.exec(url.pathname);
      if (req.method === 'GET' && url.pathname === '/v1/status') return send(200, this.sup.state);
      if (req.method === 'GET' && url.pathname === '/v1/events') {
        const since = Number(url.searchParams.get('since') ?? '0');
        if (!Number.isSafeInteger(since) || since < 0) return fail(400, 'usage', 'since must be an event sequence number >= 0', EXIT.USAGE);
        return send(200, { events: this.events.since(since) });
      }
      if (req.method !== 'POST' || !m) return fail(404, 'not-found', `no route ${req.method} ${url.pathname}`, EXIT.USAGE);
      // Before anything changes: what a web page could send is refused.
      const refused = checkBrowserSafety(req, this.opts.allowedOrigins);
      if (refused) return fail(refused.status, refused.code, refused.message, EXIT.USAGE);
      const [, kind, rawName, op] = m as unknown as [string, string, string, string];
      const name = decodeURIComponent(rawName);
      if (kind === 'arrays' && op === 'crash') return send(200, await this.sup.crash(name));
      if (kind === 'arrays' && op === 'restart') return send(200, await this.sup.restart(name));
      if (kind === 'sites' && op === 'fail') return send(200, await this.sup.siteFail(name));
      if (kind === 'sites' && op === 'restore') return send(200, await this.sup.siteRestore(name));
      return fail(404, 'not-found', `no route ${req.method} ${url.pathname}`, EXIT.USAGE);
    } catch (e) {
      const err = e instanceof CliError ? e : new CliError(EXIT.ERROR, 'error', (e as Error).message);
      const status = err.exitCode === EXIT.USAGE ? 400 : err.code === 'not-found' ? 404 : err.code === 'conflict' || err.code === 'stopping' ? 409 : 500;
      if (!res.headersSent) fail(status, err.code, err.message, err.exitCode);
    }
  }
}
