export * from './emulator.js';
export * from './api.js';
