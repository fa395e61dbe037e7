/**
 * Prefix consistency of a consistency group, from the outside: the dependent-write workload
 * (PrefixWriter), its state file, and the check of a copy of the group (PrefixChecker,
 * verifyPrefix). `sanbox check prefix write|verify` (src/cli/check-verbs.ts) is its command; see docs/check.md.
 */
export { PREFIX_FORMAT, PREFIX_BLOCK, PrefixFileError, savePrefixState, loadPrefixState, parsePrefixState, toPrefixFile, type PrefixState, type PrefixWrite } from './state.js';
export { PrefixWriter, prefixBlock, type PrefixWriterOptions, type PrefixStats } from './workload.js';
export { PrefixChecker, checkPrefixImages, verifyPrefix, formatPrefixReport, type PrefixReport, type PrefixViolation, type PrefixViolationKind } from './check.js';
