/** The pure core of the heartbeat service (seed 004); see docs/heartbeat.md "Core". */
export * from './message.js';
export * from './notice.js';
export * from './status-table.js';
export { serializeTable, parseTable, assertTableInvariants, TableParseError, TABLE_FORMAT, TABLE_FORMAT_VERSION } from './status-table-codec.js';
export * from './validity.js';
export * from './master.js';
export * from './decision.js';
export { HeartbeatEncodeError } from './codec.js';
export { TABLE_BLOCK_BYTES, TABLE_OFFSET, HB_VOLUME_MIN_BYTES, encodeTableBlock, decodeTableBlock, type TableBlockRead } from './table-block.js';
