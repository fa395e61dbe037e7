// An array as its own process (SIGKILL-able like a crashing array): node array-child.mjs CONFIG.json
// Prints one JSON line {nbdPort, apiUrl} when ready.
import { readFileSync } from 'node:fs';
import { startArray } from '../../dist/control/service.js';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const running = await startArray(cfg);
process.stdout.write(JSON.stringify({ nbdPort: running.nbd.port, apiUrl: running.apiUrl }) + '\n');
process.on('SIGTERM', () => void running.close(1000).then(() => process.exit(0)));
