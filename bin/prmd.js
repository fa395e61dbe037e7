#!/usr/bin/env node
// prmd, the pair resync monitor's tool (seed 000): see src/cli/monitor/prmd.ts and docs/monitor.md.
import { prmdMain } from '../dist/cli/monitor/index.js';

prmdMain(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`prmd: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 10;
  },
);
