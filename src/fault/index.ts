/** Faults injected below the host: disk faults (./disk). Link faults live in src/link, SP and power faults in src/array/chassis. */
export * from './disk/index.js';
