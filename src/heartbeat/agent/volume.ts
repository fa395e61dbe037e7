/**
 * A heartbeat volume as a host sees it: an NBD connection to one image of a heartbeat mirror,
 * kept open between cycles and reopened (on the next URI: a two-SP array serves a LUN on its
 * owner SP's port) after any failure. Writes go with FUA, so the block is on the array's medium
 * (and, the mirror being synchronous, on the secondary's) when the write completes; reads go to
 * the array every time (this client has no cache). Every operation is bounded by a deadline: a
 * hung array is a failed read, never a hung agent.
 */
import { NbdClient } from '../../check/nbd-client/index.js';
import type { VolumeEndpoint } from './config.js';

export class HeartbeatVolume {
  private client: NbdClient | null = null;
  private opening: Promise<NbdClient> | null = null;
  private next = 0;
  /** the last failure, for the status table's reason */
  lastError = '';

  constructor(
    readonly endpoint: VolumeEndpoint,
    private readonly deadlineMs: number,
  ) {
    if (endpoint.uris.length === 0) throw new Error(`heartbeat volume ${endpoint.mirror} has no NBD URI`);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    await this.run('write', (c) => c.write(offset, data, { fua: true }));
  }

  async read(offset: number, length: number): Promise<Buffer> {
    return this.run('read', (c) => c.read(offset, length));
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.close(500).catch(() => undefined); // closing a dead connection has nothing left to report
  }

  private async run<T>(what: string, op: (c: NbdClient) => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} of ${this.endpoint.mirror} took more than ${this.deadlineMs} ms`)), this.deadlineMs);
    });
    try {
      const result = await Promise.race([this.connection().then(op), deadline]);
      this.lastError = '';
      return result;
    } catch (e) {
      this.lastError = (e as Error).message;
      await this.drop();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private connection(): Promise<NbdClient> {
    if (this.client && !this.client.closed) return Promise.resolve(this.client);
    this.opening ??= (async () => {
      const uri = this.endpoint.uris[this.next % this.endpoint.uris.length]!;
      try {
        this.client = await NbdClient.connect(uri, { timeoutMs: this.deadlineMs });
        return this.client;
      } catch (e) {
        this.next++; // the other SP's port next time
        throw e;
      } finally {
        this.opening = null;
      }
    })();
    return this.opening;
  }

  private async drop(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c && !c.closed) {
      this.next++;
      await c.close(200).catch(() => undefined); // the connection failed already: its close adds nothing
    }
  }
}
