/**
 * The SP process (`sanbox sp serve`, started by the chassis): see ./sp.ts and ./protocol.ts;
 * each LUN's BlockDevice stack on an SP is composed in ./lun-stack.ts (`buildLunStack`).
 */
export { SpProcess, runSpProcess } from './sp.js';
export { readMarkers } from './markers.js';
export { LunRouter, type RouteState, type RouteEntry } from './router.js';
export * from './protocol.js';
