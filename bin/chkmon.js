#!/usr/bin/env node
// chkmon, the pair resync monitor's tool (seed 000): see src/cli/monitor/chkmon.ts and docs/monitor.md.
import { chkmonMain } from '../dist/cli/monitor/index.js';

chkmonMain(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`chkmon: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 10;
  },
);
