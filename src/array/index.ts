export * from './storage-array.js';
export * from './size.js';
