/**
 * The source's option style for prmd and chkmon: single-dash words (-show, -remove, -force,
 * -pid) and single-letter options with a separate value (-n App1). sanbox's own additions are
 * double-dash (--state, --json). Written by hand: no option library parses -show as one word.
 */
export interface DashSpec {
  /** option names (without the leading dash) that take a value */
  values: string[];
  /** option names that take none */
  flags: string[];
}

/** Parses argv into { name: value | true }; throws an Error naming the problem. */
export function parseDashOptions(argv: string[], spec: DashSpec): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-') || a === '-' || a === '--') throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = (eq > 0 ? a.slice(0, eq) : a).slice(1);
    if (out[name] !== undefined) throw new Error(`option ${a} given twice`);
    if (spec.flags.includes(name)) {
      if (eq > 0) throw new Error(`option -${name} takes no value`);
      out[name] = true;
    } else if (spec.values.includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new Error(`option -${name} needs a value`);
      out[name] = v;
    } else throw new Error(`unknown option ${JSON.stringify(a)}`);
  }
  return out;
}
