/**
 * The socket server ([0044]-[0047]): the named local socket (mode 0600) that local prmd and
 * chkmon use, and an optional TCP listener for other hosts that requires the token. Each
 * connection reads one request per line and answers each in order; a request is served on its
 * own (the seed's service-request threads), so a slow WAIT or a bad client never holds another
 * connection. Malformed, oversized or unknown messages get an error reply and change nothing;
 * an oversized line also closes its connection.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { chmod, rm } from 'node:fs/promises';
import { timingSafeEqual } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { MAX_MESSAGE_BYTES, ProtocolError, RC, parseRequest, reply, type Reply, type Request } from './protocol.js';
import type { MonitorEvent, MonitorEvents } from './events.js';

export interface RequestHandler {
  (req: Request): Promise<Reply>;
}

export interface SocketServerOptions {
  socketPath: string;
  /** HOST:PORT of the TCP listener for other hosts (off when undefined) */
  listen?: { host: string; port: number };
  /** required on the TCP listener (a listener without one is refused at start) */
  token?: string;
  handle: RequestHandler;
  events: MonitorEvents;
}

export class SocketServer {
  private local: Server | undefined;
  private tcp: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly opts: SocketServerOptions) {
    if (opts.listen && !(opts.token && opts.token.length >= 16)) throw new Error('a TCP listener needs a token of 16 characters or more');
  }

  /** Listens; answers the TCP listener's actual port (0 asks for any). */
  async start(): Promise<{ tcpPort?: number }> {
    await rm(this.opts.socketPath, { force: true }); // only the lock holder gets here: a leftover socket file is stale
    this.local = createServer((s) => this.serve(s, false));
    const old = process.umask(0o177);
    try {
      await listen(this.local, (cb) => this.local!.listen(this.opts.socketPath, cb));
    } finally {
      process.umask(old);
    }
    await chmod(this.opts.socketPath, 0o600);
    if (!this.opts.listen) return {};
    const { host, port } = this.opts.listen;
    this.tcp = createServer((s) => this.serve(s, true));
    await listen(this.tcp, (cb) => this.tcp!.listen(port, host, cb));
    return { tcpPort: (this.tcp.address() as { port: number }).port };
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all([this.local, this.tcp].map((srv) => (srv ? new Promise<void>((r) => srv.close(() => r())) : undefined)));
    await rm(this.opts.socketPath, { force: true });
  }

  private serve(socket: Socket, remote: boolean): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy()); // a client that vanished: nothing to answer
    socket.setNoDelay(true);
    let buf = '';
    let chain = Promise.resolve();
    const decoder = new StringDecoder('utf8'); // a character split across two chunks stays whole
    socket.on('data', (d: Buffer) => {
      buf += decoder.write(d);
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        chain = chain.then(() => this.answer(socket, line, remote)).catch((e: unknown) => send(socket, reply(RC.INTERNAL, { message: `internal error: ${(e as Error).message}` })));
      }
      if (Buffer.byteLength(buf) > MAX_MESSAGE_BYTES) {
        buf = '';
        send(socket, reply(RC.INTERNAL, { message: `message over ${MAX_MESSAGE_BYTES} bytes refused` }));
        socket.end();
      }
    });
  }

  private async answer(socket: Socket, line: string, remote: boolean): Promise<void> {
    if (socket.destroyed) return;
    if (Buffer.byteLength(line) > MAX_MESSAGE_BYTES) {
      // a whole line over the limit (it came with its newline): refused and closed, like one that never ends
      send(socket, reply(RC.INTERNAL, { message: `message over ${MAX_MESSAGE_BYTES} bytes refused` }));
      socket.end();
      return;
    }
    let req: Request;
    try {
      req = parseRequest(line);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      return send(socket, reply(RC.INTERNAL, { message: e.message }));
    }
    if (remote && !this.tokenOk(req.token)) {
      send(socket, reply(RC.INTERNAL, { message: req.token === undefined ? 'refused: this listener requires a token' : 'refused: wrong token' }));
      socket.end();
      return;
    }
    if (req.msgType === 'EVENTS') return this.stream(socket, req.since);
    let r: Reply;
    try {
      r = await this.opts.handle(req);
    } catch (e) {
      r = reply(RC.INTERNAL, { message: `internal error: ${(e as Error).message}` });
    }
    send(socket, r);
  }

  /**
   * EVENTS: the connection carries the event stream until the client closes it: the kept events
   * after `since`, a line `{"replayed":true,"lastSeq":N}`, then every new event.
   */
  private stream(socket: Socket, since: number | undefined): void {
    const write = (e: MonitorEvent) => socket.write(JSON.stringify(e) + '\n');
    for (const e of this.opts.events.since(since ?? this.opts.events.lastSeq)) write(e);
    socket.write(JSON.stringify({ replayed: true, lastSeq: this.opts.events.lastSeq }) + '\n');
    const stop = this.opts.events.subscribe(write);
    socket.on('close', stop);
  }

  private tokenOk(given: string | undefined): boolean {
    const want = Buffer.from(this.opts.token ?? '');
    const got = Buffer.from(given ?? '');
    return want.length > 0 && got.length === want.length && timingSafeEqual(got, want);
  }
}

function send(socket: Socket, r: Reply): void {
  if (!socket.destroyed) socket.write(JSON.stringify(r) + '\n');
}

function listen(server: Server, go: (cb: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    go(() => {
      server.off('error', reject);
      resolve();
    });
  });
}
