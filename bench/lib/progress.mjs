// Progress of a long benchmark loop on stderr through the CLI's meter (src/cli/progress): a bar
// redrawn in place on a terminal, a sentence every few seconds in a log (CI), on stderr in both
// cases so that --json keeps stdout clean. The meter comes from this repository's dist/, not
// SANBOX_DIST: an older build that a run compares against may not have it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO, die } from './common.mjs';

let progressModule;

/** A meter for `label` counting bytes up to `total` (undefined: not known yet). */
export async function benchProgress(label, total) {
  const file = join(REPO, 'dist', 'cli', 'progress', 'index.js');
  if (!existsSync(file)) die(`${file} not found (run npm run build first)`);
  progressModule ??= await import(pathToFileURL(file).href);
  // --json keeps progress on stderr, as every bench always did
  return progressModule.startProgress({}, { label, ...(total !== undefined ? { total } : {}), jsonKeepsProgress: true });
}
