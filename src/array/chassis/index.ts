/**
 * The chassis of a two-SP array (issue 4): SP processes, ownership, power and battery, faults.
 * See ./chassis.ts; the SP side is ../sp-process, the inter-SP channel ../cmi.
 */
export { Chassis } from './chassis.js';
export { ChassisError, DEFAULT_SPS, type SpsConfig, type ChassisOptions, type ChassisDataPath, type ChassisIoResult } from './config.js';
export {
  powerTransition,
  canPowerTransition,
  dumpOutcome,
  IllegalPowerTransitionError,
  POWER_STATES,
  POWER_EVENTS,
  POWER_TRANSITIONS,
  type PowerState,
  type PowerEvent,
} from './power-state.js';
export { OwnerLunDevice, type OwnerChannels } from './owner-device.js';
