// A link emulator in a process of its own (bench/link-emulator.mjs, bench:latency
// --emulator-process), so that its CPU time is its own and its event loop is not the client's:
//   node link-child.mjs DIST_DIR TARGET_PORT [SEED [POLL_MS]]
//   node link-child.mjs DIST_DIR OPTIONS_JSON     (the LinkEmulator's own options: routes, queueBytes, ...)
// The first form starts a LinkEmulator (DIST_DIR/link/emulator/emulator.js) with one route 'to-b'
// to 127.0.0.1:TARGET_PORT. It prints {"ready":true,"port":N,"ports":{ROUTE:N,...}} (port: the
// first route's), then answers one JSON line per request line on stdin:
//   {"id":1,"set":{"a-to-b":{...},"b-to-a":{...}}}   -> {"id":1,"ok":true} or {"id":1,"error":"..."}
//   {"id":2,"cpu":true}                              -> {"id":2,"cpuUs":N,"status":{...}}
// and exits when its parent's stdin closes (so it never outlives the benchmark).
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';

const [distDir, target, seed, pollMs] = process.argv.slice(2);
const { LinkEmulator } = await import(pathToFileURL(join(distDir, 'link/emulator/emulator.js')).href);
const emu = new LinkEmulator(
  target.startsWith('{')
    ? JSON.parse(target)
    : {
        name: 'bench',
        routes: [{ name: 'to-b', listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: Number(target) }, forward: 'a-to-b' }],
        ...(seed !== undefined ? { seed: Number(seed) } : {}),
        ...(pollMs !== undefined ? { pollMs: Number(pollMs) } : {}),
      },
);
await emu.start();

const reply = (o) => process.stdout.write(JSON.stringify(o) + '\n');
function handle(req) {
  if (req.set) {
    // An emulator that does not know a setting refuses it at the first direction (the row is n/a).
    for (const [d, s] of Object.entries(req.set)) emu.set(s, d);
    return { ok: true };
  }
  if (req.cpu) {
    const c = process.cpuUsage();
    const st = emu.status();
    return { cpuUs: c.user + c.system, status: { totals: st.totals, delayQueue: st.delayQueue ?? null } };
  }
  throw new Error(`unknown request ${JSON.stringify(req)}`);
}
createInterface({ input: process.stdin }).on('line', (line) => {
  const req = JSON.parse(line);
  try {
    reply({ id: req.id, ...handle(req) });
  } catch (e) {
    reply({ id: req.id, error: e.message });
  }
});
process.stdin.on('end', () => emu.stop().then(() => process.exit(0)));
const routes = emu.status().routes;
reply({ ready: true, port: routes[0].listen.port, ports: Object.fromEntries(routes.map((r) => [r.name, r.listen.port])) });
