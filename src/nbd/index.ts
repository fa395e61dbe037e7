/**
 * The NBD protocol server: fixed newstyle negotiation, structured replies, base:allocation,
 * every transmission command of ../shared/NBD.md. It knows nothing of arrays or mirrors: it
 * serves whatever BlockDevice an export names.
 */
export * from './constants.js';
export { blockSizes, isReadOnly, transmissionFlags, type ExportCatalog, type NbdExport } from './export.js';
export { greeting, Negotiation, optionReply, type Negotiated, type OptionOutcome } from './negotiation.js';
export { validateRequest } from './request.js';
export { mergeExtents } from './commands.js';
export { DEFAULT_LIMITS, type SessionLimits } from './admission.js';
export { NbdServer, type NbdServerOptions, type SessionInfo } from './server.js';
export { DEFAULT_NBD_MEMORY, MemoryBudget, MIN_NBD_MEMORY, nbdMemoryProblem, type NbdMemoryStats } from './memory-budget.js';
export { loadNbdTls, parsePskFile, tlsConfigProblem, TLS_MODES, TlsConfigError, type NbdTls, type NbdTlsConfig, type TlsMode } from './tls.js';
