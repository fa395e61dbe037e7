/**
 * A client of the monitor daemon's socket: one request, one reply (or the EVENTS stream). A
 * daemon that is not there is RC.NOT_RUNNING (3), never an exception: prmd and chkmon return it.
 * `ensureDaemon` is prmd's start ([0027]-[0028]): when no daemon answers, start one and wait
 * for it; starters racing each other are sorted out by the daemon's lock (lock.ts).
 */
import { connect, type Socket } from 'node:net';
import { MAX_MESSAGE_BYTES, RC, reply, type Reply, type Request } from './protocol.js';
import type { MonitorEvent } from './events.js';

export type MonitorAddress = { socketPath: string } | { host: string; port: number; token: string };

const CONNECT_TIMEOUT_MS = 5000;

function open(addr: MonitorAddress): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = 'socketPath' in addr ? connect(addr.socketPath) : connect(addr.port, addr.host);
    const t = setTimeout(() => s.destroy(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
    s.once('connect', () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** Sends one request; the daemon's reply, or NOT_RUNNING when nothing listens. `timeoutMs` bounds the wait for the reply. */
export async function request(addr: MonitorAddress, req: Request, timeoutMs = 30_000): Promise<Reply> {
  let s: Socket;
  try {
    s = await open(addr);
  } catch (e) {
    return reply(RC.NOT_RUNNING, { message: `the monitor daemon is not running (${where(addr)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` });
  }
  const line = JSON.stringify('token' in addr && addr.token ? { ...req, token: addr.token } : req) + '\n';
  if (Buffer.byteLength(line) > MAX_MESSAGE_BYTES) {
    s.destroy();
    return reply(RC.INTERNAL, { message: `the request is over ${MAX_MESSAGE_BYTES} bytes` });
  }
  return new Promise((resolve) => {
    let buf = '';
    const finish = (r: Reply) => {
      clearTimeout(t);
      s.destroy();
      resolve(r);
    };
    const t = setTimeout(() => finish(reply(RC.INTERNAL, { message: `no reply from the monitor within ${timeoutMs / 1000} s` })), timeoutMs);
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        finish(JSON.parse(buf.slice(0, nl)) as Reply);
      } catch (e) {
        finish(reply(RC.INTERNAL, { message: `bad reply from the monitor: ${(e as Error).message}` }));
      }
    });
    s.on('error', (e) => finish(reply(RC.INTERNAL, { message: `connection to the monitor failed: ${e.message}` })));
    s.on('close', () => finish(reply(RC.INTERNAL, { message: 'the monitor closed the connection without a reply' })));
    s.write(line);
  });
}

/** Follows the monitor's events (replay after `since`); resolves when the stream ends, or after the replay when `replayOnly`. */
export async function followEvents(addr: MonitorAddress, since: number | undefined, onEvent: (e: MonitorEvent) => void, signal?: AbortSignal, replayOnly = false): Promise<void> {
  const s = await open(addr);
  signal?.addEventListener('abort', () => s.destroy());
  const req = { msgType: 'EVENTS', ...(since !== undefined ? { since } : {}), ...('token' in addr && addr.token ? { token: addr.token } : {}) };
  s.write(JSON.stringify(req) + '\n');
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const e = JSON.parse(buf.slice(0, nl)) as MonitorEvent & Partial<Reply> & { replayed?: boolean };
        buf = buf.slice(nl + 1);
        if (e.code !== undefined && e.ok === false) {
          s.destroy();
          return reject(new Error(e.message));
        }
        if (e.replayed) {
          if (replayOnly) s.destroy();
          continue;
        }
        onEvent(e);
      }
    });
    s.on('close', () => resolve());
    s.on('error', (err) => reject(err));
  });
}

function where(addr: MonitorAddress): string {
  return 'socketPath' in addr ? addr.socketPath : `${addr.host}:${addr.port}`;
}

/** How long prmd waits for a daemon it started to answer. */
const START_WAIT_MS = 15_000;

/**
 * Makes sure a daemon answers at `socketPath`: if none does, `spawnDaemon()` starts one
 * (detached) and this waits until one answers GETPID. Answers the daemon's pid.
 */
export async function ensureDaemon(socketPath: string, spawnDaemon: () => void): Promise<Reply> {
  const first = await request({ socketPath }, { msgType: 'GETPID' });
  if (first.code !== RC.NOT_RUNNING) return first;
  spawnDaemon();
  const end = Date.now() + START_WAIT_MS;
  for (;;) {
    await new Promise((r) => setTimeout(r, 50));
    const r = await request({ socketPath }, { msgType: 'GETPID' });
    if (r.code !== RC.NOT_RUNNING || Date.now() > end) return r;
  }
}
