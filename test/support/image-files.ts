// The image files of real arrays, compared byte for byte (checksum resync tests, bench-like checks).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The image file of LUN 0 (the first LUN) under an array directory. */
export function imageFile(dir: string): string {
  const hit = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => /(^|\/)lun0\.img$/.test(f));
  if (hit.length !== 1) throw new Error(`${dir}: ${hit.length} lun0.img files`);
  return join(dir, hit[0]!);
}

/** 4 KiB blocks that differ between two image files (over the shorter one's length). */
export function differingBlocks(a: string, b: string): number {
  const x = readFileSync(a);
  const y = readFileSync(b);
  let n = 0;
  for (let o = 0; o < Math.min(x.length, y.length); o += 4096) if (!x.subarray(o, o + 4096).equals(y.subarray(o, o + 4096))) n++;
  return n;
}
