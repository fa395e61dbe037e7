/**
 * The Heartbeat Status Table on a heartbeat volume (the source keeps table 250 "in the memory in a
 * host and a volume; the volume prefers to be remotely mirrored"). A master writes its table to
 * every heartbeat volume its site writes, at TABLE_OFFSET, after every change; a restarted agent
 * without its local copy reads it back from there, and the other site can read it from the
 * secondary. Layout (little-endian), TABLE_BLOCK_BYTES in all:
 *
 * | offset | size | field                                               |
 * | -----: | ---: | --------------------------------------------------- |
 * |      0 |    8 | magic `SBXHBTAB`                                    |
 * |      8 |    2 | version (1)                                         |
 * |     10 |    2 | reserved, zero                                      |
 * |     12 |    4 | CRC32C of the block with this field zero            |
 * |     16 |    4 | length of the JSON that follows                     |
 * |     20 |  len | serializeTable's JSON (UTF-8); the rest zero        |
 */
import { checkEnvelope, sealCrc } from './codec.js';
import { HB_AREA_BYTES } from './message.js';
import type { HeartbeatStatusTable } from './status-table.js';
import { parseTable, serializeTable } from './status-table-codec.js';

export const TABLE_MAGIC = Buffer.from('SBXHBTAB', 'latin1');
export const TABLE_BLOCK_VERSION = 1;
export const TABLE_BLOCK_BYTES = 16384;
/** Where the block lives on a heartbeat volume: after the heartbeat area, 4 KiB aligned. */
export const TABLE_OFFSET = Math.ceil(HB_AREA_BYTES / 4096) * 4096;
/** The smallest heartbeat volume that holds the heartbeat area and the table. */
export const HB_VOLUME_MIN_BYTES = TABLE_OFFSET + TABLE_BLOCK_BYTES;
const HEAD = 20;

export function encodeTableBlock(t: HeartbeatStatusTable): Buffer {
  const json = Buffer.from(serializeTable(t), 'utf8');
  if (json.length > TABLE_BLOCK_BYTES - HEAD) throw new RangeError(`the status table is ${json.length} bytes of JSON, more than the ${TABLE_BLOCK_BYTES - HEAD} a table block holds`);
  const buf = Buffer.alloc(TABLE_BLOCK_BYTES);
  TABLE_MAGIC.copy(buf, 0);
  buf.writeUInt16LE(TABLE_BLOCK_VERSION, 8);
  buf.writeUInt32LE(json.length, 16);
  json.copy(buf, HEAD);
  sealCrc(buf, 12);
  return buf;
}

export type TableBlockRead = { ok: true; table: HeartbeatStatusTable } | { ok: false; reason: string; detail: string };

export function decodeTableBlock(buf: Buffer): TableBlockRead {
  const env = checkEnvelope(buf, { bytes: TABLE_BLOCK_BYTES, magic: TABLE_MAGIC, version: TABLE_BLOCK_VERSION, versionOff: 8, crcOff: 12, what: 'status table block' });
  if (!env.ok) return env;
  const len = buf.readUInt32LE(16);
  if (len > TABLE_BLOCK_BYTES - HEAD) return { ok: false, reason: 'bad-field', detail: `table length ${len} does not fit the block` };
  try {
    return { ok: true, table: parseTable(buf.subarray(HEAD, HEAD + len).toString('utf8')) };
  } catch (e) {
    return { ok: false, reason: 'bad-field', detail: (e as Error).message };
  }
}
