// A real NBD server in its own process (compiled dist/), for tests that measure its memory:
// one 64 MiB LUN `disk` in a sparse image file. argv[2]: the memory budget in bytes (optional).
// IPC: sends {port} once listening; answers 'stats' with {rss, hwm, memory} (memory: the
// server's budget figures, null if the server has none) and 'close' by shutting down.
// SANBOX_TEST_DIST=DIR runs another build's server (e.g. one from before a change).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = process.env.SANBOX_TEST_DIST ? pathToFileURL(path.resolve(process.env.SANBOX_TEST_DIST) + '/').href : new URL('../../dist/', import.meta.url).href;
const { FileBackingStore } = await import(new URL('block/index.js', dist).href);
const { NbdServer } = await import(new URL('nbd/index.js', dist).href);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sanbox-nbd-mem-'));
const image = path.join(dir, 'disk.img');
await FileBackingStore.create(image, 64 << 20);
const device = await FileBackingStore.open(image, { blockSize: 512 });
const exp = { name: 'disk', description: 'memory test', device };
const budget = process.argv[2] ? Number(process.argv[2]) : undefined;
const server = new NbdServer({ catalog: { lookup: () => exp, list: () => [exp] }, ...(budget ? { memoryBudget: budget } : {}) });
const { port } = await server.listen(0);

function status() {
  const text = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

process.on('message', async (m) => {
  if (m === 'stats') {
    let memory = null;
    let error = null;
    try {
      memory = typeof server.memoryStats === 'function' ? server.memoryStats() : null;
    } catch (e) {
      error = e.message;
    }
    process.send({ ...status(), memory, error, sessions: server.sessionInfo().length });
  } else if (m === 'close') {
    await server.close(500);
    await device.close();
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  }
});
process.send({ port });
