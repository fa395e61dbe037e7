/** The management API of one array: the module lives in api/ (see api/index.ts); this entry keeps the old import path. */
export * from './api/index.js';
