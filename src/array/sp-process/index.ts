/**
 * The SP process (`sanbox sp serve`, started by the chassis): see ./sp.ts and ./protocol.ts.
 */
export { SpProcess, runSpProcess, readMarkers } from './sp.js';
export { LunRouter, execOn, type IoOp, type IoResult, type RouteState, type MirrorState } from './router.js';
export * from './protocol.js';
