/**
 * Per-LUN I/O statistics: plain counters and a latency histogram per op type (./counters.ts),
 * and the layer that fills them, topmost in every LUN stack (./layer.ts). Rendering them for
 * Prometheus is src/metrics's business; this module knows nothing of prom-client.
 */
export { IoStats, IoStatsTable, IO_STAT_OPS, LATENCY_BUCKETS_SECONDS, type IoStatOp, type IoStatsSnapshot, type ProcessIoStats } from './counters.js';
export { IoStatsLayer } from './layer.js';
