/**
 * What the array shows the NBD server: its export catalog (exports named by LUN name) and the
 * session control the server hands back (session counts, forced disconnects, session events).
 */
import type { BlockDevice } from '../block/index.js';

/** What the array needs from the NBD server (NbdServer satisfies it). */
export interface SessionControl {
  sessionCount(exportName?: string): number;
  disconnectExport(name: string): Promise<void>;
  on?(event: string, listener: (...args: any[]) => void): unknown;
  off?(event: string, listener: (...args: any[]) => void): unknown;
}

/** Structurally the NBD server's `NbdExport` / `ExportCatalog`. */
export interface ArrayExport {
  name: string;
  description?: string;
  device: BlockDevice;
  readOnly?: boolean;
}
export interface ArrayCatalog {
  lookup(name: string): ArrayExport | undefined;
  list(): ArrayExport[];
}

/** The attached NBD server: its session events go to `record` until detached. */
export class SessionAttachment {
  private control: SessionControl | undefined;
  private listeners: Array<[string, (...args: any[]) => void]> = [];

  constructor(private readonly record: (type: string, details: Record<string, unknown>) => void) {}

  get current(): SessionControl | undefined {
    return this.control;
  }

  attach(sessions: SessionControl): void {
    this.detach();
    this.control = sessions;
    if (!sessions.on) return;
    const open = (s: { id?: unknown; remote?: unknown; export?: unknown }) => this.record('session.opened', { session: s?.id, remote: s?.remote, export: s?.export });
    const close = (s: { id?: unknown; export?: unknown; reason?: unknown }) => this.record('session.closed', { session: s?.id, export: s?.export, reason: s?.reason });
    sessions.on('session-open', open);
    sessions.on('session-close', close);
    this.listeners = [
      ['session-open', open],
      ['session-close', close],
    ];
  }

  detach(): void {
    if (this.control?.off) for (const [ev, fn] of this.listeners) this.control.off(ev, fn);
    this.listeners = [];
    this.control = undefined;
  }
}
