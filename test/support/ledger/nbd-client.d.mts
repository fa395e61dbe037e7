// Types of ./nbd-client.mjs.
export const NBD_ERRNO: Record<number, string>;

export class ConnectionLost extends Error {
  readonly code: 'ECONNLOST';
  notSent?: boolean;
}
export class NbdReplyError extends Error {
  readonly nbdError: number;
  readonly errno: string;
}
export function parseNbdUri(uri: string): { host: string; port: number; name: string; uri: string };

export class NbdClient {
  static connect(uri: string, opts?: { timeoutMs?: number }): Promise<NbdClient>;
  readonly uri: string;
  readonly size: number;
  readonly flags: number;
  readonly closed: boolean;
  readonly closeReason: string;
  readonly inflight: number;
  read(offset: number, length: number): Promise<Buffer>;
  write(offset: number, data: Buffer, opts?: { fua?: boolean }): Promise<void>;
  flush(): Promise<void>;
  close(timeoutMs?: number): Promise<void>;
  destroy(reason?: string): void;
}
