/**
 * `sanbox fault disk ARRAY LUN [options]`: give a LUN a disk fault (errors, delay and/or
 * lose-unflushed), show it (--show) or clear it (--clear). Works on single-process and two-SP arrays alike. The fault is
 * validated here first (every problem listed, exit 2, nothing sent), and again by the array
 * against the LUN (a 400 is exit 2 too: nothing was changed).
 */
import type { ApiClient } from '../control/index.js';
import type { DiskFaultReport } from '../control/disk-faults.js';
import { validateDiskFault, type DiskFaultInput } from '../fault/index.js';
import { CliError, EXIT, nameArg, printJson, usage } from './common.js';
import { clientError, resolveTarget, type TargetFlags } from './target.js';

export interface DiskFaultFlags extends TargetFlags {
  errors?: string;
  rate?: string;
  range?: string;
  errno?: string;
  delay?: string;
  seed?: string;
  loseUnflushed?: boolean;
  maxUnflushed?: string;
  clear?: boolean;
  show?: boolean;
}

const FAULT_OPTIONS = ['errors', 'rate', 'range', 'errno', 'delay', 'seed', 'loseUnflushed', 'maxUnflushed'] as const;

/** The option as typed: loseUnflushed -> --lose-unflushed. */
const flagName = (k: string): string => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** The fault the flags describe, validated (a usage error lists every problem). */
export function diskFaultFromFlags(f: DiskFaultFlags): DiskFaultInput {
  const input: DiskFaultInput = {};
  for (const k of FAULT_OPTIONS) if (f[k] !== undefined) input[k] = f[k];
  const v = validateDiskFault(input);
  if (!v.spec) throw usage(`bad disk fault: ${v.problems.join('; ')}`);
  return input;
}

async function arrayClient(arrayName: string, f: TargetFlags): Promise<ApiClient> {
  try {
    const c = await resolveTarget({ ...f, array: f.array ?? arrayName });
    const st = await c.status<{ array: string }>();
    if (st.array !== arrayName) throw new CliError(EXIT.ERROR, 'wrong-array', `the API at ${c.url} serves array ${st.array}, not ${arrayName}`);
    return c;
  } catch (e) {
    throw clientError(e);
  }
}

function counts(r: DiskFaultReport): string {
  const base = `${r.injected} errors injected, ${r.delayed} requests delayed`;
  if (!r.spec.loseUnflushed) return base;
  const u = r.counters.unflushed;
  return `${base}, ${u.held} writes held, ${r.unflushedBytes} bytes unflushed, ${u.flushedBytes} bytes written down at flush, ${u.destagedBytes} over the limit`;
}

/** A clear writes down what lose-unflushed held before it answers: say how much. */
const writtenDown = (r: DiskFaultReport): string => (r.spec.loseUnflushed ? `; ${r.unflushedBytes} unflushed bytes written down first` : '');

export async function faultDiskCommand(arrayName: string, lun: string, f: DiskFaultFlags): Promise<number> {
  const given = FAULT_OPTIONS.filter((k) => f[k] !== undefined);
  if (f.clear && f.show) throw usage('give --clear or --show, not both');
  if ((f.clear || f.show) && given.length) throw usage(`--${f.clear ? 'clear' : 'show'} takes no fault options (got ${given.map(flagName).join(', ')})`);
  nameArg(lun, 'LUN');
  const input = f.clear || f.show ? undefined : diskFaultFromFlags(f);
  const c = await arrayClient(arrayName, f);
  const path = `/v1/luns/${encodeURIComponent(lun)}/disk-fault`;
  try {
    if (f.clear) {
      const r = await c.request<{ lun: number; name: string; cleared: DiskFaultReport | null }>('DELETE', path);
      if (f.json) printJson(r);
      else process.stdout.write(r.cleared ? `disk fault of LUN ${r.name} on ${arrayName} cleared (${counts(r.cleared)}${writtenDown(r.cleared)})\n` : `LUN ${r.name} on ${arrayName} has no disk fault\n`);
      return EXIT.OK;
    }
    if (f.show) {
      const r = await c.request<{ diskFault: DiskFaultReport | null }>('GET', path);
      if (f.json) printJson(r);
      else process.stdout.write(r.diskFault ? `LUN ${r.diskFault.name} on ${arrayName}: ${r.diskFault.summary}; ${counts(r.diskFault)}\n` : `LUN ${lun} on ${arrayName} has no disk fault\n`);
      return EXIT.OK;
    }
    const r = await c.request<{ diskFault: DiskFaultReport }>('PUT', path, input);
    if (f.json) printJson(r);
    else process.stdout.write(`disk fault on LUN ${r.diskFault.name} of ${arrayName}: ${r.diskFault.summary}\n`);
    return EXIT.OK;
  } catch (e) {
    throw clientError(e);
  }
}
