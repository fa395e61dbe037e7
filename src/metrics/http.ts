/** Answering GET /metrics on any of sanbox's HTTP servers, the same way everywhere. */
import type { ServerResponse } from 'node:http';
import type { MetricsBuilder } from './builder.js';

export const METRICS_PATH = '/metrics';

export async function sendMetrics(res: ServerResponse, m: MetricsBuilder): Promise<void> {
  const { contentType, text } = await m.render();
  res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}
