/**
 * Prometheus metrics: a scrape-time builder over prom-client (./builder.ts) and the one way a
 * server answers GET /metrics (./http.ts). What each service exports is its own (the array's
 * API, the link emulator, the monitor); the names are listed in docs/metrics.md.
 */
export { MetricsBuilder, METRICS_CONTENT_TYPE, type Labels } from './builder.js';
export { sendMetrics, METRICS_PATH } from './http.js';
