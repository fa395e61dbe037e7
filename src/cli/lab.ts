/** Lab files and lab state files: the module lives in lab/ (see lab/index.ts); this entry keeps the old import path. */
export * from './lab/index.js';
