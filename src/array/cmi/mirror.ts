import type { CacheMirror, MirrorPage, PageRef } from '../cache/index.js';
import type { CmiClient } from './channel.js';

/**
 * CacheMirror over CMI: every call is one request on the ordered connection to the peer, which
 * applies it to its PeerMirrorStore before replying (so `mirror` resolving means the peer holds
 * the pages).
 */
export class CmiCacheMirror implements CacheMirror {
  constructor(private readonly client: CmiClient) {}

  async reset(lun: number): Promise<void> {
    await this.client.call('mirror.reset', { lun });
  }
  /** The pages are copied into the request frame before this returns (the one copy of a mirrored write). */
  mirror(lun: number, pages: readonly MirrorPage[]): Promise<void> {
    if (pages.length === 0) return Promise.resolve();
    const pageSize = pages[0]!.data.length;
    for (const p of pages) if (p.data.length !== pageSize) return Promise.reject(new Error('CmiCacheMirror: pages of one call must have one size'));
    return this.client.call(
      'mirror.pages',
      { lun, pageSize, pages: pages.map((p) => [p.index, p.generation]) },
      pages.map((p) => p.data),
    ).then(() => undefined);
  }
  async release(lun: number, pages: readonly PageRef[]): Promise<void> {
    if (pages.length === 0) return;
    await this.client.call('mirror.release', { lun, pages: pages.map((p) => [p.index, p.generation]) });
  }
  async discard(lun: number, offset: number, length: number, generation: number): Promise<void> {
    await this.client.call('mirror.discard', { lun, offset, length, generation });
  }
}

/** Decodes `mirror.pages` arguments back into pages (the peer side). */
export function decodeMirrorPages(args: Record<string, unknown>, bin: Buffer): MirrorPage[] {
  const pageSize = Number(args.pageSize);
  const refs = args.pages as [number, number][];
  if (!Number.isSafeInteger(pageSize) || pageSize <= 0 || !Array.isArray(refs) || refs.length * pageSize !== bin.length) {
    throw new Error(`mirror.pages: ${Array.isArray(refs) ? refs.length : '?'} pages of ${pageSize} bytes do not match ${bin.length} payload bytes`);
  }
  return refs.map(([index, generation], i) => ({ index, generation, data: bin.subarray(i * pageSize, (i + 1) * pageSize) }));
}

export function decodePageRefs(args: Record<string, unknown>): PageRef[] {
  const refs = args.pages as [number, number][];
  if (!Array.isArray(refs)) throw new Error('mirror.release: pages must be a list');
  return refs.map(([index, generation]) => ({ index, generation }));
}
