/**
 * The management API of one array (see server.ts). Files by idea: server.ts (the server,
 * dispatch, authorization), http.ts (routes, bodies, answers, ApiError), fields.ts (request
 * validation), address.ts, and one file per route family: luns.ts, chassis.ts (SPs and
 * faults), mirrors.ts, groups.ts, events.ts (the SSE stream).
 */
export { hostPort, isLoopback, nbdUri, type NbdEndpoint } from './address.js';
export type { ChassisControl } from './chassis.js';
export { API_VERSION, ApiError, MAX_BODY } from './http.js';
export type { LunView } from './luns.js';
export { ControlServer, type ControlServerOptions } from './server.js';
