/**
 * Pieces every framed protocol of sanbox needs (NBD, the CMI between SPs, the remote link
 * between arrays): bytes received in chunks and cut into messages without copying more than
 * once, and the JSON object of a frame header parsed with one clear error.
 */
export { ByteQueue } from './byte-queue.js';

/** The JSON object in `buf[0, end)`; throws an Error saying why when it is not one. */
export function jsonObjectAt(buf: Buffer, end: number): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(buf.toString('utf8', 0, end));
  } catch (e) {
    throw new Error(`JSON does not parse: ${(e as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error('JSON is not an object');
  return json as Record<string, unknown>;
}
