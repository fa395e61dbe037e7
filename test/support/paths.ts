// Where the repository is, and the checks of tests that run the build (bin/sanbox.js runs dist/).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The sanbox command (runs the build in dist/). */
export const BIN = join(REPO, 'bin', 'sanbox.js');

/** Throws unless dist/ holds `file` (e.g. 'cli/index.js'): child processes run the build. */
export function requireBuild(file: string, hint = 'run `npm run build` (npm test does it)'): void {
  if (!existsSync(join(REPO, 'dist', file))) throw new Error(`dist/ is not built: ${hint}`);
}
