/**
 * The chassis of a two-SP array (issue 4): SP processes, ownership, power and battery, faults.
 * See ./chassis.ts; the SP side is ../sp-process, the inter-SP channel ../cmi.
 */
export { Chassis, ChassisError, DEFAULT_SPS, type SpsConfig, type ChassisOptions, type PowerState, type ChassisMirrorHooks } from './chassis.js';
export { OwnerLunDevice, type OwnerChannels } from './owner-device.js';
