// One array in a process of its own (bench/lib/lab.mjs, secondaryProcess):
//   node array-child.mjs DIST_DIR CONFIG_JSON
// starts the array (startArray from DIST_DIR with the JSON config), prints one line
// {"ready":true,"nbdPort":N} when it serves, and closes the array on SIGTERM or when its parent's
// stdin closes (so it never outlives the benchmark).
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [distDir, cfgJson] = process.argv.slice(2);
const { startArray } = await import(pathToFileURL(join(distDir, 'control/service.js')).href);
const running = await startArray(JSON.parse(cfgJson));
let closing = null;
const stop = () => {
  closing ??= running.close(100).catch(() => undefined).then(() => process.exit(0));
  return closing;
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop).on('error', stop).resume();
process.stdout.write(JSON.stringify({ ready: true, nbdPort: running.nbd.port }) + '\n');
