/**
 * What the control-plane services (the pair resync monitor, the heartbeat agent) share: a
 * numbered event journal with replay and an HTTP side with an SSE event stream. Depends only on
 * src/http-guard and src/metrics.
 */
export { ServiceEvents, formatEvent, type ServiceEvent } from './events.js';
export { ServiceHttp, HttpRefusal, type HttpOptions, type PostHandler } from './http.js';
