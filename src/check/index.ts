/**
 * Workloads and checkers a user runs against a lab (or any NBD server), the same ones the test
 * suite trusts: the acknowledged-write ledger (ledger/), the dependent-write prefix workload and
 * check of a consistency group (prefix/), the file-system check through nbdfuse (fs/), and the
 * small NBD client they share (nbd-client/). The commands are `sanbox check ...` (docs/check.md).
 */
export * as ledger from './ledger/index.js';
export * as prefix from './prefix/index.js';
export { checkFileSystem, fsCheckUnavailable, FsCheckUnavailable, type FsCheckReport } from './fs/index.js';
export { LatencyWindow, latencyQuantiles, type LatencyWindowSummary, type LatencyQuantiles } from './latency-window.js';
export { NbdClient, ConnectionLost, NbdReplyError, BadNbdUri, parseNbdUri, NBD_ERRNO } from './nbd-client/index.js';
