import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileBackingStore } from '../../src/block/index.js';
import { NbdServer, type NbdExport, type NbdTls, type SessionLimits } from '../../src/nbd/index.js';

export interface Fixture {
  port: number;
  server: NbdServer;
  dir: string;
  exports: Map<string, NbdExport>;
  stop(): Promise<void>;
}

/** A real server on a real socket over real image files: `disk` (1 MiB), `ro` (read-only), `disk4k`. */
export async function startServer(limits?: Partial<SessionLimits>, opts: { tls?: NbdTls } = {}): Promise<Fixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sanbox-nbd-'));
  const exports = new Map<string, NbdExport>();
  for (const [name, size, blockSize, readOnly] of [
    ['disk', 1 << 20, 512, false],
    ['ro', 1 << 20, 512, true],
    ['disk4k', 1 << 20, 4096, false],
  ] as const) {
    const p = path.join(dir, `${name}.img`);
    await FileBackingStore.create(p, size);
    const device = await FileBackingStore.open(p, { blockSize, readOnly });
    exports.set(name, { name, description: `test ${name}`, device });
  }
  const server = new NbdServer({
    catalog: { lookup: (n) => exports.get(n === '' ? 'disk' : n), list: () => [...exports.values()] },
    limits,
    tls: opts.tls,
  });
  const { port } = await server.listen(0);
  return {
    port,
    server,
    dir,
    exports,
    async stop() {
      await server.close(1000);
      for (const e of exports.values()) await e.device.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
