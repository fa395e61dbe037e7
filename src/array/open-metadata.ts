/**
 * An array's metadata as its open finds it: both copies read (a pair that cannot be used is
 * `metadata-corrupt`), image files without any metadata refused (never a silent reset over them),
 * another array's metadata refused (checkMeta), fresh metadata for a new array. Apart from
 * ./storage-array.ts, whose open() builds the array on what this returns.
 */
import { promises as fsp } from 'node:fs';
import { MetadataError, type LoadResult, type MetadataStore } from '../metadata/index.js';
import { ArrayError } from './array-error.js';
import { checkMeta, METADATA_FORMAT, type ArrayMetadata } from './lun-table.js';

/**
 * Loads the metadata of array `name` in `dir` from `store`: `meta` to use, and `loaded` as the
 * store read it (`loaded.data` undefined: a new array, not saved yet; `loaded.problems`: bad copies).
 */
export async function loadArrayMetadata(store: MetadataStore<ArrayMetadata>, dir: string, name: string): Promise<{ loaded: LoadResult<ArrayMetadata>; meta: ArrayMetadata }> {
  let loaded: LoadResult<ArrayMetadata>;
  try {
    loaded = await store.load();
  } catch (e) {
    if (e instanceof MetadataError) throw new ArrayError('metadata-corrupt', `array ${name}: ${e.message}`);
    throw e;
  }
  let meta = loaded.data;
  if (meta === undefined) {
    const images = (await fsp.readdir(dir)).filter((f) => /^lun\d+\.img$/.test(f));
    if (images.length > 0) {
      throw new ArrayError(
        'metadata-corrupt',
        `array ${name}: ${dir} holds image files (${images.join(', ')}) but no metadata (meta.A/meta.B); ` +
          `refusing to start an empty array over them. Restore the metadata or move the images aside.`,
      );
    }
    meta = { format: METADATA_FORMAT, array: name, nextLunId: 0, luns: [] };
  } else {
    checkMeta(meta, name, dir);
  }
  return { loaded, meta };
}
