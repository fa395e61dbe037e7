/**
 * The acknowledged-write ledger: checks guarantee 1 of docs/architecture.md ("a write acknowledged
 * to the host is never lost on any single fault") from the outside, through NBD, like a host
 * would. `sanbox check ledger write|verify` (src/cli/check-verbs.ts) is its command; see docs/check.md.
 */
export { SECTOR, encodeBlock, decodeBlock, type BlockVersion, type Decoded } from './block-format.js';
export {
  LEDGER_FORMAT,
  Ledger,
  LedgerFileError,
  validateLedgerFile,
  checkBlock,
  type LedgerEntry,
  type LedgerFile,
  type LedgerRunInfo,
  type InitialContent,
  type UncertainState,
  type Violation,
  type ViolationKind,
} from './ledger.js';
export { LedgerWriter, type WriterOptions, type WriterStats, type WriteReport, type FaultRecord } from './writer.js';
export { verifyLedger, verifyImageFile, formatWriteReport, formatVerifyReport, VerifyUnreachable, type VerifyOptions, type VerifyReport, type Unreadable } from './verify.js';
export { NbdClient, ConnectionLost, NbdReplyError } from '../nbd-client/index.js';
export { mulberry32 as rng } from '../../random/index.js';
