// An array as its own process (SIGKILL-able like a crashing array):
//   node array-child.mjs CONFIG.json [SETUP.json]
// SETUP (optional): { mirrors: [{ name, lun, to: { array, lun } }], groups: [{ name, members, attributes }] }
// creates what is missing once the array is up (mirrors as already synchronized secondaries).
// Prints one JSON line {nbdPort, apiUrl} when ready.
import { readFileSync } from 'node:fs';
import { startArray } from '../../dist/control/service.js';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const setup = process.argv[3] ? JSON.parse(readFileSync(process.argv[3], 'utf8')) : null;
const running = await startArray(cfg);
if (setup) {
  const node = running.mirrors;
  for (const m of setup.mirrors ?? []) {
    if (node.list().some((v) => v.record.name === m.name)) continue;
    await node.create({ lun: m.lun, name: m.name });
    await node.addSecondary(m.name, { array: m.to.array, lun: m.to.lun, synchronized: true });
  }
  const deadline = Date.now() + 10_000;
  while (!node.list().every((v) => v.images.every((i) => i.link === 'local' || i.link === 'connected')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const g of setup.groups ?? []) {
    if (node.groups.list().some((v) => v.record.name === g.name)) continue;
    await node.groups.create(g);
  }
  while (!node.groups.list().every((v) => !v.record.bypass.on && v.senders.every((s) => s.state === 'running')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
process.stdout.write(JSON.stringify({ nbdPort: running.nbd.port, apiUrl: running.apiUrl }) + '\n');
process.on('SIGTERM', () => void running.close(1000).then(() => process.exit(0)));
