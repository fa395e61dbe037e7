import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { LinkConnection, type ConnectionTimers, type LinkHandlers, type OfferedMirror, type SessionInfo } from './connection.js';
import { RemoteLinkError } from './errors.js';
import type { FrameLimits } from './frame.js';
import type { AckResult, LinkOp, LinkOps, MirrorDbArgs, MirrorDbResult, ReadRegionsArgs, RegionChecksumsResult, WriteArgs } from './messages.js';

export interface ReconnectPolicy {
  /** first delay (ms); default 100 */
  initialMs?: number;
  /** cap (ms); default 5000 */
  maxMs?: number;
  /** growth per failed attempt; default 2 */
  factor?: number;
}

export interface RemoteLinkClientOptions {
  /** this array's name */
  array: string;
  /** the peer array this link must reach */
  peer: string;
  secret: string | Buffer;
  host: string;
  port: number;
  /** the mirrors this (primary) array replicates over the link, with their primary image sizes */
  mirrors: OfferedMirror[];
  /** handlers for requests the peer sends this way (optional) */
  handlers?: LinkHandlers;
  limits?: Partial<FrameLimits>;
  timers?: Partial<ConnectionTimers>;
  /** reconnect with exponential backoff after a lost connection (never after a refusal) */
  reconnect?: ReconnectPolicy | false;
  connectTimeoutMs?: number;
  /** protocol version spoken (tests); default LINK_VERSION */
  version?: number;
}

/** Codes that mean "fix the configuration": the client does not retry after them. */
export const TERMINAL_CODES: ReadonlySet<string> = new Set(['auth-failed', 'wrong-peer', 'wrong-mirror', 'size-mismatch', 'version-mismatch']);

/** A TCP connect to the peer (or its link emulator) fails after this long unless connectTimeoutMs says otherwise. */
const CONNECT_TIMEOUT_MS = 5000;
/** Reconnect backoff defaults: the first retry after this long, doubling up to RECONNECT_MAX_MS. */
const RECONNECT_INITIAL_MS = 100;
const RECONNECT_MAX_MS = 5000;

/**
 * The initiating side of a remote link. `connect()` resolves once authenticated (rejects with
 * the RemoteLinkError of a refusal). Requests while disconnected reject at once with 'not-connected'
 * (the mirror driver fractures the secondary instead of waiting).
 *
 * Events: 'connected' (SessionInfo); 'disconnected' (RemoteLinkError | null); 'refused' (RemoteLinkError,
 * terminal: no reconnect); 'reconnecting' ({attempt, delayMs}).
 */
export class RemoteLinkClient extends EventEmitter {
  private conn: LinkConnection | null = null;
  private stopped = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;

  private readonly opts: RemoteLinkClientOptions;

  constructor(opts: RemoteLinkClientOptions) {
    super();
    this.opts = { ...opts };
  }

  get connected(): boolean {
    return this.conn?.isOpen ?? false;
  }
  get session(): SessionInfo | null {
    return this.conn?.isOpen ? this.conn.session : null;
  }

  /** One connection attempt (and, with `reconnect`, the start of the retry loop on later losses). */
  async connect(): Promise<SessionInfo> {
    this.stopped = false;
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection({ host: this.opts.host, port: this.opts.port });
      const t = setTimeout(() => {
        s.destroy();
        reject(new RemoteLinkError('timeout', `connect to ${this.opts.peer} at ${this.opts.host}:${this.opts.port} timed out`));
      }, this.opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
      s.once('connect', () => {
        clearTimeout(t);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(new RemoteLinkError('not-connected', `connect to ${this.opts.peer} at ${this.opts.host}:${this.opts.port}: ${e.message}`));
      });
    });
    const c = new LinkConnection(socket, { localArray: this.opts.array, limits: this.opts.limits, timers: this.opts.timers, handlers: this.opts.handlers, version: this.opts.version });
    try {
      const session = await c.handshakeAsClient({ secret: this.opts.secret, expectPeer: this.opts.peer, mirrors: this.opts.mirrors });
      this.conn = c;
      this.attempt = 0;
      c.once('close', (e: RemoteLinkError | null) => {
        if (this.conn === c) this.conn = null;
        this.emit('disconnected', e);
        if (!this.stopped) this.scheduleReconnect();
      });
      this.emit('connected', session);
      return session;
    } catch (e) {
      const le = e as RemoteLinkError;
      if (TERMINAL_CODES.has(le.code)) this.emit('refused', le);
      throw le;
    }
  }

  /**
   * Connects in the background: like connect(), but a failed attempt (other than a refusal) is
   * retried with the `reconnect` backoff (default policy when none is set). Watch 'connected'.
   */
  start(): void {
    this.stopped = false;
    if (!this.opts.reconnect) this.opts.reconnect = {};
    this.connect().catch((e: RemoteLinkError) => {
      if (!TERMINAL_CODES.has(e.code)) this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    const r = this.opts.reconnect;
    if (!r || this.stopped || this.retryTimer) return;
    const initial = r.initialMs ?? RECONNECT_INITIAL_MS;
    const delayMs = Math.min(r.maxMs ?? RECONNECT_MAX_MS, initial * Math.pow(r.factor ?? 2, this.attempt));
    this.attempt++;
    this.emit('reconnecting', { attempt: this.attempt, delayMs });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.stopped) return;
      this.connect().catch((e: RemoteLinkError) => {
        if (!TERMINAL_CODES.has(e.code)) this.scheduleReconnect();
      });
    }, delayMs);
    this.retryTimer.unref();
  }

  request<K extends LinkOp>(op: K, args: LinkOps[K]['args'], bin?: Buffer, opts?: { timeoutMs?: number }): Promise<{ result: LinkOps[K]['result']; bin: Buffer }> {
    if (!this.conn?.isOpen) return Promise.reject(new RemoteLinkError('not-connected', `remote link ${this.opts.array} -> ${this.opts.peer} is not connected`));
    return this.conn.request(op, args, bin, opts);
  }

  async write(args: WriteArgs, data: Buffer, opts?: { timeoutMs?: number }): Promise<AckResult> {
    return (await this.request('write', args, data, opts)).result;
  }
  async readRegions(args: ReadRegionsArgs, opts?: { timeoutMs?: number }): Promise<RegionChecksumsResult> {
    return (await this.request('read-regions', args, undefined, opts)).result;
  }
  async pushMirrorDb(args: MirrorDbArgs, opts?: { timeoutMs?: number }): Promise<MirrorDbResult> {
    return (await this.request('mirror-db', args, undefined, opts)).result;
  }
  /** Round trip in ms. */
  async ping(opts?: { timeoutMs?: number }): Promise<number> {
    const t = performance.now();
    await this.request('ping', { t: Date.now() }, undefined, opts);
    return performance.now() - t;
  }

  /** Clean close (GOODBYE); stops reconnecting. */
  close(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.conn?.close();
    this.conn = null;
  }

  /** Drops the connection abruptly (tests): with `reconnect`, the client reconnects. */
  dropConnection(): void {
    this.conn?.destroy();
  }
}
