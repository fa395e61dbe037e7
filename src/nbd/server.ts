import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { adoptWithReadTarget } from './adopt.js';
import { BufferPool } from './buffer-pool.js';
import type { ExportCatalog } from './export.js';
import { DEFAULT_NBD_MEMORY, MemoryBudget, type NbdMemoryStats } from './memory-budget.js';
import { DEFAULT_LIMITS, type SessionLimits } from './admission.js';
import { Session } from './session.js';
import type { NbdTls } from './tls.js';

export interface NbdServerOptions {
  catalog: ExportCatalog;
  limits?: Partial<SessionLimits>;
  /**
   * Bytes of payload in flight and replies queued that every connection together may hold
   * (see memory-budget.ts); default DEFAULT_NBD_MEMORY (256 MiB).
   */
  memoryBudget?: number;
  /** TLS credentials and mode (see tls.ts); absent: TLS off, STARTTLS refused. */
  tls?: NbdTls;
}

export interface SessionInfo {
  id: number;
  remote: string;
  export: string | null;
  requests: number;
  errors: number;
  bytesRead: number;
  bytesWritten: number;
  inflight: number;
  inflightBytes: number;
  queuedReplyBytes: number;
  bufferedInputBytes: number;
  /** Bytes this connection is charged to the server's memory budget. */
  budgetBytes: number;
}

/** Sessions get this long to finish their requests and flush when an export or the server closes. */
const CLOSE_GRACE_MS = 5000;
/** While closing, how often the server checks whether the half-closed sessions are gone. */
const SESSION_POLL_MS = 10;

/**
 * The NBD host port: accepts connections and runs one Session per connection. Sessions share
 * nothing but the catalog (and through it the devices), so one bad connection cannot disturb
 * another. Events: 'session-open' {id, remote, export} when a session enters transmission,
 * 'session-close' {id, remote, export, reason} when such a session ends.
 */
export class NbdServer extends EventEmitter {
  private readonly server: net.Server;
  private readonly sessions = new Set<Session>();
  private readonly limits: SessionLimits;
  private nextId = 1;
  private closing = false;
  /** Connections read into this one buffer (see adopt.ts) unless a payload takes the read. */
  private readonly readBuffer = Buffer.allocUnsafeSlow(128 * 1024);
  /** Large write payloads are assembled in reused buffers (see buffer-pool.ts). */
  private readonly pool = new BufferPool(64 * 1024 * 1024);
  /** Every connection's payload in flight and queued replies together (memory-budget.ts). */
  private readonly budget: MemoryBudget;
  /** Ended sessions whose requests still hold budget (memoryStats drops them once they hold none). */
  private readonly draining = new Set<Session>();

  constructor(private readonly opts: NbdServerOptions) {
    super();
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.budget = new MemoryBudget(opts.memoryBudget ?? DEFAULT_NBD_MEMORY);
    this.server = net.createServer({ noDelay: true, allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket));
  }

  listen(port: number, host = '127.0.0.1'): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen({ port, host, backlog: 511 }, () => {
        this.server.off('error', onError);
        const a = this.server.address() as net.AddressInfo;
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  private accept(accepted: net.Socket): void {
    if (this.closing) {
      accepted.destroy();
      return;
    }
    let session: Session | undefined;
    const adopted = adoptWithReadTarget(accepted, {
      next: () => session?.nextReadBuffer(this.readBuffer) ?? this.readBuffer,
      onRead: (n, buf) => session!.onRead(n, buf),
    });
    const socket = adopted ?? accepted;
    session = new Session(
      this.nextId++,
      socket,
      {
        catalog: this.opts.catalog,
        pool: this.pool,
        budget: this.budget,
        externalReads: adopted !== null,
        shuttingDown: () => this.closing,
        tls: this.opts.tls,
        onTransmission: (s) => this.emit('session-open', { id: s.id, remote: s.remote, export: s.exportName }),
        onClose: (s, reason) => {
          this.sessions.delete(s);
          // Its requests still running hold budget until they settle: kept for the books (and
          // dropped here or by memoryStats once settled, so the set stays small).
          for (const d of this.draining) if (d.load.budgetBytes === 0) this.draining.delete(d);
          if (s.load.budgetBytes > 0) this.draining.add(s);
          // Probes and listings never opened a session; only sessions that did are closed.
          if (s.exportName !== null) this.emit('session-close', { id: s.id, remote: s.remote, export: s.exportName, reason });
        },
      },
      this.limits,
    );
    if (!adopted) accepted.resume(); // paused on connect; the fallback reads with 'data' events
    this.sessions.add(session);
  }

  sessionCount(exportName?: string): number {
    let n = 0;
    for (const s of this.sessions) if (exportName === undefined || s.exportName === exportName) n++;
    return n;
  }

  sessionInfo(): SessionInfo[] {
    return [...this.sessions].map((s) => ({ id: s.id, remote: s.remote, export: s.exportName, ...s.stats, ...s.load }));
  }

  /**
   * The memory budget's figures. Throws if its books do not balance (what the connections hold,
   * with the ended ones whose requests are still settling, must be what the budget counts as
   * used, and never negative): a bug, never a client's doing.
   */
  memoryStats(): NbdMemoryStats {
    let held = 0;
    let holding = 0;
    for (const s of this.draining) if (s.load.budgetBytes === 0) this.draining.delete(s);
    for (const set of [this.sessions, this.draining]) {
      for (const s of set) {
        const b = s.load.budgetBytes;
        if (b < 0) throw new Error(`NBD memory budget out of balance: session ${s.id} holds ${b}`);
        held += b;
        if (b > 0) holding++;
      }
    }
    const st = this.budget.stats();
    if (held !== st.used || holding !== st.holding) {
      throw new Error(`NBD memory budget out of balance: sessions hold ${held} (${holding} of them), budget counts ${st.used} (${st.holding})`);
    }
    return st;
  }

  /** Ends every session on one export (its LUN is going away), gracefully. */
  async disconnectExport(name: string, graceMs = CLOSE_GRACE_MS): Promise<void> {
    await Promise.all([...this.sessions].filter((s) => s.exportName === name).map((s) => s.close(graceMs)));
  }

  /** Stop accepting, let in-flight requests finish (or fail with ESHUTDOWN), flush, close. */
  async close(graceMs = CLOSE_GRACE_MS): Promise<void> {
    this.closing = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.sessions].map((s) => s.close(graceMs)));
    // Sockets half-closed by us may wait for the client's FIN; do not let them hold shutdown.
    const deadline = Date.now() + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, SESSION_POLL_MS));
    for (const s of this.sessions) s.abort('server shut down');
    await stopped;
  }
}
