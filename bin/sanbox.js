#!/usr/bin/env node
// The sanbox command. The TypeScript sources are built into dist/ by `npm install` (prepare)
// and `npm test` (pretest); run `npm run build` after changing them.
import { main } from '../dist/cli/index.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`sanbox: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
