/**
 * Which array a client verb talks to (--api, --lab, --array, the environment, the running labs),
 * and how API-client failures become CLI errors. Below every verb module: they all import it.
 */
import { ApiClient, ClientError } from '../control/index.js';
import { apiUrlArg, CliError, EXIT, nameArg, usage } from './common.js';
import { readState, runningLabs, type LabState } from './lab.js';
import { resolveToken } from './token-file.js';

export interface TargetFlags {
  api?: string;
  token?: string;
  /** The token as the first line of this file (not shown in `ps`, unlike --token). */
  tokenFile?: string;
  lab?: string;
  array?: string;
  json?: boolean;
}

/**
 * Finds the array to talk to: --api URL, else $SANBOX_API, else the state file of --lab NAME
 * ($SANBOX_LAB), else the only running lab. --array (default: the lab's first array) picks an
 * array of a lab. The token: --token or --token-file, else $SANBOX_TOKEN, else the lab state file.
 */
export async function resolveTarget(f: TargetFlags): Promise<ApiClient> {
  const token = targetToken(f);
  const url = f.api ?? (process.env.SANBOX_API || undefined);
  if (url) return new ApiClient({ url: apiUrlArg(url, f.api !== undefined ? '--api' : '$SANBOX_API'), token });
  if (f.array !== undefined) nameArg(f.array, 'array name');
  const state = await findLab(f);
  const arr = f.array ? state.arrays.find((a) => a.name === f.array) : state.arrays[0];
  if (!arr) {
    // A well-formed name that names nothing: the lab said no (1), like an array saying "no such LUN".
    throw new CliError(EXIT.ERROR, 'not-found', `lab ${state.lab} has no array ${f.array ?? ''} (arrays: ${state.arrays.map((a) => a.name).join(', ') || 'none yet'})`);
  }
  const down = arrayDownMessage(state, arr);
  if (down) throw new CliError(EXIT.UNREACHABLE, 'array-down', down);
  return new ApiClient({ url: arr.api.url, token: token ?? arr.api.token });
}

/** --token, else the first line of --token-file, else $SANBOX_TOKEN; undefined: the lab state file's. */
function targetToken(f: TargetFlags): string | undefined {
  return resolveToken({ token: f.token, file: f.tokenFile }, { token: '--token', file: '--token-file' }, 'SANBOX_TOKEN');
}

/** Why an array of a running lab cannot be reached (crashed, restarting, ...), or undefined when it runs. */
export function arrayDownMessage(state: LabState, arr: LabState['arrays'][number]): string | undefined {
  if (arr.state === undefined || arr.state === 'running') return undefined;
  const opt = state.lab === 'default' ? '' : ` --lab ${state.lab}`;
  if (arr.state === 'crashed') {
    const x = arr.lastExit;
    const how = x ? (x.signal ? `killed by ${x.signal}` : `exit code ${x.code}`) + ` at ${x.at}` : 'crashed';
    const why = arr.held ? 'crashed on purpose (fault array-crash / site-fail)' : 'its process died';
    return `array ${arr.name} of lab ${state.lab} is down: ${why}, ${how}; start it again with "sanbox fault array-restart ${arr.name}${opt}"`;
  }
  return `array ${arr.name} of lab ${state.lab} is ${arr.state}, not running yet; try again shortly`;
}

/**
 * Every array of the lab (--lab, $SANBOX_LAB, else the only running lab) with a client each;
 * undefined when the target is an explicit API URL (--api / $SANBOX_API) or --array picks one.
 */
export async function labArrayClients(f: TargetFlags): Promise<{ lab: LabState; arrays: { name: string; client: ApiClient }[] } | undefined> {
  if (f.api ?? (process.env.SANBOX_API || undefined)) return undefined;
  if (f.array) return undefined;
  const token = targetToken(f);
  const lab = await findLab(f);
  return { lab, arrays: lab.arrays.map((a) => ({ name: a.name, client: new ApiClient({ url: a.api.url, token: token ?? a.api.token }) })) };
}

/** The lab to talk to: --lab NAME ($SANBOX_LAB), else the only running lab. */
export async function findLab(f: TargetFlags): Promise<LabState> {
  const labName = f.lab ?? (process.env.SANBOX_LAB || undefined);
  let state: LabState | undefined;
  if (labName) {
    state = await readState(labName);
    if (!state) throw new CliError(EXIT.UNREACHABLE, 'unreachable', `lab ${labName} is not running (no state file); start it with "sanbox up"`);
  } else {
    const labs = await runningLabs();
    if (labs.length === 0) {
      throw new CliError(
        EXIT.UNREACHABLE,
        'unreachable',
        'no array to talk to: give --api URL, set SANBOX_API, or start a lab with "sanbox up lab/default.yaml"',
      );
    }
    if (labs.length > 1) throw usage(`several labs are running (${labs.map((l) => l.lab).join(', ')}): pick one with --lab NAME`);
    state = labs[0]!;
  }
  return state;
}

/**
 * Maps API-client failures to CLI errors: no API answered → 3; the array found the request itself
 * invalid (HTTP 400: a malformed name, size or field; nothing changed) → 2, as if the CLI had
 * found it first; any other refusal or failure by the array → 1.
 */
export function clientError(e: unknown): CliError {
  if (e instanceof CliError) return e;
  if (e instanceof ClientError) return new CliError(e.unreachable ? EXIT.UNREACHABLE : e.status === 400 ? EXIT.USAGE : EXIT.ERROR, e.code, e.message);
  return new CliError(EXIT.ERROR, 'error', (e as Error).message ?? String(e));
}
