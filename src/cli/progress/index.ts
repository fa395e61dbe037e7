/**
 * Progress of the long verbs (mirror sync --wait, group refresh and backfresh, snapshot
 * rollback, clone create --wait, scenario runs): one meter per wait, on stderr only, so that
 * stdout holds the verb's result alone. A terminal gets a bar redrawn in place with the rate over
 * the last seconds and the ETA; a pipe or a log gets plain sentences every few seconds; --quiet
 * gets nothing, and so does --json unless the verb always kept its progress on stderr there.
 * The conventions are in docs/cli.md (PROGRESS).
 */
import { ProgressMeter, type MeterOptions, type ProgressMode, type ProgressOut } from './meter.js';

export { BYTES, barText, durationText, etaSeconds, percent, plainLine, rateText, ttyLine, type ProgressOutcome, type ProgressState, type ProgressUnit } from './format.js';
export { RateWindow } from './rate.js';
export { PLAIN_EVERY_MS, ProgressMeter, REDRAW_MS, TICK_MS, type MeterOptions, type ProgressMode, type ProgressOut } from './meter.js';

export interface ProgressFlags {
  quiet?: boolean;
  json?: boolean;
}

/**
 * The mode for a verb's flags and stream. `jsonKeepsProgress`: the verb's progress stayed on
 * stderr with --json before (scenario run), and stays there.
 */
export function progressMode(f: ProgressFlags, out: { isTTY?: boolean }, opts: { jsonKeepsProgress?: boolean } = {}): ProgressMode {
  if (f.quiet) return 'off';
  if (f.json && !opts.jsonKeepsProgress) return 'off';
  return out.isTTY === true ? 'tty' : 'plain';
}

/** A meter on stderr (or `out`) in the mode the flags say. */
export function startProgress(f: ProgressFlags, o: Omit<MeterOptions, 'mode' | 'out'> & { out?: ProgressOut & { isTTY?: boolean }; jsonKeepsProgress?: boolean }): ProgressMeter {
  const out = o.out ?? process.stderr;
  return new ProgressMeter({ ...o, out, mode: progressMode(f, out, { jsonKeepsProgress: o.jsonKeepsProgress }) });
}
