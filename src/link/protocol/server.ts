import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { LinkConnection, type ConnectionTimers, type LinkHandlers, type SessionInfo } from './connection.js';
import type { RemoteLinkError } from './errors.js';
import type { FrameLimits } from './frame.js';

export interface RemoteLinkServerOptions {
  /** this array's name */
  array: string;
  /** the arrays allowed to connect, each with the shared secret of its link (from the lab file) */
  peers: Array<{ array: string; secret: string | Buffer }>;
  /** the local secondary image of a mirror offered by a peer (undefined: not a mirror of this array) */
  mirrorFor: (mirrorId: string, peerArray: string) => { secondarySize: number } | undefined;
  handlers: LinkHandlers;
  limits?: Partial<FrameLimits>;
  timers?: Partial<ConnectionTimers>;
  /** protocol version spoken (tests); default LINK_VERSION */
  version?: number;
}

/**
 * The receiving array's listener. Every connection is authenticated (RemoteLinkServerOptions.peers)
 * and its offered mirrors checked (mirrorFor) before any handler runs.
 *
 * Events: 'session' (SessionInfo, LinkConnection) when a peer is accepted; 'refused' ({remote,
 * error: RemoteLinkError}) when a handshake fails (the peer got the same code), and when an open
 * session ends because a frame failed its MAC check (code 'bad-mac': the frame was not acted on);
 * 'session-closed' (SessionInfo, RemoteLinkError | null).
 */
export class RemoteLinkServer extends EventEmitter {
  private readonly server: net.Server;
  private readonly conns = new Set<LinkConnection>();

  constructor(private readonly opts: RemoteLinkServerOptions) {
    super();
    this.server = net.createServer((s) => this.accept(s));
  }

  /** Listens on host:port (port 0: any; see `port`). Default host 127.0.0.1. */
  listen(port = 0, host = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Open (authenticated) sessions. */
  get sessions(): SessionInfo[] {
    return [...this.conns].flatMap((c) => (c.isOpen && c.session ? [c.session] : []));
  }

  private accept(s: net.Socket): void {
    const c = new LinkConnection(s, { localArray: this.opts.array, limits: this.opts.limits, timers: this.opts.timers, handlers: this.opts.handlers, version: this.opts.version });
    this.conns.add(c);
    const remote = `${s.remoteAddress}:${s.remotePort}`;
    c.once('close', (e: RemoteLinkError | null) => {
      this.conns.delete(c);
      if (c.session && e?.code === 'bad-mac') this.emit('refused', { remote, error: e });
      if (c.session) this.emit('session-closed', c.session, e);
    });
    c.handshakeAsServer({
      secretFor: (a) => this.opts.peers.find((p) => p.array === a)?.secret,
      mirrorFor: this.opts.mirrorFor,
    }).then(
      (session) => this.emit('session', session, c),
      (error: RemoteLinkError) => this.emit('refused', { remote, error }),
    );
  }

  /** Closes every session cleanly (GOODBYE) and stops listening. */
  async close(): Promise<void> {
    for (const c of this.conns) c.close();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
