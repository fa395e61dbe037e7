/** Host resources of a resource group: their order, their commands and the runner (seed 001). */
export { startOrder, stopOrder } from './order.js';
export { runCommand, OUTPUT_TAIL, KILL_GRACE_MS, type CommandResult, type CommandOptions } from './command.js';
export { ResourceError, type ResourceErrorCode } from './errors.js';
export { HostResources, type HostResourcesOptions } from './runner.js';
