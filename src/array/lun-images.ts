/**
 * The image file of a new LUN: placed at the first free id (never over an image file left
 * without a LUN), created and opened, the file system's failures told as ArrayErrors. Apart from
 * ./storage-array.ts, which keeps the metadata side of a create (and removes the image again
 * when saving the metadata fails).
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { FileBackingStore } from '../block/index.js';
import { ArrayError } from './array-error.js';
import type { OpenNote } from './lun-table.js';
import { formatSize } from './size.js';

export interface NewLunImage {
  id: number;
  path: string;
  device: FileBackingStore;
}

/**
 * Creates and opens the image of a new LUN in `dir`, at `firstId` or the next id that neither
 * `taken` says is a LUN's nor has a file (each such orphan file noted as `array.orphan-image`).
 * On failure nothing is left behind and no id is used up.
 */
export async function createLunImage(dir: string, firstId: number, taken: (id: number) => boolean, size: number, blockSize: number, readOnly: boolean, note: OpenNote): Promise<NewLunImage> {
  // Never overwrite an image that exists without a LUN (left by an interrupted create or a
  // rolled-back metadata copy): skip to the next free id instead.
  let id = firstId;
  let path: string;
  for (;;) {
    path = join(dir, `lun${id}.img`);
    if (!taken(id) && !(await exists(path))) break;
    if (!taken(id)) note('array.orphan-image', { path, problem: 'image file without a LUN; left untouched' });
    id++;
  }
  try {
    // on failure it removes the file it made: nothing is left, and the id stays free
    await FileBackingStore.create(path, size);
  } catch (e) {
    if (tooLarge(e)) throw new ArrayError('refused', `size ${size} (${formatSize(size)}) is more than the file system holding ${dir} can hold in one image file (EFBIG); give a smaller size`);
    throw new ArrayError('io', `cannot create image ${path}: ${(e as Error).message}`);
  }
  let device: FileBackingStore;
  try {
    device = await FileBackingStore.open(path, { readOnly, blockSize });
  } catch (e) {
    await fsp.rm(path, { force: true });
    throw new ArrayError('io', `cannot open image ${path}: ${(e as Error).message}`);
  }
  return { id, path, device };
}

/** The file system cannot hold a file that large (ftruncate's EFBIG): a bad size, not an I/O failure. */
export function tooLarge(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'EFBIG';
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.lstat(path);
    return true;
  } catch {
    return false;
  }
}
