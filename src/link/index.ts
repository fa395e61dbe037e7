export * from './emulator/index.js';
export * from './protocol/index.js';
